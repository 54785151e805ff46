"""docker-compose.yml's services, run as local processes, start and lose nothing.

Read from the compose file and ``.env.example``: the ``mosquitto`` service (its conf, ACL and
entrypoint, which builds the password file), PostgreSQL (the local server) and every equipmon
service with its command, its environment and its ``hostname``, each in its own UTS namespace
(tests/collector/compose.py says what else is mapped). The one substitution: InfluxDB 1.6.7
(Debian's) with ``EQUIPMON_<SERVICE>__INFLUX__API=v1`` instead of ``influxdb:2.7`` with ``v2``:
InfluxDB 2.x is not installable here, and 1.6.7 has no v2 write API.

The counting story (broker and both collector replicas, the gateways being this test's
publishers, logged in as the compose file's gateway users): both replicas take a share; a
gateway publishing to another site's topic is refused (PUBACK 0x87); one replica is SIGKILLed
and restarted (its queued share comes back with its session); the other stops and leaves for
good with ``python -m collector leave`` while publishing continues; every reading published is
stored once. The start story: postgres, api, seed, analytics and device_sims too.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from stack.influxdb import InfluxDBServer
from stack.process import free_port, port_open
from telemetry.errors import InfluxRejectedError
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from tests.collector.compose import (
    ComposeMosquitto,
    ComposeReplica,
    LocalPostgres,
    Runtime,
    env_example,
    load_compose,
)
from tests.collector.helpers import T0, Publisher, count_and_sum, scrape, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="UTS namespaces (unshare) need root")

PHASE = 800  # readings per site per phase; four phases, two sites: 6,400 readings


class Deployment:
    """The compose services this test runs, started from the compose file."""

    def __init__(self, root: Path) -> None:
        self.compose = load_compose()
        services = self.compose["services"]
        self.variables = env_example()
        self.runtime = Runtime(root, self.variables)
        self.influx = InfluxDBServer(root / "influxdb")  # the substitution (see the docstring)
        self.influx.start()
        mqtt_port, self.postgres_port, self.api_port = free_port(), free_port(), free_port()
        self.runtime.addresses = {
            "mosquitto:1883": f"127.0.0.1:{mqtt_port}",
            "influxdb:8086": f"127.0.0.1:{self.influx.port}",
            "postgres:5432": f"127.0.0.1:{self.postgres_port}",
            "api:8080": f"127.0.0.1:{self.api_port}",
        }
        self.mosquitto = ComposeMosquitto(self.runtime, services["mosquitto"], mqtt_port)
        self.mosquitto.start()
        self.collectors: dict[str, ComposeReplica] = {}
        self.others: list[ComposeReplica] = []
        for name, service in sorted(services.items()):
            if service.get("command", [])[:3] != ["python", "-m", "collector"]:
                continue
            env = self.runtime.environment(service)
            assert env["EQUIPMON_COLLECTOR__INFLUX__API"] == "v2"
            _influx_v1(env)
            http_port = free_port()  # each container has its own 9101; here they share loopback
            env["EQUIPMON_COLLECTOR__HTTP__PORT"] = str(http_port)
            replica = ComposeReplica(name, service, env, root / f"{name}.log")
            replica.http_port = http_port
            replica.ready_check = lambda port=http_port: _subscribed(port)
            self.collectors[name] = replica

    def influx_client(self) -> InfluxClient:
        """A client on the database the compose file names."""
        database = self.collectors["collector-1"].env["EQUIPMON_COLLECTOR__INFLUX__DATABASE"]
        return InfluxClient(InfluxSettings(url=self.influx.url, database=database, api="v1"))

    @property
    def mqtt_port(self) -> int:
        return self.mosquitto.port

    def service(self, name: str, log: Path, **listen: str) -> ComposeReplica:
        """Another equipmon service, with its command and environment mapped; ``listen`` sets
        the variables of the ports it listens on (its own in a container, shared here)."""
        service = self.compose["services"][name]
        env = self.runtime.environment(service)
        _influx_v1(env)
        env.update(listen)
        replica = ComposeReplica(name, service, env, log)
        replica.set_command(self.runtime.command(service))
        self.others.append(replica)
        return replica

    def stop(self) -> None:
        for replica in [*reversed(self.others), *self.collectors.values()]:
            replica.stop()
        self.mosquitto.stop()
        self.influx.stop()


def _influx_v1(env: dict[str, str]) -> None:
    """Every service's InfluxDB API v2 → v1: InfluxDB 1.6.7 stands in for influxdb:2.7."""
    for name, value in env.items():
        if name.endswith("__INFLUX__API") and value == "v2":
            env[name] = "v1"


