"""The reopen loop around a serial session: capped exponential backoff, in compressed time."""

from __future__ import annotations

import threading

import serial

from collector.serial.port import PortSupervisor
from collector.serial.settings import SerialLineSettings


class InstantStop(threading.Event):
    """A stop event whose waits return at once and are recorded: the backoff without the wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


def test_reopen_backoff_doubles_up_to_its_cap_and_resets_after_a_session() -> None:
    settings = SerialLineSettings(url="loop://", site="plant-a", reopen_initial_s=0.1,
                                  reopen_max_s=1.0)  # fmt: skip
    stop = InstantStop()
    # Six failed opens, a session that loses the port, two failed opens, a session that stops.
    plan = ["fail"] * 6 + ["open"] + ["fail"] * 2 + ["open"]
    sessions: list[int] = []
    outages: list[float] = []

    def opener(line: SerialLineSettings) -> serial.SerialBase:
        if plan.pop(0) == "fail":
            raise serial.SerialException(f"could not open port {line.url}")
        return serial.serial_for_url(line.url, timeout=0.1)

    def session(port: serial.SerialBase) -> None:
        sessions.append(len(stop.waits))
        assert supervisor.connected.is_set()
        if len(sessions) == 1:
            raise serial.SerialException("device reports readiness to read but returned no data")
        stop.set()

    supervisor = PortSupervisor(settings, session, stop, opener, outages.append)
    supervisor.run()
    assert plan == []
    assert stop.waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 0.1, 0.2]
    assert sessions == [6, 8]
    assert supervisor.reopens == 2
    assert len(outages) == 2  # once per outage, with its length
    assert all(outage >= 0 for outage in outages)
    assert not supervisor.connected.is_set()
