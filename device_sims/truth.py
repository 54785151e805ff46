"""Ground truth: every fault's asset, kind, onset and end, as JSON lines.

The file is rewritten atomically (temp file + rename) whenever the fault set changes, so a
reader always sees a complete file, even while a live simulation injects and clears faults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from device_sims.faults import FaultSpec


def truth_lines(faults: Iterable[FaultSpec], sites: Mapping[str, str], until_ns: int) -> str:
    """One JSON object per fault that began before until_ns, in onset order."""
    rows = sorted(
        (f for f in faults if f.onset_ns < until_ns), key=lambda f: (f.onset_ns, f.fault_id)
    )
    return "".join(json.dumps(f.truth_record(sites[f.asset]), sort_keys=True) + "\n" for f in rows)


def write_truth(
    path: str | Path, faults: Iterable[FaultSpec], sites: Mapping[str, str], until_ns: int
) -> None:
    """Write the ground-truth file atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(truth_lines(faults, sites, until_ns), encoding="utf-8")
    os.replace(tmp, path)
