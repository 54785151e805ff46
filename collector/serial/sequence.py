"""Per-asset sequence tracking: duplicates are rejected, gaps are counted (uint32 wrap-around)."""

from __future__ import annotations

from dataclasses import dataclass

_MODULUS = 1 << 32


@dataclass(slots=True)
class SequenceVerdict:
    """What one frame's sequence number says: a duplicate, or how many frames went missing."""

    duplicate: bool = False
    missing: int = 0
    reset: bool = False


class SequenceTracker:
    """Remembers the last sequence number per asset."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def observe(self, asset: str, seq: int) -> SequenceVerdict:
        """Classify ``seq`` against the asset's previous frame; remember it unless a repeat."""
        last = self._last.get(asset)
        if last is None:
            self._last[asset] = seq
            return SequenceVerdict()
        step = (seq - last) % _MODULUS
        if step == 0:  # a serial line does not reorder: only the same number again is a repeat
            return SequenceVerdict(duplicate=True)
        self._last[asset] = seq
        if step > _MODULUS // 2:  # a jump backwards: the device restarted its counter
            return SequenceVerdict(reset=True)
        return SequenceVerdict(missing=step - 1)
