"""Simulated equipment and gateways: the outside world that equipmon monitors.

Nothing here imports the rest of equipmon; the simulator speaks only wire protocols (MQTT,
serial ASCII frames, Modbus RTU, HTTP push), so it exercises the collectors exactly as real
devices would.
"""

__version__ = "0.1.0"
