"""Runs the whole stack on one machine: local Mosquitto and InfluxDB, then the equipmon services.

Each equipmon service is started as ``python -m <package>`` when that package has a ``__main__``
module; settings reach it through the environment (``EQUIPMON_<SERVICE>__<SECTION>__<OPTION>``,
the names docker-compose.yml uses too; docs/configuration.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stack.broker_auth import ACL_FILE, COLLECTOR_USER, broker_users, write_password_file
from stack.demo_serial import write_collector_config
from stack.first_run import (
    ALERT_WITHIN_MIN,
    DEMO_ASSET,
    Backfill,
    describe_scoring,
    inject_command,
    wait_for_scoring,
)
from stack.influxdb import InfluxDBServer
from stack.mosquitto import MosquittoServer
from stack.process import ManagedProcess, ServiceError, port_open
from stack.seed import (
    AdminClient,
    SeedError,
    scenario_register,
    seed_assets,
    seed_notifications,
    seed_plans,
    seed_users,
)
from stack.smtp_sink import SmtpSink

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = ROOT / "scenarios" / "demo.yaml"
# Each service's command line, in start order. A service whose entry is None has no long-running
# mode yet (later issues fill them in); the supervisor skips it and says so.
ServiceCommand = Callable[["StackOptions", str], list[str]] | None


def _device_sims_command(options: StackOptions, mqtt_url: str) -> list[str]:
    host, _, port = mqtt_url.removeprefix("mqtt://").partition(":")
    scenario = str(DEMO_SCENARIO)
    return [
        *("-m", "device_sims", "run", scenario, "--mode", "realtime"),
        *("--mqtt-host", host, "--mqtt-port", port or "1883"),
        *("--http-url", f"http://127.0.0.1:{options.api_port}"),
        # One argument: a random token may start with "-", which argparse takes for an option.
        f"--token={stack_tokens(options.data_dir)['gateway']}",
        *("--ports-file", str(options.data_dir / "sim-ports.json"), "--control-port", "0"),
        # Live readings carry on from the backfilled history's machine states (no jump).
        *(("--history-start", options.history_start) if options.history_start else ()),
    ]


# The demo's OPC UA controller: one machine on a simulated PLC the collector subscribes to.
OPCUA_SITE, OPCUA_ASSET = "plant-a", "plc-01"
OPCUA_SENSORS = (
    "flow",
    "pressure",
    "current",
    "vibration",
    "bearing_temp",
    "speed",
    "power",
    "level",
)  # fmt: skip  (device_sims.opcua_server.SENSORS: stack imports nothing of ours)


def _opcua_command(options: StackOptions, mqtt_url: str) -> list[str]:
    return [
        *("-m", "device_sims", "opcua", "--port", str(options.opcua_port)),
        *("--site", OPCUA_SITE, "--assets", "1", "--asset", OPCUA_ASSET, "--sensors", "8"),
    ]


# Its register entry, as device_sims assets gives those of the scenario.
OPCUA_REGISTER = {
    "site": OPCUA_SITE,
    "asset": OPCUA_ASSET,
    "type": "machine",
    "sensors": [{"name": name} for name in OPCUA_SENSORS],
}


def opcua_source(options: StackOptions) -> str:
    """The collector's ``opcua`` setting (JSON) for the demo's controller."""
    return json.dumps(
        [
            {
                "name": "demo-plc",
                "url": f"opc.tcp://127.0.0.1:{options.opcua_port}/equipmon/",
                "site": OPCUA_SITE,
                "groups": [{"browse": f"2:{OPCUA_SITE}"}],
            }
        ]
    )


def _api_command(options: StackOptions, mqtt_url: str) -> list[str]:
    return ["-m", "api"]


def _analytics_command(options: StackOptions, mqtt_url: str) -> list[str]:
    return ["-m", "analytics", "--verbose", "run"]  # its log says what it fits and when


def _collector_command(options: StackOptions, mqtt_url: str) -> list[str]:
    ports_file = options.data_dir / "sim-ports.json"
    if not (options.simulators and ports_file.exists()):
        return ["-m", "collector", "run"]
    # With the simulators, the collector also reads their serial lines (ASCII and Modbus RTU).
    config = write_collector_config(
        options.data_dir / "collector.yaml", DEMO_SCENARIO, ports_file,
        ROOT / "device_sims" / "registers",
    )  # fmt: skip
    return ["-m", "collector", "--config", str(config), "run"]


# The simulators start before the collector: their serial lines' pty paths are in the collector's
# configuration.
SERVICE_COMMANDS: dict[str, ServiceCommand] = {
    "api": _api_command,
    "device_sims": _device_sims_command,
    "opcua_sim": _opcua_command,
    "collector": _collector_command,
    "analytics": _analytics_command,
}


@dataclass
class StackOptions:
    """What to run and where; ports default away from system services (1883, 8086)."""

    data_dir: Path = ROOT / "var"
    mqtt_port: int = 1884
    influx_port: int = 8087
    api_port: int = 8080
    collector_http_port: int = 9101
    analytics_http_port: int = 9102
    opcua_port: int = 4841
    simulators: bool = True
    external_mqtt: str | None = None
    external_influx: str | None = None
    database_url: str | None = None
    # Healthy history backfilled for the demo fleet on a fresh data folder (0 = none).
    history_s: float = 6 * 3600.0
    # Set by run() when it backfills: where that history starts (RFC 3339), for the simulators.
    history_start: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


class ServiceProcess(ManagedProcess):
    """``python -m <package>`` with the stack's environment; ready when ``ready()`` says so."""

    start_timeout = 60.0

    def __init__(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        env: dict[str, str],
        ready: Callable[[], bool] | None,
    ) -> None:
        super().__init__(log_path)
        self.name = name
        self.args = args
        self.env = env
        self.ready = ready

    def command(self) -> Sequence[str]:
        return [sys.executable, *self.args]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def is_ready(self) -> bool:
        return self.ready is None or self.ready()


