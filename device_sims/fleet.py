"""Builds a running fleet from a scenario: the simulation and the transport of every asset."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from device_sims.engine import AssetSim, Simulation, make_asset
from device_sims.environment import Ambient
from device_sims.registers import RegisterMap, builtin_map, load_register_map
from device_sims.scenario import Scenario
from device_sims.seeding import derive_seed
from device_sims.timefmt import parse_duration_ns
from device_sims.transports.base import Transport
from device_sims.transports.http_push import HttpGateway
from device_sims.transports.modbus_rtu import ModbusRtuLine
from device_sims.transports.mqtt import MqttPublisher
from device_sims.transports.serial_ascii import SerialAsciiLine
from device_sims.transports.sparkplug import SparkplugEdgeNode


def build_simulation(
    scenario: Scenario, start_ns: int | None = None, *, faults_from_ns: int | None = None
) -> Simulation:
    """Assets and scheduled faults; deterministic for a scenario, its seed and start.

    The scheduled faults keep their offset from ``faults_from_ns`` (default: the start): a live
    run that continues a backfilled history starts its simulation at the history's start and
    its faults at the live start."""
    start = scenario.start_ns if start_ns is None else start_ns
    ambients = {
        name: Ambient(climate, derive_seed(scenario.seed, "site", name))
        for name, climate in scenario.sites.items()
    }
    assets: list[AssetSim] = [
        make_asset(
            name=a.name,
            site=a.site,
            machine_type=a.type,
            seed=scenario.seed,
            start_ns=start,
            interval_ns=a.interval_ns,
            ambient=ambients[a.site],
            params=a.params,
            duty=a.duty,
        )
        for a in scenario.assets
    ]
    sim = Simulation(assets, start)
    shift = (start if faults_from_ns is None else faults_from_ns) - scenario.start_ns
    for fault in scenario.faults:
        spec = copy.deepcopy(fault)
        spec.onset_ns += shift
        if spec.end_ns is not None:
            spec.end_ns += shift
        sim.add_fault(spec)
    return sim


@dataclass
class TransportOptions:
    """Overrides from the command line (broker, API) and the delivery policy."""

    mqtt_host: str | None = None
    mqtt_port: int | None = None
    mqtt_prefix: str | None = None
    http_url: str | None = None
    token: str | None = None
    block: bool = False  # backfill waits for room; live modes drop oldest
    client_prefix: str = "equipmon-sim"
    serial_listen: Mapping[str, str] = field(default_factory=dict)
    # Per-site MQTT credentials (site → (username, password)): a broker with per-gateway ACLs
    # lets each gateway publish only under its own site, so each site's publishers log in as it.
    mqtt_auth: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def parse_mqtt_auth(items: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``SITE=USER:PASSWORD`` items (from --mqtt-auth or EQUIPMON_SIM_MQTT_AUTH) as a mapping."""
    result: dict[str, tuple[str, str]] = {}
    for item in items:
        site, eq, credentials = item.strip().partition("=")
        user, colon, password = credentials.partition(":")
        if not (eq and colon and site and user):
            raise ValueError(f"MQTT credentials must read SITE=USER:PASSWORD, got {item!r}")
        result[site] = (user, password)
    return result


def _mqtt_kwargs(scenario: Scenario, opts: TransportOptions, site: str) -> dict[str, Any]:
    cfg = scenario.mqtt
    username, password = opts.mqtt_auth.get(site, (cfg.get("username"), cfg.get("password")))
    return {
        "host": opts.mqtt_host or cfg.get("host", "127.0.0.1"),
        "port": int(opts.mqtt_port or cfg.get("port", 1883)),
        "prefix": opts.mqtt_prefix or cfg.get("prefix", "equipmon"),
        "window": int(cfg.get("window", 200)),
        "buffer": int(cfg.get("buffer", 10_000)),
        "block": opts.block,
        "username": username,
        "password": password,
    }


def _gateway(
    scenario: Scenario, opts: TransportOptions, gid: str, cfg: dict[str, Any]
) -> Transport:
    """One gateway of the scenario: Sparkplug B edge node, MQTT batch publisher or HTTP push."""
    fmt = cfg.get("format", "json")
    age = parse_duration_ns(cfg.get("batch_age", "5s"))
    size = int(cfg.get("batch_size", 100))
    if cfg.get("transport", "http") == "sparkplug":
        mqtt = _mqtt_kwargs(scenario, opts, str(cfg.get("site", "")))
        return SparkplugEdgeNode(
            mqtt["host"],
            mqtt["port"],
            group=str(cfg.get("site", "")),
            edge_node=gid,
            primary_host=cfg.get("primary_host"),
            username=mqtt["username"],
            password=mqtt["password"],
        )
    if cfg.get("transport", "http") == "mqtt":
        return MqttPublisher(
            f"{opts.client_prefix}-{gid}",
            fmt=fmt,
            gateway_id=gid,
            batch_size=size,
            batch_age_ns=age,
            **_mqtt_kwargs(scenario, opts, str(cfg.get("site", ""))),
        )
    url = opts.http_url or scenario.http.get("url", "http://127.0.0.1:8000")
    token = opts.token or scenario.http.get("token", "")
    return HttpGateway(
        gid,
        url,
        token,
        fmt=fmt,
        batch_size=size,
        batch_age_ns=age,
        buffer_batches=int(cfg.get("buffer", 1000)),
        block=opts.block,
    )


def build_transports(
    scenario: Scenario, opts: TransportOptions
) -> tuple[dict[str, Transport], dict[str, Transport]]:
    """(transport by asset, transport by id) for every asset that is not ``transport: none``."""
    by_asset: dict[str, Transport] = {}
    by_id: dict[str, Transport] = {}
    for gid, cfg in scenario.gateways.items():
        by_id[gid] = _gateway(scenario, opts, gid, cfg)
    modbus_units: dict[str, dict[str, tuple[int, RegisterMap]]] = {}
    for asset in scenario.assets:
        if asset.transport == "mqtt":
            by_id[asset.name] = MqttPublisher(
                f"{opts.client_prefix}-{asset.name}",
                fmt=asset.format,
                **_mqtt_kwargs(scenario, opts, asset.site),
            )
            by_asset[asset.name] = by_id[asset.name]
        elif asset.transport == "gateway" and asset.gateway:
            by_asset[asset.name] = by_id[asset.gateway]
        elif asset.transport == "modbus" and asset.line:
            regmap = (
                load_register_map(asset.register_map)
                if asset.register_map
                else builtin_map(asset.type)
            )
            modbus_units.setdefault(asset.line, {})[asset.name] = (asset.unit, regmap)
    for line_id, cfg in scenario.lines.items():
        listen = opts.serial_listen.get(line_id, cfg.get("listen"))
        if cfg.get("protocol", "ascii") == "modbus":
            by_id[line_id] = ModbusRtuLine(
                line_id,
                modbus_units.get(line_id, {}),
                listen=listen,
                baudrate=int(cfg.get("baudrate", 19200)),
            )
        else:
            by_id[line_id] = SerialAsciiLine(
                line_id,
                listen=listen,
                with_clock=bool(cfg.get("clock", True)),
                error_rate=float(cfg.get("error_rate", 0.0)),
                seed=derive_seed(scenario.seed, "line", line_id),
                block=opts.block,
            )
    for asset in scenario.assets:
        if asset.transport in ("serial", "modbus") and asset.line:
            by_asset[asset.name] = by_id[asset.line]
    return by_asset, by_id
