"""Labels learned from how alerts ended, kept under ``data_dir/labels.json``.

From the API's ``GET /api/v1/alerts/outcomes``: a ``confirmed_fault`` marks the alert's period
[opened_at, cleared_at or now] as a fault, never to be fitted; a ``no_fault_found`` on an
``equipment_anomaly`` marks the period as normal (the next retrain may fit it, although the
model alarmed there) and raises that asset's threshold by ``nff_factor`` (bounded by
``nff_cap``; each NFF's effect fades with time constant ``nff_decay_s``). The service's own
alarm periods are recorded too: a retrain leaves them out unless a label says they were normal.
A ``confirmed_fault`` whose work order was completed also marks the asset as repaired at the
completion time: the service then fits its next baseline on post-repair data only, instead of
comparing the repaired machine with the worn one (``repairs_due``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from analytics.files import atomic_write
from analytics.settings import LifecycleSettings

logger = logging.getLogger(__name__)

AssetKey = tuple[str, str]
FAULT, NORMAL, ALARM = "fault", "normal", "alarm"


@dataclass(frozen=True)
class Period:
    """A labelled span of one asset (end None = still open)."""

    site: str
    asset: str
    start_s: float
    end_s: float | None
    label: str
    alert_id: int | None = None

    def covers(self, t_s: float, now_s: float) -> bool:
        """Whether t_s lies within the period (an open period runs to now)."""
        end = now_s if self.end_s is None else self.end_s
        return self.start_s <= t_s <= end

    def overlaps(self, other: Period, now_s: float) -> bool:
        """Whether two periods share any time."""
        a_end = now_s if self.end_s is None else self.end_s
        b_end = now_s if other.end_s is None else other.end_s
        return self.start_s <= b_end and other.start_s <= a_end


class LabelStore:
    """Fault/normal/alarm periods and NFF events per asset, persisted as JSON (atomic writes)."""

    def __init__(self, path: Path, settings: LifecycleSettings) -> None:
        self.path = path
        self.settings = settings
        self.periods: list[Period] = []
        self.nff: list[tuple[str, str, float, int]] = []  # site, asset, at_s, alert_id
        self.since: str | None = None
        # Assets repaired (work order completed as fixed) whose post-repair baseline is still to
        # be fitted: completion time in epoch seconds.
        self.repairs: dict[AssetKey, float] = {}
        self._seen: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._load()

    # -- outcomes --------------------------------------------------------------------------

    def apply_outcomes(
        self, items: list[dict[str, Any]], now_s: float
    ) -> tuple[list[str], set[AssetKey]]:
        """Take outcome records; (labels applied, assets whose threshold factor changed)."""
        applied: list[str] = []
        retune: set[AssetKey] = set()
        with self._lock:
            for item in items:
                try:
                    alert_id = int(item["alert_id"])
                    outcome = item.get("outcome")
                    site, asset, kind = str(item["site"]), str(item["asset"]), str(item["kind"])
                    start = _parse_time(item["opened_at"])
                    cleared = item.get("cleared_at")
                    end = _parse_time(cleared) if cleared else None
                    completed = item.get("completed_at")  # absent from older APIs
                    repaired = _parse_time(completed) if completed else None
                except (KeyError, TypeError, ValueError) as exc:
                    logger.warning("ignoring a malformed outcome %r: %s", item, exc)
                    continue
                if outcome not in ("confirmed_fault", "no_fault_found"):
                    continue
                if (alert_id, outcome) in self._seen:
                    continue
                self._seen.add((alert_id, outcome))
                label = FAULT if outcome == "confirmed_fault" else NORMAL
                # A fault still open is excluded up to its repair, else up to now.
                if end is None:
                    end = repaired if label == FAULT and repaired is not None else now_s
                self.periods.append(Period(site, asset, start, end, label, alert_id))
                applied.append(label)
                if label == FAULT and repaired is not None:
                    key = (site, asset)
                    self.repairs[key] = max(repaired, self.repairs.get(key, repaired))
                if outcome == "no_fault_found" and kind == "equipment_anomaly":
                    self.nff.append(
                        (site, asset, now_s, alert_id)
                    )  # fades from when it was learned
                    retune.add((site, asset))
                logger.info("%s/%s: alert %d labelled %s", site, asset, alert_id, label)
        return applied, retune

    # -- own alarm periods -----------------------------------------------------------------

    def open_alarm(self, key: AssetKey, t_s: float) -> None:
        """Record the start of one of the service's own equipment alarms."""
        with self._lock:
            self.periods.append(Period(key[0], key[1], t_s, None, ALARM))

    def close_alarm(self, key: AssetKey, t_s: float) -> None:
        """Close the asset's open alarm period, if any."""
        with self._lock:
            for k, p in enumerate(self.periods):
                if (p.site, p.asset) == key and p.label == ALARM and p.end_s is None:
                    self.periods[k] = Period(p.site, p.asset, p.start_s, t_s, ALARM)

    # -- queries ---------------------------------------------------------------------------

    def excluded_periods(self, key: AssetKey, now_s: float) -> list[Period]:
        """Periods a baseline must leave out: faults, and own alarms not labelled normal."""
        with self._lock:
            mine = [p for p in self.periods if (p.site, p.asset) == key]
        normal = [p for p in mine if p.label == NORMAL]
        return [
            p
            for p in mine
            if p.label == FAULT
            or (p.label == ALARM and not any(p.overlaps(n, now_s) for n in normal))
        ]

    def repairs_due(
        self, post_repair_s: float, data_until_s: dict[AssetKey, float]
    ) -> list[tuple[AssetKey, float]]:
        """(asset, completion time) of repairs with ``post_repair_s`` of data since; taken out.

        ``data_until_s`` is the time of each asset's latest reading.
        """
        with self._lock:
            due = [
                (key, at)
                for key, at in self.repairs.items()
                if data_until_s.get(key, -math.inf) - at >= post_repair_s
            ]
            for key, _ in due:
                del self.repairs[key]
        return due

    def threshold_factor(self, key: AssetKey, now_s: float) -> float:
        """Product of nff_factor per NFF, each fading with its age, capped at nff_cap."""
        s = self.settings
        with self._lock:
            ages = [now_s - at for site, asset, at, _ in self.nff if (site, asset) == key]
        exponent = sum(math.exp(-max(age, 0.0) / s.nff_decay_s) for age in ages)
        return min(s.nff_cap, s.nff_factor**exponent)

    # -- persistence -----------------------------------------------------------------------

    def save(self) -> None:
        """Write the labels atomically."""
        with self._lock:
            doc = {
                "format_version": 1,
                "since": self.since,
                "periods": [asdict(p) for p in self.periods],
                "nff": [list(n) for n in self.nff],
                "seen": sorted([a, o] for a, o in self._seen),
                "repairs": [[site, asset, at] for (site, asset), at in self.repairs.items()],
            }
        atomic_write(self.path, json.dumps(doc).encode())

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("format_version") != 1:
                raise ValueError(f"format version {doc.get('format_version')!r}")
            self.periods = [Period(**p) for p in doc["periods"]]
            self.nff = [(str(a), str(b), float(c), int(d)) for a, b, c, d in doc["nff"]]
            self._seen = {(int(a), str(o)) for a, o in doc["seen"]}
            self.since = doc.get("since")
            # Files written before repairs were tracked have none.
            self.repairs = {(str(a), str(b)): float(c) for a, b, c in doc.get("repairs", [])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Labels are precious but not vital: keep the bad file aside and start afresh.
            logger.error(
                "labels file %s unusable (%s); kept as .bad, starting empty", self.path, exc
            )
            os.replace(self.path, self.path.with_suffix(".bad"))


def _parse_time(text: Any) -> float:
    """Seconds since the epoch of an RFC 3339 time (ValueError if it has no timezone)."""
    stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError(f"time without timezone: {text!r}")
    return stamp.timestamp()