def available_services(simulators: bool) -> list[str]:
    """The services that have a long-running command yet (later issues add the rest)."""
    wanted = [s for s in SERVICE_COMMANDS if simulators or s not in ("device_sims", "opcua_sim")]
    return [s for s in wanted if SERVICE_COMMANDS[s] is not None]


def stack_tokens(data_dir: Path) -> dict[str, str]:
    """Bootstrap tokens (admin, service, gateway), made once per data folder and kept there."""
    path = data_dir / "tokens.json"
    if path.exists():
        tokens: dict[str, str] = json.loads(path.read_text())
        return tokens
    tokens = {role: secrets.token_urlsafe(24) for role in ("admin", "service", "gateway")}
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(tokens, indent=2) + "\n")
    return tokens


def stack_environment(options: StackOptions, mqtt_url: str, influx_url: str) -> dict[str, str]:
    """The settings every service reads, as environment variables."""
    data = options.data_dir
    tokens = stack_tokens(data)
    # Each service reads its own namespace (EQUIPMON_<SERVICE>__..., docs/configuration.md), so
    # shared facts such as InfluxDB's URL are given to each service that needs them.
    env = {
        "EQUIPMON_COLLECTOR__MQTT__URL": mqtt_url,
        "EQUIPMON_COLLECTOR__DATA_DIR": str(data),
        "EQUIPMON_COLLECTOR__HTTP__PORT": str(options.collector_http_port),
        # The demo's Sparkplug B edge node (gw-a-spb) follows the collector as primary host.
        "EQUIPMON_COLLECTOR__SPARKPLUG__ENABLED": "true",
        "EQUIPMON_ANALYTICS__API__URL": f"http://127.0.0.1:{options.api_port}",
        "EQUIPMON_ANALYTICS__DATA_DIR": str(data),
        "EQUIPMON_ANALYTICS__HTTP_PORT": str(options.analytics_http_port),
        # A new asset's first fit takes 15 minutes of data (default: an hour); the backfilled
        # history of a first run holds them already, so the demo fleet is scored at once.
        "EQUIPMON_ANALYTICS__TRAIN_AFTER_S": "900",
        "EQUIPMON_ANALYTICS__SERVICE_TOKEN": tokens["service"],
        "EQUIPMON_API__DATABASE_URL": options.database_url or f"sqlite:///{data / 'equipmon.db'}",
        "EQUIPMON_API__SERVER__HOST": "127.0.0.1",
        "EQUIPMON_API__SERVER__PORT": str(options.api_port),
        "EQUIPMON_API__ADMIN_TOKEN": tokens["admin"],
        "EQUIPMON_API__SERVICE_TOKEN": tokens["service"],
        "EQUIPMON_API__GATEWAY_TOKEN": tokens["gateway"],
        # The demo's HTTP gateway serves site plant-a; simulated assets need no registration.
        "EQUIPMON_API__GATEWAY_SITE": "plant-a",
        "EQUIPMON_API__SERVER__ACCEPT_UNREGISTERED_ASSETS": "true",
    }
    if options.simulators:
        # The demo's OPC UA controller (device_sims opcua), read through subscriptions.
        env["EQUIPMON_COLLECTOR__OPCUA"] = opcua_source(options)
    for service in ("COLLECTOR", "ANALYTICS", "API"):
        env[f"EQUIPMON_{service}__INFLUX__URL"] = influx_url
        env[f"EQUIPMON_{service}__INFLUX__DATABASE"] = "equipmon"
    if not options.external_mqtt:
        # The local broker runs compose's security model: logins and per-gateway ACLs.
        users = broker_users(data)
        env["EQUIPMON_COLLECTOR__MQTT__USERNAME"] = COLLECTOR_USER
        env["EQUIPMON_COLLECTOR__MQTT__PASSWORD"] = users.collector_password
        env["EQUIPMON_SIM_MQTT_AUTH"] = users.sim_auth()
    env.update(options.extra_env)
    return env