def _subscribed(port: int) -> bool:
    return scrape(port).get("equipmon_collector_mqtt_subscribed") == 1


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """The compose services, started; stopped after the test."""
    deployment = Deployment(tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop()


def _gateway(deployment: Deployment, site: str, letter: str) -> Publisher:
    password = deployment.variables[f"MQTT_GATEWAY_{letter}_PASSWORD"]
    return Publisher(
        "127.0.0.1", deployment.mqtt_port, f"gw-{site}-1-test", auth=(f"gw-{site}-1", password)
    )


def _publish(gateways: dict[str, Publisher], phase: int) -> None:
    """PHASE readings per site; reading n has value n and its own timestamp."""
    for i in range(PHASE):
        for k, (site, gateway) in enumerate(sorted(gateways.items())):
            n = (phase * PHASE + i) * 2 + k
            body = {"time": T0 + n * 1000, "sensors": {"v": float(n)}}
            gateway.publish(f"equipmon/{site}/asset-{n % 5}/telemetry", json.dumps(body).encode())
    for gateway in gateways.values():
        gateway.flush()


def _refused_reason(port: int, username: str, password: str, topic: str) -> int:
    """Publish once as ``username`` to ``topic``; the PUBACK's reason code."""
    done = threading.Event()
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acl-probe", protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)

    def on_publish(c: Any, u: Any, mid: int, reason: Any, properties: Any) -> None:
        codes.append(reason.value)
        done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, b'{"sensors": {"v": -1.0}}', qos=1)
        assert done.wait(10), "no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def _session_present(port: int, client_id: str, password: str) -> bool:
    """Whether the broker still keeps a session for ``client_id`` (asks without making one)."""
    present: list[bool] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set("collector", password)

    def on_connect(c: Any, u: Any, flags: mqtt.ConnectFlags, *_: Any) -> None:
        present.append(flags.session_present)
        done.set()

    client.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0  # this probe's own session ends with it
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


def _spool_totals(replica: ComposeReplica) -> dict[str, int]:
    folder = Path(replica.env["EQUIPMON_COLLECTOR__SPOOL__PATH"])
    with sqlite3.connect(folder / f"{replica.hostname}.sqlite") as db:
        return {str(k): int(v) for k, v in db.execute("SELECT name, value FROM totals")}


def test_compose_broker_and_two_collector_replicas_lose_nothing(
    deployment: Deployment,
) -> None:
    one, two = deployment.collectors["collector-1"], deployment.collectors["collector-2"]
    assert (one.hostname, two.hostname) == ("collector-1", "collector-2")
    for replica in (one, two):
        replica.start()
    influx = deployment.influx_client()
    gateways = {"plant-a": _gateway(deployment, "plant-a", "A"),
                "plant-b": _gateway(deployment, "plant-b", "B")}  # fmt: skip
    try:
        # A gateway may publish only under its own site (the ACL); v5 says so in the PUBACK.
        password_a = deployment.variables["MQTT_GATEWAY_A_PASSWORD"]
        refused = _refused_reason(
            deployment.mqtt_port, "gw-plant-a-1", password_a, "equipmon/plant-b/x/telemetry"
        )
        assert refused == 0x87  # not authorised

        _publish(gateways, 0)  # both replicas up: both take a share
        wait_for(lambda: count_and_sum(influx)[0] >= 2 * PHASE, 60, "phase 0 stored")
        received = "equipmon_collector_messages_received_total"
        shares = [scrape(r.http_port)[received] for r in (one, two)]
        assert all(share > 0 for share in shares), shares

        one.kill()  # SIGKILL: its share is queued in its session meanwhile
        _publish(gateways, 1)
        one.start()  # same hostname, same identity: it gets the queue back

        two.stop()  # SIGTERM is a restart: the session stays, and so does its share...
        publishing = threading.Thread(target=_publish, args=(gateways, 2))
        publishing.start()
        # ...until it leaves for good, while publishing goes on.
        leave = two.run_once("leave")
        publishing.join(120)
        assert leave.returncode == 0, leave.stderr
        client_id = f"equipmon-collector-{two.hostname}"
        assert "has left" in leave.stderr
        taken = re.search(r"leave: (\d+) queued messages taken over", leave.stderr)
        assert taken, leave.stderr
        assert int(taken.group(1)) > 0  # its share, queued while it was stopped
        collector_password = deployment.variables["MQTT_COLLECTOR_PASSWORD"]
        assert not _session_present(deployment.mqtt_port, client_id, collector_password)
        _publish(gateways, 3)  # everything now goes to collector-1

        total = 4 * PHASE * 2
        expected = (total, float(sum(range(total))))
        wait_for(lambda: count_and_sum(influx)[0] >= total, 90, f"{total} readings stored")
        assert count_and_sum(influx) == expected  # none lost, each stored once
        one.stop()
        written = {r.name: _spool_totals(r).get("readings_written", 0) for r in (one, two)}
        assert all(written.values()), written
        # Redelivered after the SIGKILL (acknowledged late) can be written twice: InfluxDB keeps
        # one point per asset and time, which the count above checked.
        assert sum(written.values()) >= total
        print(f"compose deployment: published {total}, stored {count_and_sum(influx)[0]}, "
              f"written per replica {written}, shares before the kill {shares}, "
              f"queued share taken by leave {taken.group(1)}")  # fmt: skip
    finally:
        for gateway in gateways.values():
            gateway.close()
        influx.close()


