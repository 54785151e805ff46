"""InfluxDB windows for the detector service: one InfluxQL query per tick for every asset.

Each tick asks for ``SELECT * FROM telemetry WHERE time > <cursor - lateness> GROUP BY site,
asset`` and hands back, per asset, only the points newer than the last point already handed out
for that asset; re-reading ``lateness_s`` lets points that arrive a little late be scored once.
A sharded process (analytics.shard) adds its site condition to the query and drops the series
of assets it does not own before parsing their rows.

A source that knows when an asset's data stops on purpose (a Sparkplug edge node or device that
died: the collector writes births and deaths as ``online`` points of ``source_state``) makes it
silent, not broken: ``offline`` is the set of assets whose latest state says offline, read once
whole and then as changes since the last tick (a second, usually empty, query).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt

from telemetry.influx.client import InfluxClient, quote_ident

logger = logging.getLogger(__name__)

AssetKey = tuple[str, str]  # (site, asset)
STATE_MEASUREMENT = "source_state"
# Columns of the telemetry measurement that are not sensors.
NON_SENSOR_COLUMNS = frozenset({"time", "quality", "site", "asset"})
_NUMERIC_CELLS = frozenset({int, float, type(None)})


@dataclass(frozen=True)
class AssetWindow:
    """New points of one asset: times (ns, ascending) and values (NaN where a sensor is absent)."""

    times_ns: npt.NDArray[np.int64]
    sensors: tuple[str, ...]
    values: npt.NDArray[np.float64]


class InfluxWindows:
    """Reads new points of all assets since the previous call."""

    def __init__(
        self,
        client: InfluxClient,
        *,
        measurement: str = "telemetry",
        lookback_s: float,
        lateness_s: float,
        clock_ns: Callable[[], int],
        where: str | None = None,
        owns: Callable[[AssetKey], bool] | None = None,
    ) -> None:
        self._client = client
        self._measurement = measurement
        self._where = f"{where} AND " if where else ""
        self._owns = owns
        self.skipped = 0  # series read but owned by another shard (the hash split's cost)
        self._lateness_ns = int(lateness_s * 1e9)
        self._cursor_ns = clock_ns() - int(lookback_s * 1e9)
        # Where the last fetch's query began: an asset whose points start right there has
        # older ones too (the service then fits it on its stored history).
        self.since_ns = self._cursor_ns - self._lateness_ns
        self._last_ns: dict[AssetKey, int] = {}
        self.offline: set[AssetKey] = set()
        self._states_since: int | None = None  # None: read the latest state of every asset

    def fetch_states(self) -> set[AssetKey]:
        """Assets whose source says they are offline, updated from the states written since the
        last call (InfluxError propagates)."""
        if self._states_since is None:
            selected, since = "last(online)", 0
        else:
            selected, since = "online", self._states_since - self._lateness_ns
        query = (
            f"SELECT {selected} FROM {STATE_MEASUREMENT} "  # noqa: S608 (constant names)
            f"WHERE {self._where}time > {since} GROUP BY site, asset"
        )
        latest = self._states_since or 0
        for series in self._client.query(query):
            key = (series.tags.get("site", ""), series.tags.get("asset", ""))
            if not series.values:
                continue
            time_ns, online = series.values[-1][0], series.values[-1][1]
            latest = max(latest, as_int(time_ns))
            if online == 0:
                self.offline.add(key)
            else:
                self.offline.discard(key)
        self._states_since = max(latest, self._cursor_ns)
        return self.offline

    def fetch(self) -> dict[AssetKey, AssetWindow]:
        """The points each asset gained since the last fetch (InfluxError propagates)."""
        since = self.since_ns = self._cursor_ns - self._lateness_ns
        query = (
            f"SELECT * FROM {quote_ident(self._measurement)} "  # noqa: S608 (quoted identifier)
            f"WHERE {self._where}time > {since} GROUP BY site, asset"
        )
        windows: dict[AssetKey, AssetWindow] = {}
        for series in self._client.query(query):
            key = (series.tags.get("site", ""), series.tags.get("asset", ""))
            if self._owns is not None and not self._owns(key):
                self.skipped += 1
                continue
            window = self._window(key, series.columns, series.values)
            if window is not None:
                windows[key] = window
        return windows

    def _window(
        self, key: AssetKey, columns: list[str], rows: list[list[object]]
    ) -> AssetWindow | None:
        last = self._last_ns.get(key, -1)
        try:
            window = _parse_table(columns, rows, last)
        except (TypeError, ValueError):
            # A non-numeric field value (a string where a sensor was expected): cell by cell.
            window = _parse_rows(columns, rows, last)
        if window is not None:
            self._last_ns[key] = int(window.times_ns[-1])
            self._cursor_ns = max(self._cursor_ns, int(window.times_ns[-1]))
        return window


def _parse_table(columns: list[str], rows: list[list[object]], last: int) -> AssetWindow | None:
    """The rows after ``last`` as arrays, converted in bulk by numpy (the usual case).

    Cell by cell in Python this cost ~8 µs per row of 8 sensors; one ``np.array`` call does it
    in C (None becomes NaN), with the times taken apart as exact int64. Raises TypeError or
    ValueError for a cell that is not an int, float or null: bools and strings go through
    ``_parse_rows``, which makes them NaN, as before.
    """
    index = [i for i, name in enumerate(columns) if name not in NON_SENSOR_COLUMNS]
    times = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    if columns[0] == "time" and len(index) == len(columns) - 1:
        cells: list[list[object]] = rows  # every column but the time is a sensor
        values = np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))[:, 1:]
    else:  # a quality (string) column too
        cells = [[row[i] for i in index] for row in rows]
        values = np.array(cells, dtype=np.float64).reshape(len(rows), len(index))
    # numpy reads True as 1.0 and "2.5" as 2.5; only ints, floats and nulls are numbers.
    if not set(map(type, chain.from_iterable(cells))) <= _NUMERIC_CELLS:
        raise TypeError("a field value that is not a number")
    fresh = times > last
    if not fresh.all():
        if not fresh.any():
            return None
        times, values = times[fresh], values[fresh]
    if (times[1:] < times[:-1]).any():
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    values[~np.isfinite(values)] = np.nan
    # SELECT * returns the union of every asset's fields; keep the ones this asset has.
    has = np.asarray(~np.isnan(values).all(axis=0), dtype=bool)
    sensors = tuple(columns[i] for i, keep in zip(index, has.tolist(), strict=True) if keep)
    return AssetWindow(times, sensors, np.ascontiguousarray(values[:, has]))


def _parse_rows(columns: list[str], rows: list[list[object]], last: int) -> AssetWindow | None:
    """The rows after ``last``, cell by cell (non-numeric values become NaN)."""
    fresh = [row for row in rows if as_int(row[0]) > last]
    if not fresh:
        return None
    fresh.sort(key=lambda row: as_int(row[0]))
    picked = [
        (i, name)
        for i, name in enumerate(columns)
        if name not in NON_SENSOR_COLUMNS and any(_is_number(row[i]) for row in fresh)
    ]
    times = np.array([as_int(row[0]) for row in fresh], dtype=np.int64)
    values = np.array(
        [[as_float(row[i]) for i, _ in picked] for row in fresh], dtype=np.float64
    ).reshape(len(fresh), len(picked))
    return AssetWindow(times, tuple(name for _, name in picked), values)


def as_int(value: object) -> int:
    """A time column value as int ns."""
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"not a time: {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_float(value: object) -> float:
    """A field value as float (NaN for missing, non-numeric or non-finite)."""
    if _is_number(value):
        number = float(value)  # type: ignore[arg-type]
        return number if math.isfinite(number) else math.nan
    return math.nan