def _start_infrastructure(options: StackOptions, children: list[ManagedProcess]) -> tuple[str, str]:
    """Start (or adopt) the broker and InfluxDB; return their URLs."""
    if options.external_mqtt:
        mqtt_url = options.external_mqtt
    else:
        broker_dir = options.data_dir / "mosquitto"
        users = broker_users(options.data_dir)
        broker = MosquittoServer(
            broker_dir,
            port=options.mqtt_port,
            password_file=write_password_file(users, broker_dir / "passwd"),
            acl_file=ACL_FILE,
        )
        children.append(broker)
        broker.start()
        mqtt_url = broker.url
    if options.external_influx:
        return mqtt_url, options.external_influx
    influx = InfluxDBServer(options.data_dir / "influxdb", port=options.influx_port)
    children.append(influx)
    influx.start()
    _create_database(influx.url, "equipmon")
    return mqtt_url, influx.url


def _start_services(
    options: StackOptions,
    mqtt_url: str,
    env: dict[str, str],
    children: list[ManagedProcess],
    on_ready: Callable[[str], None] = lambda _name: None,
    *,
    before_start: Callable[[str], None] = lambda _name: None,
) -> list[ServiceProcess]:
    """Start the services in order, each once the one before is ready; ``before_start(name)``
    and ``on_ready(name)`` run around each (the API is seeded before anything that posts to
    it starts; analytics starts once the backfill is in)."""
    started = []
    ports_file = options.data_dir / "sim-ports.json"
    ports_file.unlink(missing_ok=True)  # a stale file from the last run names dead ptys
    readiness: dict[str, Callable[[], bool]] = {
        "api": lambda: port_open("127.0.0.1", options.api_port),
        "collector": lambda: port_open("127.0.0.1", options.collector_http_port),
        "analytics": lambda: port_open("127.0.0.1", options.analytics_http_port),
        "device_sims": ports_file.exists,
        "opcua_sim": lambda: port_open("127.0.0.1", options.opcua_port),
    }
    for name in available_services(options.simulators):
        command = SERVICE_COMMANDS[name]
        assert command is not None
        log_path = options.data_dir / "logs" / f"{name}.log"
        before_start(name)
        service = ServiceProcess(
            name, command(options, mqtt_url), log_path, env, readiness.get(name)
        )
        children.append(service)
        service.start()
        started.append(service)
        on_ready(name)
    return started


def _print_banner(
    options: StackOptions, mqtt_url: str, influx_url: str, services: list[ServiceProcess]
) -> None:
    print(f"equipmon is running (data in {options.data_dir})")
    print(f"  MQTT broker:  {mqtt_url}")
    print(f"  InfluxDB:     {influx_url}  (database 'equipmon')")
    for service in services:
        print(f"  {service.name}: running, pid {service.pid}, log {service.log_path}")
    missing = [name for name, command in SERVICE_COMMANDS.items() if command is None]
    if missing:
        print(f"  not yet available as services: {', '.join(missing)}")
    if any(s.name == "api" for s in services):
        print(f"  API:          http://127.0.0.1:{options.api_port}/api/v1  (OpenAPI at /docs)")
        print(f"  Tokens:       admin, service, gateway in {options.data_dir / 'tokens.json'}")
        print(f"  Dashboard:    http://127.0.0.1:{options.api_port}/ui/")
        print(f"  Mail sink:    smtp://127.0.0.1 (notification e-mail kept in "
              f"{options.data_dir / 'smtp' / 'mail'})")  # fmt: skip
    if any(s.name == "opcua_sim" for s in services):
        print(f"  OPC UA:       opc.tcp://127.0.0.1:{options.opcua_port}/equipmon/ "
              f"({OPCUA_ASSET}, read by the collector through subscriptions)")  # fmt: skip
        print("  Sparkplug B:  edge node gw-a-spb (pump-s01) on the broker; the collector is its "
              "primary host")  # fmt: skip


def _simulator_control(options: StackOptions) -> str | None:
    ports_file = options.data_dir / "sim-ports.json"
    if not ports_file.exists():
        return None
    control: str | None = json.loads(ports_file.read_text()).get("control")
    return control


