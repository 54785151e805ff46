"""Serial sources: an ASCII port (``serial:<url>``) and a Modbus RTU bus (``modbus:<url>``).

Each wraps its reader thread (``collector.serial``) in the one source shape: frames go through
its feed into the group committer like MQTT messages, bad frames become dead letters named
after the source, and its health says whether the port is open and the devices answer. A serial
device cannot be told to wait, so backpressure here means the reader blocks while the spool is
full (bytes then queue in the OS and the device's own buffer); nothing it read is dropped.
"""

from __future__ import annotations

from collector.serial.ascii_reader import AsciiFrameReader
from collector.serial.modbus_poller import ModbusPoller, make_client
from collector.serial.settings import AsciiPortSettings, ModbusBusSettings
from collector.sources.base import SourceContext, SourceHealth
from collector.sources.feed import Feed


def _age(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


class AsciiSource:
    """One port carrying ASCII frames: healthy while the port is open."""

    kind = "ascii"

    def __init__(self, settings: AsciiPortSettings, context: SourceContext) -> None:
        self.name = f"serial:{settings.url}"
        self.feed: Feed = context.open_feed(self.name, self.kind, None)
        self.reader = AsciiFrameReader(settings, self.feed, spawn=context.spawn)

    def start(self) -> None:
        self.reader.start()

    def stop(self) -> None:
        self.feed.close()  # a read waiting for its commit returns: the reader can stop
        self.reader.stop()

    def close(self) -> None:
        """Nothing: the port closes with the reader."""

    def health(self) -> SourceHealth:
        port = self.reader.port
        open_ = self.reader.connected.is_set()
        error = None if open_ else port.error
        return SourceHealth(
            healthy=error is None,
            problem=f"{self.name}: {error}" if error else "",
            detail={
                "port_open": open_,
                "frames_accepted": self.reader.accepted,
                "missing_frames": self.reader.missing_frames,
                "outages": len(self.reader.outages),
            },
            errors=dict(port.errors),
        )


class ModbusSource:
    """One RS-485 bus polled by Modbus RTU: healthy while the port is open and every device
    answers (a device is dead after ``dead_after`` failed polls in a row)."""

    kind = "modbus"

    def __init__(self, settings: ModbusBusSettings, context: SourceContext) -> None:
        self.name = f"modbus:{settings.url}"
        self.feed: Feed = context.open_feed(self.name, self.kind, None)
        factory = context.client_factories.get("modbus", make_client)
        self.poller = ModbusPoller(settings, self.feed, client_factory=factory, spawn=context.spawn)

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> None:
        self.feed.close()
        self.poller.stop()

    def close(self) -> None:
        """Nothing: the port closes with the poller."""

    def health(self) -> SourceHealth:
        poller = self.poller
        problems = [poller.port_error] if poller.port_error else []
        devices = {}
        for device in poller.devices:
            unit = device.settings
            devices[unit.asset] = {
                "unit_id": unit.unit_id,
                "answering": not device.dead,
                "last_answer_age_s": _age(device.last_answer_age_s()),
            }
            if device.dead:
                problems.append(f"unit {unit.unit_id} ({unit.asset}) is not answering")
        return SourceHealth(
            healthy=not problems,
            problem=f"{self.name}: {'; '.join(problems)}" if problems else "",
            detail={"port_open": poller.connected.is_set(), "devices": devices},
            errors=dict(poller.errors),
        )


def build_ascii(settings: AsciiPortSettings, context: SourceContext) -> AsciiSource:
    """The registry's ``ascii`` kind."""
    return AsciiSource(settings, context)


def build_modbus(settings: ModbusBusSettings, context: SourceContext) -> ModbusSource:
    """The registry's ``modbus`` kind."""
    return ModbusSource(settings, context)
