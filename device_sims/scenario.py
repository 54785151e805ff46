"""Scenario files (YAML): the fleet, its transports and the fault schedule.

Everything is validated up front with messages that name the offending entry, so a typo in
a 200-line scenario does not surface as a KeyError an hour into a run. The format is
documented in docs/device_sims.md and illustrated by scenarios/demo.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from device_sims.environment import SCHEDULES, DutyProfile, SiteClimate
from device_sims.faults import FAULTS, FaultSpec
from device_sims.machines import MACHINE_TYPES
from device_sims.timefmt import parse_duration_ns, parse_duration_s, parse_time_ns

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TRANSPORTS = ("mqtt", "gateway", "serial", "modbus", "none")


class ScenarioError(ValueError):
    """The scenario file is invalid; the message says where and why."""


@dataclass
class AssetDef:
    """One asset as the scenario declares it."""

    name: str
    site: str
    type: str
    interval_ns: int
    transport: str = "none"
    format: str = "json"
    gateway: str | None = None
    line: str | None = None
    unit: int = 1
    register_map: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    duty: DutyProfile = field(default_factory=DutyProfile)


@dataclass
class Scenario:
    """A parsed scenario."""

    name: str
    seed: int
    start_ns: int
    duration_ns: int
    sites: dict[str, SiteClimate]
    assets: list[AssetDef]
    faults: list[FaultSpec]
    gateways: dict[str, dict[str, Any]]
    lines: dict[str, dict[str, Any]]
    mqtt: dict[str, Any]
    http: dict[str, Any]


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ScenarioError(f"{where}: {message}")


def _name(value: object, where: str) -> str:
    _require(
        isinstance(value, str) and bool(NAME.match(value)),
        where,
        f"{value!r} must use only letters, digits, '_', '-', '.'",
    )
    return str(value)


def _duty(base: DutyProfile, raw: object, where: str) -> DutyProfile:
    if raw is None:
        return base
    _require(isinstance(raw, dict), where, "duty must be a mapping")
    assert isinstance(raw, dict)
    known = {f.name for f in fields(DutyProfile)}
    unknown = set(raw) - known
    _require(not unknown, where, f"unknown duty field(s) {sorted(unknown)}; known {sorted(known)}")
    values = {f.name: getattr(base, f.name) for f in fields(DutyProfile)}
    values.update(raw)
    if "ramp_s" in raw:
        values["ramp_s"] = parse_duration_s(raw["ramp_s"])
    _require(values["schedule"] in SCHEDULES, where, f"schedule must be one of {SCHEDULES}")
    return DutyProfile(**values)


def _assets(doc: dict[str, Any], sites: dict[str, SiteClimate]) -> list[AssetDef]:
    defaults = doc.get("defaults") or {}
    out: list[AssetDef] = []
    for i, raw in enumerate(doc.get("assets") or []):
        where = f"assets[{i}]"
        _require(isinstance(raw, dict), where, "must be a mapping")
        entry = {**defaults, **raw}
        count = int(entry.pop("count", 1))
        names = (
            [str(entry["name"]).format(n=n) for n in range(1, count + 1)]
            if count > 1
            else [str(entry.get("name", ""))]
        )
        mtype = entry.get("type")
        _require(mtype in MACHINE_TYPES, where, f"type must be one of {sorted(MACHINE_TYPES)}")
        cls = MACHINE_TYPES[str(mtype)]
        site = entry.get("site") or (next(iter(sites)) if len(sites) == 1 else None)
        _require(site in sites, where, f"site {site!r} is not declared under sites")
        transport = entry.get("transport", "none")
        _require(transport in TRANSPORTS, where, f"transport must be one of {TRANSPORTS}")
        fmt = entry.get("format", "json")
        _require(fmt in ("json", "lp"), where, "format must be json or lp")
        if transport == "gateway":
            _require(
                entry.get("gateway") in (doc.get("gateways") or {}),
                where,
                "gateway must name an entry of gateways",
            )
        if transport in ("serial", "modbus"):
            lines = doc.get("serial_lines") or {}
            line = lines.get(entry.get("line"))
            _require(line is not None, where, "line must name an entry of serial_lines")
            assert line is not None
            wanted = "ascii" if transport == "serial" else "modbus"
            _require(
                line.get("protocol", "ascii") == wanted,
                where,
                f"line {entry.get('line')!r} is not a {wanted} line",
            )
        known_params = set(cls.DEFAULT_PARAMS)
        params = entry.get("params") or {}
        _require(
            set(params) <= known_params,
            where,
            f"unknown params {sorted(set(params) - known_params)}; known {sorted(known_params)}",
        )
        for j, name in enumerate(names):
            out.append(
                AssetDef(
                    name=_name(name, where),
                    site=str(site),
                    type=str(mtype),
                    interval_ns=parse_duration_ns(entry.get("interval", "10s")),
                    transport=str(transport),
                    format=str(fmt),
                    gateway=entry.get("gateway"),
                    line=entry.get("line"),
                    unit=int(entry.get("unit", 1)) + j,
                    register_map=entry.get("register_map"),
                    params={k: float(v) for k, v in params.items()},
                    duty=_duty(cls.DEFAULT_DUTY, entry.get("duty"), where),
                )
            )
    seen: set[str] = set()
    for asset in out:
        _require(asset.name not in seen, "assets", f"duplicate asset name {asset.name!r}")
        seen.add(asset.name)
        _require(asset.interval_ns >= 1_000_000, asset.name, "interval must be at least 1ms")
    return out


def _faults(doc: dict[str, Any], start_ns: int, assets: list[AssetDef]) -> list[FaultSpec]:
    by_name = {a.name: a for a in assets}
    out = []
    for i, raw in enumerate(doc.get("faults") or []):
        where = f"faults[{i}]"
        _require(isinstance(raw, dict), where, "must be a mapping")
        kind = raw.get("kind")
        _require(kind in FAULTS, where, f"kind must be one of {sorted(FAULTS)}")
        asset = by_name.get(raw.get("asset", ""))
        _require(asset is not None, where, f"asset {raw.get('asset')!r} is not declared")
        assert asset is not None
        info = FAULTS[str(kind)]
        machine = MACHINE_TYPES[asset.type]
        if info.category == "process":
            _require(
                kind in machine.FAULTS,
                where,
                f"a {asset.type} cannot have {kind}; it supports {sorted(machine.FAULTS)}",
            )
        sensor = raw.get("sensor")
        if sensor is not None:
            _require(
                sensor in {s.name for s in machine.SENSORS},
                where,
                f"{asset.name} has no sensor {sensor!r}",
            )
        try:
            onset = parse_time_ns(raw.get("onset", 0), start_ns)
            end = None if raw.get("end") is None else parse_time_ns(raw["end"], start_ns)
            ramp = parse_duration_s(raw.get("ramp", info.ramp))
        except ValueError as exc:
            raise ScenarioError(f"{where}: {exc}") from exc
        _require(end is None or end > onset, where, "end must be after onset")
        out.append(
            FaultSpec(
                asset=asset.name,
                kind=str(kind),
                onset_ns=onset,
                end_ns=end,
                severity=float(raw.get("severity", 1.0)),
                ramp_s=ramp,
                growth=float(raw.get("growth", info.growth)),
                sensor=sensor,
                params={k: float(v) for k, v in (raw.get("params") or {}).items()},
                fault_id=str(raw.get("id", "")),
            )
        )
    return out


def parse_scenario(doc: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario document."""
    _require(isinstance(doc, dict), source, "a scenario is a YAML mapping")
    try:
        start_ns = parse_time_ns(str(doc.get("start", "2026-11-23T00:00:00Z")), 0)
        duration_ns = parse_duration_ns(doc.get("duration", "1d"))
    except ValueError as exc:
        raise ScenarioError(f"{source}: {exc}") from exc
    sites: dict[str, SiteClimate] = {}
    for name, raw in (doc.get("sites") or {}).items():
        known = {f.name for f in fields(SiteClimate)}
        _require(set(raw or {}) <= known, f"sites.{name}", f"known fields: {sorted(known)}")
        sites[_name(name, "sites")] = SiteClimate(**(raw or {}))
    _require(bool(sites), source, "declare at least one site under sites")
    assets = _assets(doc, sites)
    _require(bool(assets), source, "declare at least one asset")
    for gid, raw in (doc.get("gateways") or {}).items():
        _name(gid, "gateways")
        _require(
            raw.get("transport", "http") in ("http", "mqtt", "sparkplug"),
            f"gateways.{gid}",
            "transport must be http, mqtt or sparkplug",
        )
    return Scenario(
        name=str(doc.get("name", Path(source).stem)),
        seed=int(doc.get("seed", 0)),
        start_ns=start_ns,
        duration_ns=duration_ns,
        sites=sites,
        assets=assets,
        faults=_faults(doc, start_ns, assets),
        gateways=dict(doc.get("gateways") or {}),
        lines=dict(doc.get("serial_lines") or {}),
        mqtt=dict(doc.get("mqtt") or {}),
        http=dict(doc.get("http") or {}),
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    return parse_scenario(doc, str(path))
