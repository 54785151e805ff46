"""Business rules: alert lifecycle, work-order state machine, policy, verification, figures."""
