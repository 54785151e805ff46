"""The simulation core: assets stepped at their own intervals, merged into one time-ordered stream.

Time here is always simulated time in epoch nanoseconds; nothing in this module reads the wall
clock, so a backfill is a pure function of the scenario and its seed.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from device_sims.environment import Ambient, DutyProfile
from device_sims.faults import FAULTS, PROCESS_FAULTS, SENSOR_FAULTS, FaultSpec
from device_sims.faults.sensor import SensorFaults
from device_sims.machines import MACHINE_TYPES, Machine
from device_sims.seeding import Noise, derive_seed
from device_sims.timefmt import NS_PER_S


@dataclass(slots=True)
class Sample:
    """What one asset emits at one instant: sensor name -> value (floats)."""

    site: str
    asset: str
    time_ns: int
    sensors: dict[str, float]


@dataclass
class AssetSim:
    """One simulated asset: a machine model, its faults, and its sampling clock."""

    name: str
    site: str
    machine: Machine
    interval_ns: int
    next_ns: int
    noise: Noise
    seed: int
    faults: list[FaultSpec] = field(default_factory=list)
    sensor_faults: SensorFaults = field(init=False)

    def __post_init__(self) -> None:
        # Sensor faults draw from their own stream, so a spiking sensor does not perturb the
        # machine's physics: a faulty asset and its healthy twin stay comparable.
        self.sensor_faults = SensorFaults(Noise(derive_seed(self.seed, "sensor-faults")))

    @property
    def machine_type(self) -> str:
        """The machine type name (pump, fan, ...)."""
        return self.machine.TYPE

    def step(self) -> Sample | None:
        """Produce the reading due at next_ns and schedule the next; None while silent."""
        t_ns = self.next_ns
        self.next_ns += self.interval_ns
        levels: dict[str, float] = {}
        faults = self.faults
        for fault in faults:
            if fault.kind in PROCESS_FAULTS:
                level = fault.level(t_ns)
                if level > levels.get(fault.kind, 0.0):
                    levels[fault.kind] = level
        values = self.machine.measure(t_ns / NS_PER_S, self.interval_ns / NS_PER_S, levels)
        if faults:
            self.sensor_faults.distort(faults, t_ns, values)
        for spec in self.machine.SENSORS:
            values[spec.name] = spec.quantise(values[spec.name])
        if faults and not self.sensor_faults.finish(faults, t_ns, values):
            return None
        return Sample(self.site, self.name, t_ns, values)


def make_asset(
    *,
    name: str,
    site: str,
    machine_type: str,
    seed: int,
    start_ns: int,
    interval_ns: int,
    ambient: Ambient,
    params: Mapping[str, float] | None = None,
    duty: DutyProfile | None = None,
) -> AssetSim:
    """An asset whose random streams depend only on the scenario seed, site and name."""
    try:
        cls = MACHINE_TYPES[machine_type]
    except KeyError:
        raise ValueError(
            f"asset {name}: unknown machine type {machine_type!r}; "
            f"known: {', '.join(sorted(MACHINE_TYPES))}"
        ) from None
    if interval_ns <= 0:
        raise ValueError(f"asset {name}: interval must be positive")
    asset_seed = derive_seed(seed, site, name)
    noise = Noise(asset_seed)
    machine = cls(params or {}, ambient, duty or cls.DEFAULT_DUTY, noise)
    return AssetSim(name, site, machine, interval_ns, start_ns, noise, asset_seed)


class Simulation:
    """All assets of a scenario, stepped in time order; faults may be added while it runs."""

    def __init__(self, assets: list[AssetSim], start_ns: int) -> None:
        self.assets = {a.name: a for a in assets}
        if len(self.assets) != len(assets):
            raise ValueError("asset names must be unique")
        self.start_ns = start_ns
        self.now_ns = start_ns
        self.lock = threading.RLock()
        self.faults: list[FaultSpec] = []
        self._order = list(self.assets)
        self._heap = [(a.next_ns, i) for i, a in enumerate(assets)]
        heapq.heapify(self._heap)
        self._counter = 0

    def add_fault(self, fault: FaultSpec) -> FaultSpec:
        """Attach a fault to its asset (validated against the machine type)."""
        with self.lock:
            asset = self.assets.get(fault.asset)
            if asset is None:
                raise ValueError(f"fault on unknown asset {fault.asset!r}")
            if fault.kind not in FAULTS:
                raise ValueError(f"unknown fault kind {fault.kind!r}; known: {', '.join(FAULTS)}")
            machine = asset.machine
            if fault.kind in PROCESS_FAULTS and fault.kind not in machine.FAULTS:
                raise ValueError(
                    f"{fault.asset} ({machine.TYPE}) cannot have {fault.kind}; "
                    f"it supports {', '.join(sorted(machine.FAULTS))} and sensor faults"
                )
            if fault.kind in SENSOR_FAULTS:
                sensors = [s.name for s in machine.SENSORS]
                if fault.sensor is None and fault.kind != "dropout":
                    fault.sensor = machine.DEFAULT_SENSOR
                if fault.sensor is not None and fault.sensor not in sensors:
                    raise ValueError(
                        f"{fault.asset} has no sensor {fault.sensor!r}; it has {', '.join(sensors)}"
                    )
            self._counter += 1
            if not fault.fault_id:
                fault.fault_id = f"F{self._counter:04d}-{fault.asset}-{fault.kind}"
            asset.faults.append(fault)
            self.faults.append(fault)
            return fault

    def clear_faults(
        self, asset: str, kind: str | None = None, fault_id: str | None = None
    ) -> list[FaultSpec]:
        """Repair: end the matching active faults now; the machine is healthy from here on."""
        with self.lock:
            if asset not in self.assets:
                raise ValueError(f"unknown asset {asset!r}")
            cleared = []
            for fault in self.assets[asset].faults:
                if kind is not None and fault.kind != kind:
                    continue
                if fault_id is not None and fault.fault_id != fault_id:
                    continue
                if fault.end_ns is None or fault.end_ns > self.now_ns:
                    fault.end_ns = max(self.now_ns, fault.onset_ns)
                    cleared.append(fault)
            return cleared

    def next_time_ns(self) -> int:
        """When the next reading is due."""
        return self._heap[0][0]

    def step(self) -> Sample | None:
        """The next reading in time order (None when that asset is silent at that instant)."""
        with self.lock:
            t_ns, index = self._heap[0]
            asset = self.assets[self._order[index]]
            self.now_ns = t_ns
            sample = asset.step()
            heapq.heapreplace(self._heap, (asset.next_ns, index))
            return sample

    def run_until(self, end_ns: int) -> Iterator[Sample]:
        """Every reading due before end_ns, in time order (ties: scenario order)."""
        while self._heap[0][0] < end_ns:
            sample = self.step()
            if sample is not None:
                yield sample
        self.now_ns = end_ns
