"""The part of the fleet one analytics process owns: by site, by a stable asset hash, or both.

Several processes split the fleet by giving each the same ``shard.count`` and its own
``shard.index`` (and/or disjoint ``shard.sites``). The hash must be the same in every process
and across restarts, so it is SHA-256, not Python's ``hash`` (salted per process)::

    shard of (site, asset) = int.from_bytes(sha256(f"{site}/{asset}".encode())[:8], "big") % count

A site filter goes into the InfluxQL read (InfluxDB answers from its tag index); a hash split
cannot be expressed in InfluxQL, so the read returns every asset of the sites and the series of
other shards are dropped before their rows are parsed.
"""

from __future__ import annotations

import hashlib

from analytics.settings import ShardSettings
from analytics.source import AssetKey
from telemetry.influx.client import quote_literal


def asset_hash(site: str, asset: str) -> int:
    """A 64-bit hash of site/asset that every process and every run computes alike."""
    digest = hashlib.sha256(f"{site}/{asset}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(key: AssetKey, count: int) -> int:
    """The hash shard (0 .. count-1) that owns an asset."""
    return asset_hash(*key) % count


class Shard:
    """Answers "is this asset mine?" (memoised: it is asked for every series of every tick)."""

    def __init__(self, settings: ShardSettings) -> None:
        self.sites = frozenset(settings.sites)
        self.count, self.index = settings.count, settings.index
        self._owned: dict[AssetKey, bool] = {}

    @property
    def everything(self) -> bool:
        """Whether this process owns the whole fleet (no sharding configured)."""
        return not self.sites and self.count == 1

    def owns(self, key: AssetKey) -> bool:
        """Whether this process scores the asset."""
        found = self._owned.get(key)
        if found is None:
            found = self._owned[key] = (not self.sites or key[0] in self.sites) and (
                self.count == 1 or shard_of(key, self.count) == self.index
            )
        return found

    def where(self) -> str | None:
        """The InfluxQL condition that reads only this shard's sites (None: no site filter)."""
        if not self.sites:
            return None
        return "(" + " OR ".join(f"site = {quote_literal(s)}" for s in sorted(self.sites)) + ")"

    def describe(self) -> str:
        """For logs and /healthz, e.g. 'sites plant-a, plant-b; hash 1 of 2' or 'all'."""
        parts = []
        if self.sites:
            parts.append("sites " + ", ".join(sorted(self.sites)))
        if self.count > 1:
            parts.append(f"hash {self.index} of {self.count}")
        return "; ".join(parts) or "all"
