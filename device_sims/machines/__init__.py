"""Machine types by name."""

from device_sims.machines.ahu import AirHandler
from device_sims.machines.base import Machine, SensorSpec
from device_sims.machines.compressor import Compressor
from device_sims.machines.conveyor import Conveyor
from device_sims.machines.fan import Fan
from device_sims.machines.pump import Pump
from device_sims.machines.zone import Zone

MACHINE_TYPES: dict[str, type[Machine]] = {
    cls.TYPE: cls for cls in (Pump, Fan, Compressor, AirHandler, Conveyor, Zone)
}

__all__ = ["MACHINE_TYPES", "Machine", "SensorSpec"]
