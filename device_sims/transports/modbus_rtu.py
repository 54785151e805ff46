"""Modbus RTU slave line: pymodbus' serial server answering for one or more assets (unit ids).

The server runs in its own thread and asyncio loop. Register tables are rebuilt from each new
reading and swapped in whole, and the server's access hook copies the current table into the
block it serves, so a client never sees half of an old float and half of a new one. An asset
that has gone silent (dropout) answers "gateway target device failed to respond".
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from functools import partial

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from device_sims.engine import Sample
from device_sims.registers import RegisterMap
from device_sims.transports.pty import PtyRelay

log = logging.getLogger(__name__)

_FC_TABLE = {3: "holding", 6: "holding", 16: "holding", 23: "holding", 4: "input"}


class ModbusRtuLine:
    """An RS-485 line with Modbus RTU slaves; ``url`` is what a Modbus client opens."""

    def __init__(
        self,
        line_id: str,
        units: Mapping[str, tuple[int, RegisterMap]],
        *,
        listen: str | None = None,
        baudrate: int = 19200,
        silence_ns: int = 60_000_000_000,
    ) -> None:
        self.line_id = line_id
        self.units = dict(units)
        self.baudrate = baudrate
        self.silence_ns = silence_ns
        self._listen = listen
        self._relay: PtyRelay | None = None
        self._tables: dict[int, dict[str, list[int]]] = {}
        self._last_ns: dict[int, int] = {}
        self._now_ns = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusSerialServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"modbus-{line_id}", daemon=True)
        self.counters = {"updates": 0, "requests": 0, "silent_answers": 0}
        for unit_id, regmap in self.units.values():
            self._tables[unit_id] = regmap.encode({})

    @property
    def url(self) -> str:
        """The pty path (or socket:// URL) a Modbus RTU client opens."""
        if self._relay is not None:
            return self._relay.client_side.path
        if self._listen is not None:
            return self._listen
        raise RuntimeError("line not started")

    def start(self) -> None:
        """Start the server thread and wait until it listens."""
        if self._listen is None:
            self._relay = PtyRelay()
            self._relay.start()
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError(f"modbus line {self.line_id}: server did not start")
        log.info("modbus line %s on %s", self.line_id, self.url)

    def send(self, sample: Sample) -> None:
        """New reading: rebuild that unit's tables (swapped in as a whole)."""
        unit_id, regmap = self.units[sample.asset]
        self._tables[unit_id] = regmap.encode(sample.sensors)
        self._last_ns[unit_id] = sample.time_ns
        self.counters["updates"] += 1

    def tick(self, now_ns: int) -> None:
        """Remember simulated time, to notice assets that went silent."""
        self._now_ns = now_ns

    def flush(self, timeout_s: float) -> bool:
        """Registers are live; nothing to flush."""
        return True

    def close(self) -> None:
        """Stop the server and the relay."""
        loop, server = self._loop, self._server
        if loop is not None and server is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(server.shutdown(), loop)  # type: ignore[no-untyped-call]
            try:
                fut.result(5.0)
            except Exception:  # best effort at shutdown
                log.debug("modbus line %s: shutdown error", self.line_id, exc_info=True)
        self._thread.join(5.0)
        if self._relay is not None:
            self._relay.close()

    def stats(self) -> dict[str, int]:
        """Update and request counters."""
        return dict(self.counters)

    async def _action(  # noqa: PLR0917 - pymodbus calls the hook positionally
        self,
        unit_id: int,
        table: str,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.counters["requests"] += 1
        last = self._last_ns.get(unit_id)
        if last is not None and self._now_ns - last > self.silence_ns:
            self.counters["silent_answers"] += 1
            return ExcCodes.GATEWAY_NO_RESPONSE
        if _FC_TABLE.get(function_code) != table:
            return None
        values = self._tables[unit_id][table]
        current_registers[: len(values)] = values
        return None

    def _device(self, unit_id: int, regmap: RegisterMap) -> SimDevice:
        blocks: list[list[SimData]] = []
        for table in ("holding", "input"):
            first, size = regmap.table(table)
            size = max(size, 1)
            blocks.append([SimData(first, count=size, values=0, datatype=DataType.REGISTERS)])
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        # One hook per table so it knows which table pymodbus is serving.
        return SimDevice(
            id=unit_id,
            simdata=(bits, list(bits), blocks[0], blocks[1]),
            action=partial(self._dispatch, unit_id),
        )

    async def _dispatch(  # noqa: PLR0917 - pymodbus calls the hook positionally
        self,
        unit_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        table = _FC_TABLE.get(function_code)
        if table is None:
            return None
        return await self._action(
            unit_id,
            table,
            function_code,
            start_address,
            address,
            count,
            current_registers,
            set_values,
        )

    def _serve(self) -> None:
        async def main() -> None:
            devices = [self._device(uid, rmap) for uid, rmap in self.units.values()]
            port = self._listen if self._listen else self._relay.device_side.path  # type: ignore[union-attr]
            self._server = ModbusSerialServer(
                devices, framer=FramerType.RTU, port=port, baudrate=self.baudrate
            )
            self._loop = asyncio.get_running_loop()
            await self._server.serve_forever(background=True)
            self._ready.set()
            await self._server.serving

        try:
            asyncio.run(main())
        except Exception:
            log.exception("modbus line %s stopped", self.line_id)
            self._ready.set()
