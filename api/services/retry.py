"""The lease of the API's durable outboxes (webhooks, notifications).

Their retry policy is every service's (telemetry.retry.Backoff: doubling with full jitter,
capped); what is the API's own is the lease: a claimed outbox row is not picked up again, by
this or another replica, for this long.
"""

from __future__ import annotations

from datetime import timedelta

LEASE = timedelta(minutes=2)
