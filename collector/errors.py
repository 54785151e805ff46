"""The collector's error tree: one root, raised with ``from`` at boundaries."""

from __future__ import annotations


class CollectorError(Exception):
    """Root of every error the collector raises itself."""


class ConfigError(CollectorError):
    """The configuration cannot be used (unreadable file, invalid option)."""


class SpoolError(CollectorError):
    """The spool database cannot be opened or written."""


class SpoolFullError(SpoolError):
    """The spool's disk is full: backpressure (hold acknowledgements), not a failure."""
