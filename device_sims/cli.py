"""Command line: run a scenario, backfill its healthy history into InfluxDB, list machine types,
faults and a scenario's assets, inject/clear faults, sample."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from device_sims.control import call
from device_sims.engine import Simulation, make_asset
from device_sims.environment import Ambient, SiteClimate
from device_sims.faults import FAULTS, FaultSpec
from device_sims.fleet import TransportOptions, parse_mqtt_auth
from device_sims.formats import json_single, line_protocol, serial_frame
from device_sims.history import backfill_influx
from device_sims.machines import MACHINE_TYPES
from device_sims.readiness import DEFAULT_ANALYTICS, Readiness, ask, wait_until_scored
from device_sims.runner import MODES, Runner, RunOptions
from device_sims.scenario import ScenarioError, load_scenario
from device_sims.timefmt import parse_duration_ns, parse_time_ns

DEFAULT_CONTROL = "http://127.0.0.1:8765"


def _add_run_command(sub: Any) -> None:
    run = sub.add_parser("run", help="run a scenario")
    run.add_argument("scenario", type=Path)
    run.add_argument("--mode", choices=MODES, default="accelerated")
    run.add_argument("--seed", type=int, help="override the scenario seed")
    run.add_argument(
        "--speed",
        type=float,
        default=1440.0,
        help="accelerated: simulated seconds per wall second (1440 = 1 day/min)",
    )
    run.add_argument("--start", help="simulated start (RFC 3339); default: the scenario's")
    run.add_argument("--duration", help="simulated duration, e.g. 14d (default: scenario's)")
    run.add_argument("--out", help="backfill stream output: a file, or - for stdout")
    run.add_argument("--format", choices=("jsonl", "lp"), default="jsonl")
    run.add_argument(
        "--to-transports",
        action="store_true",
        help="backfill: send through the scenario's transports too",
    )
    run.add_argument("--truth", type=Path, help="ground-truth file (JSON lines)")
    run.add_argument("--mqtt-host")
    run.add_argument("--mqtt-port", type=int)
    run.add_argument("--mqtt-prefix")
    run.add_argument("--http-url", help="API base URL for HTTP gateways")
    run.add_argument("--token", help="bearer token for HTTP gateways")
    run.add_argument(
        "--mqtt-auth",
        action="append",
        default=[],
        metavar="SITE=USER:PASSWORD",
        help="MQTT login of a site's publishers (also EQUIPMON_SIM_MQTT_AUTH, comma-separated, "
        "which keeps passwords off the command line)",
    )
    run.add_argument(
        "--serial-listen",
        action="append",
        default=[],
        metavar="LINE=URL",
        help="serve a serial line on socket://host:port instead of a pty",
    )
    run.add_argument("--control-port", type=int, default=8765, help="0 = any free port")
    run.add_argument(
        "--history-start",
        help="realtime: continue a healthy backfill of this scenario that started here (RFC "
        "3339; device_sims backfill --start): the simulation is replayed silently up to now "
        "first, so live readings carry on from the history's machine states",
    )
    run.add_argument(
        "--ports-file", type=Path, help="write serial/modbus/control addresses here as JSON"
    )


def _add_backfill_command(sub: Any) -> None:
    backfill = sub.add_parser(
        "backfill",
        help="write a healthy history of a scenario's fleet, ending now, into InfluxDB",
        description="Simulates the scenario's fleet over --duration ending at --end (default: "
        "now) as fast as the CPU allows and writes it in line protocol to InfluxDB's /write. "
        "The scenario's faults are left out unless --with-faults is given.",
    )
    backfill.add_argument("scenario", type=Path)
    backfill.add_argument("--influx-url", required=True, help="e.g. http://127.0.0.1:8086")
    backfill.add_argument("--database", default="equipmon")
    backfill.add_argument("--duration", default="6h", help="span of history (default 6h)")
    backfill.add_argument("--end", help="end of the history (RFC 3339; default: now)")
    backfill.add_argument("--start", help="start of the history (RFC 3339; instead of --duration)")
    backfill.add_argument("--seed", type=int, help="override the scenario seed")
    backfill.add_argument("--with-faults", action="store_true", help="keep the scenario's faults")


def _add_readiness_options(cmd: Any) -> None:
    cmd.add_argument(
        "--analytics",
        default=DEFAULT_ANALYTICS,
        help="analytics' ops port, asked whether the asset is scored yet (default %(default)s)",
    )
    cmd.add_argument("--site", help="the asset's site, when its name is on several")
    cmd.add_argument(
        "--wait", action="store_true", help="wait until analytics scores the asset, then inject"
    )
    cmd.add_argument(
        "--wait-max", default="30m", help="give up waiting after this long (default 30m)"
    )
    cmd.add_argument(
        "--force", action="store_true", help="inject even while analytics still learns the asset"
    )


def _add_opcua_command(sub: Any) -> None:
    opcua = sub.add_parser("opcua", help="serve a simulated controller over OPC UA")
    opcua.add_argument("--port", type=int, default=4840)
    opcua.add_argument("--site", default="plant-a")
    opcua.add_argument("--assets", type=int, default=25)
    opcua.add_argument("--sensors", type=int, default=8, help="variables per asset")
    opcua.add_argument("--rate-hz", type=float, default=1.0, help="value changes per second")
    opcua.add_argument("--security", choices=("none", "basic256sha256"), default="none")
    opcua.add_argument(
        "--user", help="require this user name (password: EQUIPMON_SIM_OPCUA_PASSWORD)"
    )
    opcua.add_argument("--cert-dir", type=Path, help="where the server's certificate is made")
    opcua.add_argument(
        "--asset", action="append", default=[], help="name the machines (default machine-NN)"
    )
    opcua.add_argument("--bad", action="append", default=[], metavar="ASSET.SENSOR")
    opcua.add_argument("--uncertain", action="append", default=[], metavar="ASSET.SENSOR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m device_sims", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_run_command(sub)
    _add_backfill_command(sub)
    sub.add_parser("list", help="machine types, their sensors, and fault kinds")
    assets = sub.add_parser(
        "assets", help="a scenario's assets with their sensors, units and ranges, as JSON"
    )
    assets.add_argument("scenario", type=Path)

    for name in ("inject", "clear"):
        cmd = sub.add_parser(name, help=f"{name} a fault on a running simulation")
        cmd.add_argument("asset")
        cmd.add_argument("kind", nargs="?" if name == "clear" else None)
        cmd.add_argument("--control", default=DEFAULT_CONTROL)
        if name == "inject":
            _add_readiness_options(cmd)
            cmd.add_argument("--severity", type=float, default=1.0)
            cmd.add_argument("--ramp")
            cmd.add_argument("--growth", type=float)
            cmd.add_argument("--sensor")
            cmd.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        else:
            cmd.add_argument("--id")
    status = sub.add_parser("status", help="status of a running simulation")
    status.add_argument("--control", default=DEFAULT_CONTROL)

    _add_opcua_command(sub)

    sample = sub.add_parser("sample", help="print what one asset of a type emits")
    sample.add_argument("machine_type", choices=sorted(MACHINE_TYPES))
    sample.add_argument("--count", type=int, default=10)
    sample.add_argument("--interval", default="10s")
    sample.add_argument("--seed", type=int, default=1)
    sample.add_argument("--start", default="2026-11-23T08:00:00Z")
    sample.add_argument("--format", choices=("json", "lp", "serial"), default="json")
    sample.add_argument("--fault", help="kind[:severity], active from the first reading")
    return parser


def _cmd_list(out: IO[str]) -> int:
    for name, cls in MACHINE_TYPES.items():
        out.write(f"{name}: {cls.DESCRIPTION}\n")
        for spec in cls.SENSORS:
            out.write(f"    {spec.name:<20} {spec.unit}\n")
        out.write(f"    faults: {', '.join(sorted(cls.FAULTS))} + sensor faults\n")
    out.write("\nfaults:\n")
    for info in FAULTS.values():
        out.write(f"  {info.kind} ({info.category}, ramp {info.ramp}): {info.signature}\n")
    return 0


def _cmd_assets(args: argparse.Namespace, out: IO[str]) -> int:
    """The asset register of a scenario (what an operator enters in the CMMS)."""
    scenario = load_scenario(args.scenario)
    register = [
        {
            "site": asset.site,
            "asset": asset.name,
            "type": asset.type,
            "transport": asset.transport,
            "sensors": [
                {"name": s.name, "unit": s.unit, "min_value": s.lo, "max_value": s.hi}
                for s in MACHINE_TYPES[asset.type].SENSORS
            ],
        }
        for asset in scenario.assets
    ]
    json.dump(register, out, indent=1, ensure_ascii=False)
    out.write("\n")
    return 0


def _cmd_sample(args: argparse.Namespace, out: IO[str]) -> int:
    start = parse_time_ns(args.start, 0)
    asset = make_asset(
        name=f"{args.machine_type}-01",
        site="plant-a",
        machine_type=args.machine_type,
        seed=args.seed,
        start_ns=start,
        interval_ns=parse_duration_ns(args.interval),
        ambient=Ambient(SiteClimate(indoor=True), args.seed),
    )
    sim = Simulation([asset], start)
    if args.fault:
        kind, _, severity = args.fault.partition(":")
        sim.add_fault(
            FaultSpec(asset=asset.name, kind=kind, onset_ns=start, severity=float(severity or 1.0))
        )
    seq = 0
    for sample in sim.run_until(start + asset.interval_ns * args.count):
        if args.format == "lp":
            out.write(line_protocol(sample) + "\n")
        elif args.format == "serial":
            out.write(serial_frame(sample.asset, seq, sample.sensors, sample.time_ns).decode())
            seq += 1
        else:
            out.write(json_single(sample).decode() + "\n")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = replace(scenario, seed=args.seed)
    out: Any = None
    if args.out == "-" or (args.mode == "backfill" and not args.out and not args.to_transports):
        out = sys.stdout.buffer
    elif args.out:
        out = open(args.out, "wb")  # noqa: SIM115 - closed below
    listen = dict(item.split("=", 1) for item in args.serial_listen)
    env_auth = [i for i in os.environ.get("EQUIPMON_SIM_MQTT_AUTH", "").split(",") if i.strip()]
    mqtt_auth = parse_mqtt_auth([*env_auth, *args.mqtt_auth])
    runner = Runner(
        scenario,
        RunOptions(
            mode=args.mode,
            speed=args.speed,
            start_ns=parse_time_ns(args.start, 0) if args.start else None,
            duration_ns=parse_duration_ns(args.duration) if args.duration else None,
            out=out,
            out_format=args.format,
            use_transports=args.mode != "backfill" or args.to_transports,
            truth_path=args.truth,
            control_port=args.control_port,
            ports_file=args.ports_file,
            history_start_ns=parse_time_ns(args.history_start, 0) if args.history_start else None,
        ),
        TransportOptions(
            mqtt_host=args.mqtt_host,
            mqtt_port=args.mqtt_port,
            mqtt_prefix=args.mqtt_prefix,
            http_url=args.http_url,
            token=args.token,
            block=args.mode == "backfill",
            serial_listen=listen,
            mqtt_auth=mqtt_auth,
        ),
    )

    def _stop(signum: int, frame: object) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    runner.start()
    for key, url in runner.endpoints.items():
        logging.info("%s: %s", key, url)
    try:
        count = runner.run()
    finally:
        runner.close()
        if out is not None and out is not sys.stdout.buffer:
            out.close()
    logging.info("done: %d readings; %s", count, json.dumps(runner.stats()))
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = replace(scenario, seed=args.seed)
    end_ns = parse_time_ns(args.end, 0) if args.end else None
    if args.start:
        if end_ns is None:
            raise ValueError("--start needs --end")
        duration_ns = end_ns - parse_time_ns(args.start, 0)
    else:
        duration_ns = parse_duration_ns(args.duration)
    if duration_ns <= 0:
        raise ValueError("the history must end after it starts")
    result = backfill_influx(
        scenario,
        args.influx_url,
        args.database,
        duration_ns=duration_ns,
        end_ns=end_ns,
        with_faults=args.with_faults,
    )
    logging.info("%s", result.summary())
    return 0


def _ready_to_inject(args: argparse.Namespace) -> bool:
    """Whether analytics scores the asset (waiting for it with --wait); warns when not."""
    if args.force:
        return True
    try:
        state = ask(args.analytics, args.asset, args.site)
    except OSError as exc:
        print(f"warning: {exc}; injecting without knowing whether {args.asset} is scored yet",
              file=sys.stderr)  # fmt: skip
        return True
    if state.scoring:
        return True
    if not args.wait:
        print(
            f"warning: {state.explain(_now())}. A fault injected now would be learned as "
            "normal and never alert. Run again with --wait to inject as soon as it is scored, "
            "or with --force to inject anyway.",
            file=sys.stderr,
        )
        return False

    def waiting(current: Readiness) -> None:
        print(f"waiting: {current.explain(_now())}", file=sys.stderr, flush=True)

    wait_until_scored(
        args.analytics,
        args.asset,
        args.site,
        timeout_s=parse_duration_ns(args.wait_max) / 1e9,
        on_wait=waiting,
    )
    print(f"{args.asset} is scored now; injecting", file=sys.stderr)
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _cmd_inject(args: argparse.Namespace) -> int:
    if not _ready_to_inject(args):
        return 1
    body: dict[str, Any] = {"asset": args.asset, "kind": args.kind, "severity": args.severity}
    for key in ("ramp", "growth", "sensor"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    body["params"] = {k: float(v) for k, v in (p.split("=", 1) for p in args.param)}
    print(json.dumps(call(args.control, "/faults", body)))
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    body = {"asset": args.asset, "kind": args.kind, "id": args.id}
    print(json.dumps(call(args.control, "/faults/clear", body)))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    print(json.dumps(call(args.control, "/status"), indent=2))
    return 0


def _cmd_opcua(args: argparse.Namespace) -> int:
    from device_sims.opcua_server import OpcUaSimConfig, run

    run(
        OpcUaSimConfig(
            port=args.port,
            site=args.site,
            assets=args.assets,
            sensors=args.sensors,
            rate_hz=args.rate_hz,
            security=args.security,
            username=args.user,
            password=os.environ.get("EQUIPMON_SIM_OPCUA_PASSWORD", ""),
            cert_dir=args.cert_dir,
            names=list(args.asset),
            bad=set(args.bad),
            uncertain=set(args.uncertain),
        )
    )
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "opcua": _cmd_opcua,
    "list": lambda args: _cmd_list(sys.stdout),
    "assets": lambda args: _cmd_assets(args, sys.stdout),
    "sample": lambda args: _cmd_sample(args, sys.stdout),
    "status": _cmd_status,
    "inject": _cmd_inject,
    "backfill": _cmd_backfill,
    "clear": _cmd_clear,
    "run": _cmd_run,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("backfill", "inject"):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    try:
        return _COMMANDS[args.command](args)
    except (ScenarioError, ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
