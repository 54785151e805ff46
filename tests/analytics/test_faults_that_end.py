"""device_sims faults that end: the alarm clears once the machine has settled and re-arms.

A pump is trained on a healthy week (60 s readings, as in the fault-mode suite); then a fault
is switched on and off again (as SKAB's valve tests close a valve for a while and reopen it),
and later a second fault of another kind. Readings go through device_sims' backfill (the wire
format) and the scorer row by row, exactly as replay and the service feed it.
"""

from __future__ import annotations

from functools import cache

from analytics.evaluate import Episode, alarm_episodes, tables_from_jsonl
from device_sims.runner import backfill_bytes
from device_sims.scenario import parse_scenario

START = "2026-11-16T00:00:00Z"
T0 = 1_794_787_200.0  # START in epoch seconds
TRAIN_S = 7 * 86400.0  # a healthy week: load cycles and weather are part of normal
# (kind, onset, end) after START; each fault is abrupt and ends abruptly.
H = 3600
DAY8 = 7 * 24 * H
FAULTS = (
    ("cavitation", DAY8 + 6 * H, DAY8 + 7 * H),
    ("leak", DAY8 + 10 * H, DAY8 + 11 * H),
)
# "Settled": the simulated machine's own lags (filters, thermal masses) are well under this.
SETTLE_S = 300.0


@cache
def episodes() -> tuple[list[Episode], list[Episode]]:
    """Alarm episodes of the faulty pump and of its healthy twin."""
    doc = {
        "name": "faults-that-end",
        "seed": 7,
        "start": START,
        "duration": "8d",
        "sites": {"plant": {"utc_offset_h": 0}},
        "defaults": {"interval": "60s"},
        "assets": [{"name": "pump-a", "type": "pump"}, {"name": "pump-b", "type": "pump"}],
        "faults": [
            {"asset": "pump-a", "kind": k, "onset": f"{a}s", "end": f"{b}s", "ramp": "0s"}
            for k, a, b in FAULTS
        ],
    }
    tables = tables_from_jsonl(backfill_bytes(parse_scenario(doc, "ends")).splitlines())
    assert abs(tables["pump-a"].times_s[0] - T0) < 60
    return (
        alarm_episodes(tables["pump-a"], T0 + TRAIN_S),
        alarm_episodes(tables["pump-b"], T0 + TRAIN_S),
    )


def test_each_fault_is_alarmed_clears_after_it_ends_and_the_twin_stays_quiet() -> None:
    # One test over the one backfill (about 15 s): under pytest-xdist, tests sharing a cached
    # backfill would each rebuild it on their own worker.
    faulty, healthy = episodes()
    shown = [(e.start_s - T0, e.end_s - T0) for e in faulty]
    for kind, onset, end in FAULTS:
        during = [e for e in faulty if e.start_s < T0 + end and e.end_s > T0 + onset]
        assert during, f"{kind}: never alarmed ({shown})"
        assert during[0].start_s - (T0 + onset) < 600, f"{kind}: alarmed late ({shown})"
        last_clear = max(e.end_s for e in during)
        assert last_clear - (T0 + end) <= SETTLE_S, (
            f"{kind}: the alarm cleared {last_clear - T0 - end:.0f} s after the fault ended"
        )
    first_end, second_onset = FAULTS[0][2], FAULTS[1][1]
    between = [
        e
        for e in faulty
        if e.start_s >= T0 + first_end + SETTLE_S and e.start_s < T0 + second_onset
    ]
    assert between == [], shown
    assert len(healthy) <= 1