def _print_demo_hint(options: StackOptions, stop: threading.Event) -> None:
    """Once analytics scores the demo asset: what to inject, and when its alert comes."""
    control = _simulator_control(options)
    if not control:
        return
    analytics = f"http://127.0.0.1:{options.analytics_http_port}"
    print(f"  Simulators:   control API {control}", flush=True)
    found = wait_for_scoring(analytics, stop.is_set)
    if stop.is_set():
        return  # Ctrl-C while waiting
    for line in describe_scoring(found):
        print(line)
    # The demo's own faults start hours in; this shows the whole loop within minutes.
    minutes = ALERT_WITHIN_MIN
    if found is not None and found.demo_scored:
        print(f"  Analytics is scoring {DEMO_ASSET}; inject a fault (an alert and its work order "
              f"come within ~{minutes} minutes):")  # fmt: skip
    else:
        print(f"  Analytics is still learning {DEMO_ASSET}; this command waits until it is "
              f"scored, then injects (the alert comes ~{minutes} minutes later):")  # fmt: skip
    print(f"    {inject_command(control, analytics)}")


def _seed(options: StackOptions) -> dict[str, str] | None:
    """Register the demo's assets and users in the API; the users' passwords when just made."""
    client = AdminClient(
        f"http://127.0.0.1:{options.api_port}", stack_tokens(options.data_dir)["admin"]
    )
    try:
        if options.simulators:
            added = seed_assets(client, [*scenario_register(DEMO_SCENARIO), OPCUA_REGISTER])
            plans = seed_plans(client)
            log.info("preventive maintenance: %d demo plans added", plans)
            log.info("asset register: %d demo assets added", added)
        passwords = seed_users(client, options.data_dir)
        log.info("notifications: %d demo rules added", seed_notifications(client))
        return passwords
    except SeedError as exc:
        raise ServiceError(f"seeding the API failed: {exc}") from exc


def run(options: StackOptions) -> int:
    """Start everything, print where to look, and stop every child on Ctrl-C or SIGTERM."""
    # A first start (no InfluxDB data yet) backfills a healthy history for the demo fleet.
    fresh = not (options.data_dir / "influxdb").exists()
    options.data_dir.mkdir(parents=True, exist_ok=True)
    children: list[ManagedProcess] = []
    backfill: Backfill | None = None
    stop = threading.Event()
    # Handlers for both: a shell's background job starts with SIGINT ignored, and the supervisor
    # must still stop its children on Ctrl-C or a service manager's SIGTERM.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        mqtt_url, influx_url = _start_infrastructure(options, children)
        if options.simulators and options.history_s > 0 and fresh and not options.external_influx:
            # Written while the API starts; analytics waits for it (before_start below).
            backfill = Backfill(
                DEMO_SCENARIO, influx_url, options.history_s, options.data_dir / "backfill.json"
            )
            options = dataclasses.replace(options, history_start=backfill.start)
        env = stack_environment(options, mqtt_url, influx_url)
        # Notification e-mail goes to a local sink that keeps each message as a file.
        sink = SmtpSink(options.data_dir / "smtp")
        children.append(sink)
        sink.start()
        env |= {
            "EQUIPMON_API__NOTIFY__SMTP__PORT": str(sink.port),
            "EQUIPMON_API__NOTIFY__PUBLIC_URL": f"http://127.0.0.1:{options.api_port}",
            # Kept with the data folder like the tokens, so links survive a restart of the demo.
            "EQUIPMON_API__NOTIFY__LINK_SECRET": stack_tokens(options.data_dir)["admin"] + "-links",
        } | options.extra_env
        seeded: dict[str, dict[str, str] | None] = {}

        def seed_after_api(name: str) -> None:
            # Sites and assets exist before the simulators push and analytics posts status
            # (it answered 422 "unknown site" on a first start).
            if name == "api":
                seeded["users"] = _seed(options)

        def backfill_before_analytics(name: str) -> None:
            # Analytics' first tick must find the history: it fits on it at once.
            if name == "analytics" and backfill is not None:
                seconds = backfill.wait()
                if seconds is not None:
                    hours = options.history_s / 3600
                    log.info("backfill of %.3g h done in %.1f s", hours, seconds)

        services = _start_services(
            options, mqtt_url, env, children, seed_after_api,
            before_start=backfill_before_analytics,
        )  # fmt: skip
        new_users = seeded.get("users")
        _print_banner(options, mqtt_url, influx_url, services)
        if any(s.name == "analytics" for s in services):
            _print_demo_hint(options, stop)
        if new_users:
            print("  Demo users (passwords shown once; kept in demo-users.json):")
            for name, password in new_users.items():
                print(f"    {name:<12} {password}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(1.0):
            for child in children:
                if not child.is_running():
                    log.error("%s exited; see %s", child.name, child.log_path)
                    return 1
        return 0
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if backfill is not None:
            backfill.stop()
        for child in reversed(children):
            child.stop()
        print("equipmon stopped.")


def _create_database(url: str, name: str) -> None:
    body = f"q=CREATE DATABASE {name}".encode()
    request = urllib.request.Request(f"{url}/query", data=body, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
