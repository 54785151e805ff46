"""Deterministic seeds: every random stream is derived from the scenario seed and a name.

Python's hash() is salted per process, so names are hashed with BLAKE2b instead; the same
scenario seed and asset name give the same stream on every machine and every run.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *names: str) -> int:
    """A 64-bit seed from the scenario seed and a path of names (site, asset, purpose)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(seed).encode())
    for name in names:
        digest.update(b"\x00" + name.encode())
    return int.from_bytes(digest.digest(), "big")


class Noise:
    """Standard-normal and uniform draws served from blocks of a seeded numpy Generator.

    Drawing one scalar at a time from numpy costs about a microsecond; drawing blocks and
    handing out Python floats costs a few tens of nanoseconds, which matters in backfill.
    """

    _BLOCK = 2048

    def __init__(self, seed: int) -> None:
        self._gen = np.random.Generator(np.random.PCG64(seed))
        self._normal: list[float] = []
        self._uniform: list[float] = []

    def normal(self) -> float:
        """One N(0, 1) draw."""
        if not self._normal:
            self._normal = self._gen.standard_normal(self._BLOCK).tolist()
        return self._normal.pop()

    def uniform(self) -> float:
        """One U[0, 1) draw."""
        if not self._uniform:
            self._uniform = self._gen.random(self._BLOCK).tolist()
        return self._uniform.pop()

    def chance(self, probability: float) -> bool:
        """True with the given probability."""
        return self.uniform() < probability
