"""Transports: how simulated devices and gateways put readings on the wire."""

from device_sims.transports.base import Transport

__all__ = ["Transport"]
