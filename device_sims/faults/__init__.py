"""Fault modes: process faults that degrade the machine, and sensor faults that lie about it."""

from device_sims.faults.catalogue import FAULTS, PROCESS_FAULTS, SENSOR_FAULTS, FaultInfo
from device_sims.faults.spec import FaultSpec

__all__ = ["FAULTS", "PROCESS_FAULTS", "SENSOR_FAULTS", "FaultInfo", "FaultSpec"]