def _answers(port: int, path: str) -> int | None:
    """The HTTP status of GET path (None when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def _points(influx: InfluxClient, site: str) -> int:
    """Points of a site in any field (0 until a collector created the database)."""
    try:
        series = influx.query(f"SELECT COUNT(*) FROM telemetry WHERE site = '{site}'")
    except InfluxRejectedError:
        return 0
    if not series or not series[0].values:
        return 0
    return max(int(v or 0) for v in series[0].values[0][1:])


@pytest.mark.slow  # about a minute: every service starts, the simulators run in real time
def test_compose_services_start_seed_the_plant_and_store_the_simulators_readings(
    deployment: Deployment, tmp_path: Path
) -> None:
    """postgres, api, seed, both collectors, analytics and device_sims as the compose file
    starts them: the plant is registered, both answer /healthz, the simulated gateways' MQTT
    readings of both sites are stored through the authenticated broker by both replicas."""
    variables = deployment.variables
    postgres = LocalPostgres(
        deployment.postgres_port,
        deployment.runtime.environment(deployment.compose["services"]["postgres"]),
    )
    try:
        postgres.start()
        postgres.create_database()
        api_port = deployment.api_port
        api = deployment.service(
            "api", tmp_path / "api.log", EQUIPMON_API__SERVER__PORT=str(api_port)
        )
        api.ready_check = lambda: _answers(api_port, "/healthz") == 200
        api.start()
        for replica in deployment.collectors.values():
            replica.start()
        seed = deployment.service("seed", tmp_path / "seed.log").run_once()
        assert seed.returncode == 0, seed.stdout + seed.stderr
        analytics_port = free_port()
        analytics = deployment.service(
            "analytics",
            tmp_path / "analytics.log",
            EQUIPMON_ANALYTICS__HTTP_PORT=str(analytics_port),
        )
        analytics.ready_check = lambda: _answers(analytics_port, "/healthz") is not None
        analytics.start()
        sims = deployment.service("device_sims", tmp_path / "sims.log")
        control = free_port()  # its own 9103 in a container
        argv = sims.compose_command
        argv[argv.index("--control-port") + 1] = str(control)
        sims.set_command(argv)
        sims.ready_check = lambda: port_open("127.0.0.1", control)
        sims.start()

        influx = deployment.influx_client()
        try:
            wait_for(lambda: _points(influx, "plant-a") > 0 and _points(influx, "plant-b") > 0,
                     60, "simulated readings of both sites")  # fmt: skip
        finally:
            influx.close()
        received = "equipmon_collector_messages_received_total"
        replicas = list(deployment.collectors.values())

        def both_shares() -> bool:
            return all(scrape(r.http_port).get(received, 0) > 0 for r in replicas)

        wait_for(both_shares, 60, "both replicas taking a share")
        token = variables["EQUIPMON_ADMIN_TOKEN"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/api/v1/assets?limit=100",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assets = json.loads(response.read())
        items = assets["items"] if isinstance(assets, dict) else assets
        assert len(items) >= 20  # the demo plant, registered by the seed job
        assert _answers(api_port, "/healthz") == 200
        assert _answers(analytics_port, "/healthz") is not None
    finally:
        deployment.stop()
        postgres.stop()
        postgres.remove()
