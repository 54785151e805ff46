"""Serial ports inside the collector: frames and Modbus polls go through the spool to InfluxDB,
and nothing read is lost while InfluxDB is down."""

from __future__ import annotations

from device_sims.engine import Sample
from device_sims.registers import builtin_map, builtin_map_path
from device_sims.transports.modbus_rtu import ModbusRtuLine
from device_sims.transports.serial_ascii import SerialAsciiLine
from stack.process import wait_until
from telemetry.influx.client import InfluxClient
from tests.collector.conftest import CollectorFactory
from tests.collector.helpers import count_and_sum
from tests.fixtures.services import Service

T0 = 1_795_392_000_000_000_000
FRAMES = 2_000


def test_ascii_and_modbus_ports_survive_an_influxdb_outage(
    make_collector: CollectorFactory, influx_client: InfluxClient, influxdb: Service
) -> None:
    # 2,000 frames at 115200 baud, half of them while InfluxDB is down. (The collector commits
    # each read's frames in its next group; test_ascii_reader.py reads 10,000 at line speed.)
    ascii_line = SerialAsciiLine("ascii-t", block=True)
    ascii_line.start()
    bus = ModbusRtuLine("rs485-t", {"pump-m01": (1, builtin_map("pump"))})
    bus.start()
    values = {r.sensor: 10.0 for r in builtin_map("pump").registers}
    bus.send(Sample("plant-a", "pump-m01", T0, values))
    bus.tick(T0)
    collector = make_collector(
        serial=[
            {
                "protocol": "ascii",
                "url": ascii_line.url,
                "site": "plant-a",
                "baudrate": 115200,
                "timestamps": "device",
            },
            {
                "protocol": "modbus",
                "url": bus.url,
                "site": "plant-a",
                "baudrate": 9600,
                "devices": [
                    {
                        "unit_id": 1,
                        "asset": "pump-m01",
                        "register_map": str(builtin_map_path("pump")),
                        "poll_interval_s": 0.2,
                    }
                ],
            },
        ]
    )

    def stored_frames() -> int:
        # A count query: reading 10,000 points back on every poll kept InfluxDB busy.
        return count_and_sum(influx_client, "belt_speed")[0]

    try:
        for i in range(FRAMES // 2):
            ascii_line.send(Sample("plant-a", "conv-01", T0 + i * 10**9, {"belt_speed": i / 10}))
        wait_until(lambda: stored_frames() == FRAMES // 2, timeout=60, what="frames in InfluxDB")
        influxdb.stop()
        for i in range(FRAMES // 2, FRAMES):
            ascii_line.send(Sample("plant-a", "conv-01", T0 + i * 10**9, {"belt_speed": i / 10}))
        wait_until(
            lambda: collector.spool.readings >= FRAMES // 2, timeout=60, what="frames spooled"
        )
        influxdb.start()
        # Generous: InfluxDB's restart and the writer's capped backoff took most of a minute in
        # a loaded CI run; a deadline costs a passing run nothing.
        wait_until(lambda: stored_frames() == FRAMES, timeout=180,
                   what="spool drained after the outage")  # fmt: skip
        wait_until(lambda: len(influx_client.read_readings(asset="pump-m01")) > 3,
                   timeout=30, what="Modbus polls in InfluxDB")  # fmt: skip
    finally:
        ascii_line.close()
        bus.close()
    stored = influx_client.read_readings(asset="conv-01")
    assert sorted(r.values["belt_speed"] for r in stored) == [i / 10 for i in range(FRAMES)]
    pump = influx_client.read_readings(asset="pump-m01")[-1]
    assert pump.values["flow"] == 10.0  # float32
    assert pump.values["bearing_temp"] == 10.0  # int16 scaled by 0.1
