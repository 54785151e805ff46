"""Latency (p50/p95/p99) and requests/s of the API under a small concurrent load: listing work
orders with 10,000 in the database, updating one work order (PATCH with If-Match, and an
in_progress ⇄ on_hold transition pair), and gateway pushes of 1,000-reading JSON batches; and
what polling costs: the list answered 304 (If-None-Match), 50 dashboards polling the fleet
page's live fragment of a 1,000-asset site, closed loop (`dashboards_304`) and paced at one
poll per 4 s (`fleet_poll`, the page's own rhythm), and a deep page by keyset cursor against
offset; `table_size` lists at 1,000 and 1,000,000 work orders (fresh databases, the big one
filled by `INSERT … SELECT` doubling, not through the API) and prints the p50 ratio.
Each scenario reports the server's CPU per request (user + system time of the API process
and its workers over the scenario, divided by the requests) and its share of a core, the
app's own time per request from its `Server-Timing` header, as well as req/s and latency.

The API runs as its own process (`python -m api`, one uvicorn worker; with `--workers N`,
`python -m api serve --workers N`) on 127.0.0.1; the load generator is this process: a
thread pool of httpx clients, each with its own keep-alive connection. The work orders are
inserted into the (migrated) database before the server starts. The gateway rate limit is
raised far out of the way so pushes are never throttled, and the background sweep is pushed
to once an hour so it does not run during a scenario.

    .venv/bin/python -m bench.api_load [--configs sqlite:1,postgresql:2]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--workers 1]
        [--scenarios list_default,patch_if_match,fleet_poll,table_size,...]
        [--table-sizes 1000,1000000] [--clients 4] [--requests 2000] [--time-limit 60]
        [--dashboards 50] [--fleet-assets 1000] [--poll-interval 4] [--poll-duration 20]
        [--sqlite-synchronous full|normal] [--py-spy PATH] [--influx-url URL]
        [--skip-push | --only-push] [--push-requests 300] [--json PATH]

The push scenario also POSTs the same readings, formatted as line protocol in advance, straight
to the same InfluxDB (/write, a fresh database, as many keep-alive clients) in the same run, and
reports the push's readings/s as a ratio of that ceiling (`vs_raw_post`).

`--configs` runs each database and worker count in turn (PostgreSQL at `--postgres-url`) and
reports them together. With a PostgreSQL URL a fresh database is created next to the one
named (and dropped afterwards); by default a SQLite file in a temporary folder is used.
`--py-spy PATH` samples the server meanwhile and writes collapsed stacks to
`PATH-<database>-<workers>.txt`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from api import migrate
from api.db import make_engine
from api.models import Asset, Site, WorkOrder
from bench.common import influx_url, report
from telemetry import LineFormatter, decode_json
from telemetry.influx.client import InfluxClient, quote_ident
from telemetry.influx.settings import InfluxSettings

SITE = "plant-a"
ASSETS = 50
SENSORS = ("vibration_rms", "bearing_temp", "motor_current", "voltage", "pressure", "flow")
STATES = ("open", "assigned", "in_progress", "on_hold", "completed", "verified", "cancelled")
FAILURE_MODES = ("bearing_wear", "misalignment", "cavitation", "seal_leak", "overheating")
# The filtered listing: about 1/28 of the orders (one state of 7, one priority of 4).
FILTER = "state=in_progress&priority=1"
READINGS_PER_BATCH = 1_000


def sql_url(url: str) -> str:
    """The URL as the API's settings normalise it (plain postgresql:// means psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextlib.contextmanager
def fresh_database(url: str | None, folder: Path) -> Iterator[str]:
    """A SQLite file in folder, or a new PostgreSQL database beside url's (dropped after)."""
    if url is None or url.startswith("sqlite"):
        yield url or f"sqlite:///{folder / 'bench.db'}"
        return
    admin_url = sa.make_url(sql_url(url))
    name = f"equipmon_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def seed(database_url: str, work_orders: int, assets: int = ASSETS) -> dict[str, Any]:
    """Migrate, then insert a site, `assets` assets and `work_orders` orders (on the first
    ASSETS assets) in a few statements: up to 10,000 orders by executemany, the rest by
    doubling them with `INSERT … SELECT` (a million in seconds, not through the API)."""
    migrate.upgrade(sql_url(database_url))
    engine = make_engine(sql_url(database_url))
    rng = random.Random(7)
    now = datetime.now(UTC)
    started = time.perf_counter()
    try:
        with engine.begin() as connection:
            site_id = connection.execute(
                sa.insert(Site).values(code=SITE, name="Plant A", created_at=now).returning(Site.id)
            ).scalar_one()
            connection.execute(
                sa.insert(Asset),
                [
                    {
                        "site_id": site_id,
                        "code": f"asset-{i:03d}",
                        "name": f"Pump {i}",
                        "asset_type": "pump",
                        "criticality": "high",
                        "created_at": now,
                    }
                    for i in range(max(assets, ASSETS))
                ],
            )
            asset_ids = list(
                connection.execute(sa.select(Asset.id).order_by(Asset.id).limit(ASSETS))
                .scalars()
                .all()
            )
            rows = []
            for i in range(min(work_orders, 10_000)):
                created = now - timedelta(minutes=work_orders - i)
                rows.append(
                    {
                        "site_id": site_id,
                        "asset_id": asset_ids[i % ASSETS],
                        "title": f"Inspect pump {i % ASSETS} ({i})",
                        "description": "Vibration above baseline; check bearings and alignment.",
                        "work_type": "corrective" if i % 5 else "instrument",
                        "failure_mode": FAILURE_MODES[i % len(FAILURE_MODES)],
                        "open_key": None,
                        "state": STATES[i % len(STATES)],
                        "priority": i % 4 + 1,
                        "due_at": created + timedelta(hours=24),
                        "checklist": [{"item": "isolate", "done": bool(rng.getrandbits(1))}],
                        "notes": [],
                        "parts_used": [],
                        "labour_minutes": rng.randrange(0, 600),
                        "downtime_minutes": rng.randrange(0, 120),
                        "created_by": "bench",
                        "created_at": created,
                        "updated_at": created,
                        "version": 1,
                    }
                )
            for start in range(0, len(rows), 2_000):
                connection.execute(sa.insert(WorkOrder), rows[start : start + 2_000])
            _double(connection, work_orders)
        return {
            "work_orders": work_orders,
            "assets": max(assets, ASSETS),
            "seed_s": round(time.perf_counter() - started, 2),
            "method": "SQLAlchemy executemany of up to 10,000 orders, then INSERT … SELECT "
            "doubling, into the migrated database before the server starts",
        }
    finally:
        engine.dispose()


# Scenario names for --scenarios (each a key of the results).
SCENARIOS = (
    "list_default",
    "list_filtered",
    "list_304",
    "dashboards_304",
    "fleet_poll",
    "list_offset_4950",
    "list_cursor_5000",
    "patch_if_match",
    "transition_pair",
    "push_readings",
)


def wanted(args: argparse.Namespace, name: str) -> bool:
    """Whether the run includes scenario name (--scenarios; all by default)."""
    chosen: set[str] | None = args.scenario_set
    return chosen is None or name in chosen


def _double(connection: sa.Connection, target: int) -> None:
    """Copy the work orders onto themselves (new ids) until there are `target` of them."""
    table: sa.Table = WorkOrder.__table__  # type: ignore[assignment]
    columns = [c for c in table.c if c.name not in ("id", "open_key")]
    have = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    while have < target:
        chunk = min(have, target - have)
        source = sa.select(*columns).order_by(table.c.id).limit(chunk)
        connection.execute(table.insert().from_select([c.name for c in columns], source))
        have += chunk
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE work_orders")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """The API process and what a client needs to talk to it."""

    url: str
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def api_server(
    database_url: str,
    influx: str,
    influx_db: str,
    log_path: Path,
    *,
    workers: int = 1,
    launcher: str = "api",
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`python -m api` in a subprocess with bootstrap tokens; stopped (SIGTERM) at the end."""
    port = free_port()
    tokens = {role: f"{role}-{secrets.token_hex(16)}" for role in ("admin", "service", "gateway")}
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "EQUIPMON_API__SERVER__HOST": "127.0.0.1",
        "EQUIPMON_API__SERVER__PORT": str(port),
        "EQUIPMON_API__ADMIN_TOKEN": tokens["admin"],
        "EQUIPMON_API__SERVICE_TOKEN": tokens["service"],
        "EQUIPMON_API__GATEWAY_TOKEN": tokens["gateway"],
        "EQUIPMON_API__GATEWAY_SITE": SITE,
        "EQUIPMON_API__SERVER__ACCEPT_UNREGISTERED_ASSETS": "true",
        # Out of the way: a benchmark measures the server, not the limiter's 429s.
        "EQUIPMON_API__SERVER__GATEWAY_RATE_PER_S": "1000000",
        "EQUIPMON_API__SERVER__GATEWAY_BURST": "1000000",
        "EQUIPMON_API__SERVER__GATEWAY_READINGS_PER_S": "100000000",
        "EQUIPMON_API__SERVER__GATEWAY_READINGS_BURST": "100000000",
        "EQUIPMON_API__SERVER__GATEWAY_BYTES_PER_S": "100000000000",
        "EQUIPMON_API__SERVER__GATEWAY_BYTES_BURST": "100000000000",
        "EQUIPMON_API__SERVER__SWEEP_INTERVAL_S": "3600",
        "EQUIPMON_API__INFLUX__URL": influx,
        "EQUIPMON_API__INFLUX__DATABASE": influx_db,
        "EQUIPMON_API__INFLUX__API": "v1",
        **(extra_env or {}),
    }
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "api"]
        if launcher == "uvicorn":  # for code before `serve --workers` (a before/after run)
            command = [sys.executable, "-m", "uvicorn", "api.main:app", "--no-access-log"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        elif workers > 1:
            command += ["serve", "--workers", str(workers)]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            # Generous: on a machine shared with test suites, start-up alone took over 60 s.
            deadline = time.monotonic() + 240
            with httpx.Client(timeout=2) as probe:
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"the API exited; see {log_path}")
                    with contextlib.suppress(httpx.HTTPError):
                        if probe.get(f"{url}/healthz").status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the API did not start within 240 s; see {log_path}")
                    time.sleep(0.1)
            yield Server(url, tokens, process)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _descendants(pid: int) -> list[int]:
    found = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += _descendants(int(child))
    return found


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (uvicorn workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            # Fields after the command's closing parenthesis; utime and stime are 14 and 15.
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


@dataclass
class Tally:
    """Latencies (s) of successful requests, and counts by status of the others."""

    latencies: list[float] = field(default_factory=list)
    # The server's own time (its `Server-Timing: app;dur=…` header), ms.
    server_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, response: httpx.Response, elapsed: float, ok_status: int | tuple[int, ...] | None
    ) -> None:
        """Count one answered request."""
        if isinstance(ok_status, tuple):
            success = response.status_code in ok_status
        else:
            success = response.status_code == ok_status if ok_status else response.is_success
        server_ms = server_time_ms(response)
        with self.lock:
            if server_ms is not None:
                self.server_ms.append(server_ms)
            if success:
                self.latencies.append(elapsed)
            else:
                key = str(response.status_code)
                self.failures[key] = self.failures.get(key, 0) + 1


def server_time_ms(response: httpx.Response) -> float | None:
    """The app's time for the request from its `Server-Timing` header (None without one)."""
    for part in response.headers.get("server-timing", "").split(","):
        name, _, params = part.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            with contextlib.suppress(ValueError):
                return float(params[4:])
    return None


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# A worker step: (client, worker index, request sequence number) → the response.
Step = Callable[[httpx.Client, int, int], httpx.Response]
Setup = Callable[[httpx.Client, int], None]


def run_scenario(
    base_url: str,
    clients: int,
    requests: int,
    time_limit_s: float,
    step: Step,
    *,
    setup: Setup | None = None,
    warmup: int = 5,
    server_pid: int | None = None,
    ok_status: int | tuple[int, ...] | None = None,
    interval_s: float | None = None,
) -> dict[str, Any]:
    """`requests` calls of step over `clients` threads (each its own connection), within the
    time limit; `warmup` calls per client first, not counted. With server_pid, the server's
    CPU time over the timed part is measured too. ok_status: the status that counts as
    success (default: any 2xx). interval_s: each client sends one request per interval
    (paced, open loop: its start spread at random over the first interval) instead of the
    next as soon as the last is answered."""
    tally = Tally()
    counter = iter(range(requests))
    counter_lock = threading.Lock()
    deadline = [0.0]
    started = [0.0]
    cpu = [0.0, 0.0]  # server CPU seconds at the start; this process's too

    def start_clock() -> None:
        # Runs once, before any thread passes the barrier: every client sees the deadline.
        if server_pid is not None:
            cpu[0] = process_cpu_s(server_pid)
        cpu[1] = time.process_time()
        started[0] = time.perf_counter()
        deadline[0] = started[0] + time_limit_s

    ready = threading.Barrier(clients + 1, action=start_clock)
    stop = threading.Event()  # never set: paced clients wait on it with a timeout

    def worker(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            try:
                if setup is not None:
                    setup(client, index)
                for n in range(warmup):
                    step(client, index, -1 - n)
            except BaseException:
                ready.abort()  # the others must not wait at the barrier for this one
                raise
            ready.wait()
            due = deadline[0] - time_limit_s + random.uniform(0, interval_s or 0)
            while time.perf_counter() < deadline[0]:
                if interval_s is not None:
                    # Paced: wait for this client's next slot (an Event wait, not a poll).
                    pause = due - time.perf_counter()
                    if pause > 0 and stop.wait(min(pause, deadline[0] - time.perf_counter())):
                        return
                    if time.perf_counter() >= deadline[0]:
                        return
                    due += interval_s
                with counter_lock:
                    seq = next(counter, None)
                if seq is None:
                    return
                started = time.perf_counter()
                response = step(client, index, seq)
                tally.add(response, time.perf_counter() - started, ok_status)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(worker, i) for i in range(clients)]
        ready.wait()
        for future in futures:
            future.result()
        wall = time.perf_counter() - started[0]
        server_cpu = process_cpu_s(server_pid) - cpu[0] if server_pid is not None else None
        client_cpu = time.process_time() - cpu[1]
    return figures(tally, clients, wall, server_cpu, client_cpu)


def figures(
    tally: Tally, clients: int, wall: float, server_cpu: float | None, client_cpu: float
) -> dict[str, Any]:
    """Counts, rate, latency percentiles and CPU per request of one scenario."""
    ordered = sorted(tally.latencies) or [float("nan")]
    server_ordered = sorted(tally.server_ms)
    done = len(tally.latencies)
    answered = max(1, done + sum(tally.failures.values()))
    cpu_figures = {
        # Ticks are 10 ms: over a few thousand requests that is well under 1 % of the figure.
        "server_cpu_ms_per_req": round(server_cpu * 1000 / answered, 3)
        if server_cpu is not None
        else None,
        "server_cpu_s": round(server_cpu, 2) if server_cpu is not None else None,
        "client_cpu_ms_per_req": round(client_cpu * 1000 / answered, 3),
        "server_cpu_share_of_a_core": round(server_cpu / wall, 3)
        if server_cpu is not None and wall > 0
        else None,
    }
    if server_ordered:
        cpu_figures["server_time_p50_ms"] = round(percentile(server_ordered, 50), 2)
        cpu_figures["server_time_p95_ms"] = round(percentile(server_ordered, 95), 2)
        cpu_figures["server_time_p99_ms"] = round(percentile(server_ordered, 99), 2)
    return {
        "requests": done + sum(tally.failures.values()),
        "ok": done,
        "failed_by_status": tally.failures,
        "clients": clients,
        "wall_s": round(wall, 2),
        "req_per_s": round(done / wall, 1),
        "p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "p95_ms": round(percentile(ordered, 95) * 1000, 2),
        "p99_ms": round(percentile(ordered, 99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        **cpu_figures,
    }


def orders_in_state(client: httpx.Client, headers: dict[str, str], state: str, n: int) -> list[int]:
    response = client.get(
        "/api/v1/work-orders", params={"state": state, "limit": n}, headers=headers
    )
    response.raise_for_status()
    return [item["id"] for item in response.json()["items"]]


def readings_bodies(count: int, seed: int) -> list[bytes]:
    """`count` JSON batches of READINGS_PER_BATCH readings, each in its own millisecond range."""
    rng = random.Random(seed)
    base_ms = int(time.time() * 1000) - 6 * 3600 * 1000
    bodies = []
    for b in range(count):
        readings = [
            {
                "asset": f"asset-{i % ASSETS:03d}",
                "time": base_ms + b * READINGS_PER_BATCH + i,
                "sensors": {s: round(rng.uniform(0, 100), 3) for s in SENSORS},
            }
            for i in range(READINGS_PER_BATCH)
        ]
        bodies.append(json.dumps({"site": SITE, "precision": "ms", "readings": readings}).encode())
    return bodies


def scenarios(
    server: Server, args: argparse.Namespace, influx_db: str, influx: str
) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
    results: dict[str, Any] = {}

    def run(
        step: Step,
        *,
        setup: Setup | None = None,
        requests: int | None = None,
        warmup: int = 5,
        clients: int | None = None,
        ok_status: int | tuple[int, ...] | None = None,
        interval_s: float | None = None,
        time_limit: float | None = None,
    ) -> dict[str, Any]:
        return run_scenario(
            server.url,
            clients or args.clients,
            requests or args.requests,
            time_limit or args.time_limit,
            step,
            setup=setup,
            warmup=warmup,
            server_pid=server.process.pid,
            ok_status=ok_status,
            interval_s=interval_s,
        )

    with httpx.Client(base_url=server.url, timeout=30) as client:
        listing = client.get("/api/v1/work-orders", headers=admin).json()
        filtered = client.get(f"/api/v1/work-orders?{FILTER}", headers=admin).json()
        patch_ids = orders_in_state(client, admin, "assigned", args.clients)
        hold_ids = orders_in_state(client, admin, "in_progress", args.clients)

    if wanted(args, "list_default"):
        results["list_default"] = {
            "request": "GET /api/v1/work-orders (limit 50)",
            "rows_returned": len(listing["items"]),
            "total": listing["total"],
            **run(lambda c, _i, _s: c.get("/api/v1/work-orders", headers=admin)),
        }
    if wanted(args, "list_filtered"):
        results["list_filtered"] = {
            "request": f"GET /api/v1/work-orders?{FILTER}",
            "rows_returned": len(filtered["items"]),
            "total": filtered["total"],
            **run(lambda c, _i, _s: c.get(f"/api/v1/work-orders?{FILTER}", headers=admin)),
        }
    results.update(polling_scenarios(server, args, run))

    # PATCH: each client owns one order and sends If-Match with the ETag of its last response
    # (a GET first), so every request is a real, version-checked update; 412 would be a bug.
    patch_etags: dict[int, str] = {}
    hold_etags: dict[int, str] = {}
    on_hold: dict[int, bool] = {}

    def read_etag(client: httpx.Client, order_id: int) -> str:
        response = client.get(f"/api/v1/work-orders/{order_id}", headers=admin)
        response.raise_for_status()
        return response.headers["ETag"]

    def patch_setup(client: httpx.Client, index: int) -> None:
        patch_etags[index] = read_etag(client, patch_ids[index])

    def patch(client: httpx.Client, index: int, seq: int) -> httpx.Response:
        response = client.patch(
            f"/api/v1/work-orders/{patch_ids[index]}",
            json={"labour_minutes": abs(seq) % 1000, "downtime_minutes": abs(seq) % 60},
            headers={**admin, "If-Match": patch_etags[index]},
        )
        if response.is_success:
            patch_etags[index] = response.headers["ETag"]
        return response

    if wanted(args, "patch_if_match"):
        results["patch_if_match"] = {
            "request": "PATCH /api/v1/work-orders/{id} with If-Match (one order per client)",
            **run(patch, setup=patch_setup),
        }

    # Transitions: in_progress → on_hold → in_progress … on one order per client, If-Match too.
    def hold_setup(client: httpx.Client, index: int) -> None:
        hold_etags[index] = read_etag(client, hold_ids[index])
        on_hold[index] = False

    def transition(client: httpx.Client, index: int, _seq: int) -> httpx.Response:
        target = "in_progress" if on_hold[index] else "on_hold"
        response = client.post(
            f"/api/v1/work-orders/{hold_ids[index]}/transitions",
            json={"to": target, "reason": "waiting for parts"},
            headers={**admin, "If-Match": hold_etags[index]},
        )
        if response.is_success:
            hold_etags[index] = response.headers["ETag"]
            on_hold[index] = not on_hold[index]
        return response

    if wanted(args, "transition_pair"):
        results["transition_pair"] = {
            "request": "POST /api/v1/work-orders/{id}/transitions in_progress ⇄ on_hold, If-Match",
            **run(transition, setup=hold_setup),
        }

    if not args.skip_push and wanted(args, "push_readings"):
        results["push_readings"] = push_scenario(server, args, run, influx_db, influx)
    return results


def push_only(
    server: Server, args: argparse.Namespace, influx_db: str, influx: str
) -> dict[str, Any]:
    """`--only-push`: the push scenario and its raw line-protocol ceiling, nothing else."""

    def run(step: Step, **kwargs: Any) -> dict[str, Any]:
        return run_scenario(
            server.url, args.clients, kwargs.pop("requests", args.requests), args.time_limit,
            step, server_pid=server.process.pid, **kwargs,
        )  # fmt: skip

    return {"push_readings": push_scenario(server, args, run, influx_db, influx)}


Run = Callable[..., dict[str, Any]]


def push_scenario(
    server: Server, args: argparse.Namespace, run: Run, influx_db: str, influx: str
) -> dict[str, Any]:
    """Gateway pushes of READINGS_PER_BATCH readings, and whether every one landed."""
    gateway = {"Authorization": f"Bearer {server.tokens['gateway']}"}
    # Gateway pushes: bodies built in advance (client CPU is not the thing measured).
    pushes = args.push_requests
    bodies = readings_bodies(pushes + args.clients * 2, seed=11)
    body_size = len(bodies[0])

    def push(client: httpx.Client, index: int, seq: int) -> httpx.Response:
        body = bodies[seq] if seq >= 0 else bodies[pushes + index * 2 + (-1 - seq)]
        return client.post(
            "/api/v1/readings",
            content=body,
            headers={**gateway, "Content-Type": "application/json"},
        )

    push_result = run(push, requests=pushes, warmup=2)
    result = {
        "request": f"POST /api/v1/readings, JSON, {READINGS_PER_BATCH} readings x "
        f"{len(SENSORS)} sensors (~{body_size // 1024} KiB) as the bootstrap gateway",
        **push_result,
        "readings_per_s": round(push_result["req_per_s"] * READINGS_PER_BATCH),
    }
    # Did every confirmed reading land? (count of one field over the whole database.)
    check = InfluxClient(InfluxSettings(url=influx, database=influx_db, api="v1"))
    try:
        series = check.query(f"SELECT count(vibration_rms) FROM {quote_ident('telemetry')}")
        stored = int(series[0].values[0][1]) if series else 0
    finally:
        check.close()
    result["readings_in_influxdb"] = stored
    # Warm-up pushes are stored too: every 200 must be in InfluxDB.
    result["readings_confirmed_incl_warmup"] = (
        push_result["ok"] + 2 * args.clients
    ) * READINGS_PER_BATCH
    raw = raw_line_protocol(influx, bodies[:pushes], args.clients, args.time_limit)
    result["raw_line_protocol_post"] = raw
    result["vs_raw_post"] = round(result["readings_per_s"] / raw["readings_per_s"], 2)
    return result


def raw_line_protocol(
    influx: str, bodies: list[bytes], clients: int, time_limit_s: float
) -> dict[str, Any]:
    """The ceiling of a push: the same readings, formatted as line protocol in advance, POSTed
    to the same InfluxDB (/write, a fresh database) by as many keep-alive clients."""
    lines = [
        LineFormatter().lines(decode_json(body, site=SITE, now=time.time_ns())) for body in bodies
    ]
    database = f"raw_{uuid.uuid4().hex[:8]}"
    admin = InfluxClient(InfluxSettings(url=influx, database=database, api="v1"))
    admin.ensure_database()
    counter = iter(range(len(lines)))
    lock = threading.Lock()
    errors: list[str] = []
    done = [0]

    def post() -> None:
        with httpx.Client(base_url=influx, timeout=60) as client:
            while time.perf_counter() < deadline:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                response = client.post(
                    "/write", params={"db": database, "precision": "ns"}, content=lines[index]
                )
                if response.status_code != 204:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    return
                with lock:
                    done[0] += 1

    started = time.perf_counter()
    deadline = started + time_limit_s
    threads = [threading.Thread(target=post) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    try:
        series = admin.query(f"SELECT count(vibration_rms) FROM {quote_ident('telemetry')}")
        stored = int(series[0].values[0][1]) if series else 0
        admin.execute(f"DROP DATABASE {quote_ident(database)}")
    finally:
        admin.close()
    if errors:
        raise SystemExit(f"raw line-protocol POST failed: {errors[0]}")
    return {
        "request": f"POST /write?precision=ns to InfluxDB, {READINGS_PER_BATCH} lines per body "
        f"(formatted in advance), {clients} keep-alive clients",
        "bodies": done[0],
        "wall_s": round(elapsed, 2),
        "readings_per_s": round(done[0] * READINGS_PER_BATCH / elapsed),
        "readings_in_influxdb": stored,
    }


def polling_scenarios(server: Server, args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """What polling costs: the list's 304, dashboards' fragment 304s, a deep page by cursor."""
    admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
    results: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = client.get("/api/v1/work-orders", headers=admin)
        tag = first.headers.get("ETag")
        deep = client.get("/api/v1/work-orders?offset=4950&limit=50", headers=admin).json()
        password = secrets.token_hex(12)
        client.post(
            "/api/v1/users",
            json={"username": "bench-facilities", "role": "facilities", "password": password},
            headers=admin,
        ).raise_for_status()
        login = client.post(
            "/api/v1/auth/login", json={"username": "bench-facilities", "password": password}
        )
        login.raise_for_status()
        cookie = login.json()["token"]
        fleet = client.get(
            "/ui/fleet", headers={"X-Fragment": "1"}, cookies={"eqm_session": cookie}
        )
        fleet.raise_for_status()
        fleet_tag = fleet.headers.get("ETag")
    if tag is not None and wanted(args, "list_304"):
        results["list_304"] = {
            "request": "GET /api/v1/work-orders with If-None-Match of the current ETag",
            **run(
                lambda c, _i, _s: c.get(
                    "/api/v1/work-orders", headers={**admin, "If-None-Match": tag}
                ),
                ok_status=304,
            ),
        }
    if fleet_tag is not None and wanted(args, "dashboards_304"):
        # Each dashboard is a client of its own (connection, session cookie) polling in a loop:
        # the closed-loop rate bounds how many dashboards at one poll per 4 s a core serves.
        # Like the page's script, a dashboard keeps the ETag of its last 200 (the tag moves
        # each minute, for time-based styling: then one poll renders the fragment again).
        tags: dict[int, str] = {}

        def dashboard(client: httpx.Client, index: int, _seq: int) -> httpx.Response:
            poll = {"X-Fragment": "1", "If-None-Match": tags.get(index, fleet_tag or "")}
            response = client.get("/ui/fleet", headers=poll, cookies={"eqm_session": cookie})
            if response.status_code == 200:
                tags[index] = response.headers["ETag"]
            return response

        fleet_result = run(dashboard, clients=args.dashboards, warmup=2, ok_status=304)
        per_req = fleet_result["server_cpu_ms_per_req"]
        results["dashboards_304"] = {
            "request": f"{args.dashboards} dashboards polling GET /ui/fleet (X-Fragment, "
            "If-None-Match; nothing changed)",
            "fleet_fragment_bytes": len(fleet.content),
            **fleet_result,
            "dashboards_per_core_at_4s": round(4000 / per_req) if per_req else None,
        }
    if fleet_tag is not None and wanted(args, "fleet_poll"):
        results["fleet_poll"] = fleet_poll(server, args, run, cookie, fleet_tag)
    if wanted(args, "list_offset_4950"):
        results["list_offset_4950"] = {
            "request": "GET /api/v1/work-orders?offset=4950&limit=50",
            **run(
                lambda c, _i, _s: c.get("/api/v1/work-orders?offset=4950&limit=50", headers=admin)
            ),
        }
    cursor = deep.get("next_cursor")
    if cursor and wanted(args, "list_cursor_5000"):
        results["list_cursor_5000"] = {
            "request": "GET /api/v1/work-orders?cursor=<after row 5,000> (no total)",
            **run(
                lambda c, _i, _s: c.get(
                    "/api/v1/work-orders", params={"cursor": cursor}, headers=admin
                )
            ),
        }
    return results


def fleet_poll(
    server: Server, args: argparse.Namespace, run: Run, cookie: str, fleet_tag: str
) -> dict[str, Any]:
    """`--dashboards` dashboards each polling the fleet fragment once per `--poll-interval`
    (paced, like the page's script), nothing changing: what that costs the server."""
    tags: dict[int, str] = {}
    # The app's time of the 304s alone, and how many polls got a new render (200): the tag
    # names the minute, so each dashboard gets one 200 a minute even with nothing changed.
    not_modified_ms: list[float] = []
    answers_200 = [0]

    def dashboard(client: httpx.Client, index: int, seq: int) -> httpx.Response:
        poll = {"X-Fragment": "1", "If-None-Match": tags.get(index, fleet_tag)}
        response = client.get("/ui/fleet", headers=poll, cookies={"eqm_session": cookie})
        if response.status_code == 200:
            tags[index] = response.headers["ETag"]
        if seq >= 0:  # list.append is atomic; the counter is for the report only
            if response.status_code == 200:
                answers_200[0] += 1
            elif (took := server_time_ms(response)) is not None:
                not_modified_ms.append(took)
        return response

    result = run(
        dashboard,
        clients=args.dashboards,
        requests=10**9,
        warmup=1,
        interval_s=args.poll_interval,
        time_limit=args.poll_duration,
        ok_status=(200, 304),
    )
    return {
        "request": f"{args.dashboards} dashboards, each GET /ui/fleet (X-Fragment, "
        f"If-None-Match) every {args.poll_interval} s for {args.poll_duration} s; "
        f"{args.fleet_assets} assets; nothing changed but the minute (in the tag)",
        "answers_200": answers_200[0],
        **result,
        **_percentiles("server_time_304", sorted(not_modified_ms)),
    }


def _percentiles(name: str, ordered: list[float]) -> dict[str, float]:
    if not ordered:
        return {}
    return {f"{name}_p{q}_ms": round(percentile(ordered, q), 2) for q in (50, 95, 99)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="sqlite:///… or postgresql://… (default: SQLite)")
    parser.add_argument(
        "--configs",
        help="several runs in one: comma-separated sqlite:N and postgresql:N (N workers), "
        "PostgreSQL at --postgres-url; default: --database-url with --workers",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the server --configs postgresql:N creates its databases beside",
    )
    parser.add_argument("--influx-url", help="an InfluxDB 1.x (default: a throw-away influxd)")
    parser.add_argument("--json", help="where to write the JSON results")
    parser.add_argument("--work-orders", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=2_000, help="requests per scenario")
    parser.add_argument("--push-requests", type=int, default=300, help="1,000-reading batches")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per scenario")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument("--dashboards", type=int, default=50, help="polling dashboards")
    parser.add_argument(
        "--fleet-assets", type=int, default=1_000, help="assets of the site (fleet page)"
    )
    parser.add_argument("--poll-interval", type=float, default=4.0, help="fleet_poll: s")
    parser.add_argument("--poll-duration", type=float, default=20.0, help="fleet_poll: s")
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated, of: {', '.join(SCENARIOS)}, table_size (default: all but "
        "table_size)",
    )
    parser.add_argument(
        "--table-sizes",
        default="1000,1000000",
        help="table_size: work orders in each fresh database (listing latency by size)",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("full", "normal"),
        help="the server's EQUIPMON_API__SERVER__SQLITE_SYNCHRONOUS (default: its own)",
    )
    parser.add_argument("--skip-push", action="store_true", help="leave the push scenario out")
    parser.add_argument(
        "--only-push", action="store_true", help="only pushes and their raw-POST ceiling"
    )
    parser.add_argument(
        "--py-spy", metavar="PATH", help="profile the server with py-spy (collapsed stacks)"
    )
    parser.add_argument(
        "--launcher", choices=("api", "uvicorn"), default="api", help="python -m api or uvicorn"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.scenarios.split(",")] if args.scenarios else None
    unknown = set(names or ()) - {*SCENARIOS, "table_size"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.scenario_set = set(names) if names is not None else None
    args.table_size = names is not None and "table_size" in names
    return args


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """Settings of the server that the command line chose."""
    env = {}
    if args.sqlite_synchronous:
        env["EQUIPMON_API__SERVER__SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
    return env


def configs(args: argparse.Namespace) -> list[tuple[str | None, int]]:
    """(database URL or None for SQLite, workers) of each run."""
    if not args.configs:
        return [(args.database_url, args.workers)]
    found: list[tuple[str | None, int]] = []
    for item in args.configs.split(","):
        backend, _, workers = item.strip().partition(":")
        if backend not in ("sqlite", "postgresql"):
            raise SystemExit(f"--configs: {item!r} is not sqlite:N or postgresql:N")
        found.append((None if backend == "sqlite" else args.postgres_url, int(workers or 1)))
    return found


def run_config(
    args: argparse.Namespace, url: str | None, workers: int, influx: str
) -> dict[str, Any]:
    """One database and worker count: seed, start the server, run the scenarios chosen."""
    with (
        tempfile.TemporaryDirectory(prefix="equipmon-api-load-") as tmp,
        fresh_database(url, Path(tmp)) as database_url,
    ):
        influx_db = f"bench_{uuid.uuid4().hex[:8]}"
        admin_influx = InfluxClient(InfluxSettings(url=influx, database=influx_db, api="v1"))
        admin_influx.ensure_database()
        results: dict[str, Any] = {}
        seeded: dict[str, Any] = {}
        server_rss_kib = None
        errors: list[str] = []
        log_path = Path(tmp) / "api.log"
        try:
            if args.scenario_set is None or args.scenario_set - {"table_size"}:
                seeded = seed(database_url, args.work_orders, args.fleet_assets)
                with api_server(
                    database_url, influx, influx_db, log_path, workers=workers,
                    launcher=args.launcher, extra_env=server_env(args),
                ) as server:  # fmt: skip
                    spy = f"{args.py_spy}-{'postgresql' if url else 'sqlite'}-{workers}.txt"
                    with profiled(server.process.pid, spy if args.py_spy else None):
                        if args.only_push:
                            results = push_only(server, args, influx_db, influx)
                        else:
                            results = scenarios(server, args, influx_db, influx)
                    server_rss_kib = _rss_kib(server.process.pid)
                errors = _errors(log_path)
            if args.table_size:
                results["table_size"] = table_size(
                    args, url, workers, influx, influx_db=influx_db, tmp=tmp
                )
        except Exception:
            if log_path.exists():
                print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            admin_influx.execute(f"DROP DATABASE {quote_ident(influx_db)}")
            admin_influx.close()
        database = sa.make_url(sql_url(database_url)).get_backend_name()
    return {
        "database": database,
        "workers": workers,
        "results": results,
        "seed": seeded,
        "rss_kib_at_end": server_rss_kib,
        "error_log_lines": len(errors),
    }


def table_size(
    args: argparse.Namespace, url: str | None, workers: int, influx: str, *, influx_db: str,
    tmp: str,
) -> dict[str, Any]:  # fmt: skip
    """The list scenarios at each of --table-sizes work orders (fresh database each), and
    the ratio of the largest's p50 to the smallest's."""
    sizes = [int(n) for n in args.table_sizes.split(",")]
    by_size: dict[str, Any] = {}
    saved = args.scenario_set
    args.scenario_set = {"list_default", "list_filtered", "list_cursor_5000"}
    try:
        for size in sizes:
            folder = Path(tmp) / f"size-{size}"
            folder.mkdir()
            with fresh_database(url, folder) as database_url:
                seeded = seed(database_url, size, ASSETS)
                log_path = folder / "api.log"
                with api_server(
                    database_url, influx, influx_db, log_path, workers=workers,
                    launcher=args.launcher, extra_env=server_env(args),
                ) as server:  # fmt: skip
                    by_size[str(size)] = {"seed": seeded, **scenarios(server, args, "", influx)}
    finally:
        args.scenario_set = saved
    small, big = by_size[str(min(sizes))], by_size[str(max(sizes))]
    ratios = {
        name: round(big[name]["p50_ms"] / small[name]["p50_ms"], 2)
        for name in ("list_default", "list_filtered", "list_cursor_5000")
        if name in small and name in big and small[name]["p50_ms"]
    }
    return {"sizes": by_size, f"p50_ratio_{max(sizes)}_vs_{min(sizes)}": ratios}


@contextlib.contextmanager
def profiled(pid: int, path: str | None) -> Iterator[None]:
    """With a path, py-spy samples the server (and its workers) meanwhile: collapsed stacks
    (`--format raw`, one line per stack with its count) written to path at the end."""
    if path is None:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [binary, "record", "--pid", str(pid), "--subprocesses", "--rate", "200"]
    command += ["--format", "raw", "--output", path, "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        spy.wait(60)


def _errors(log_path: Path) -> list[str]:
    return [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if '"level": "ERROR"' in line or "Traceback" in line
    ]


def _summary(label: str, results: dict[str, Any]) -> list[str]:
    lines = [
        f"{label:<22}{'ok':>6}{'fail':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'cpu ms':>8}{'srv p95':>9}"
    ]
    for name, r in results.items():
        if name == "table_size":
            for size, found in r["sizes"].items():
                rows = {k: v for k, v in found.items() if k != "seed"}
                lines.append(f"table_size: {size} work orders")
                lines += _summary("", rows)[1:]
            continue
        lines.append(
            f"{name:<22}{r['ok']:>6}{sum(r['failed_by_status'].values()):>6}{r['req_per_s']:>9}"
            f"{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}{r['server_cpu_ms_per_req']:>8}"
            f"{r.get('server_time_p95_ms', '-'):>9}"
        )
    return lines


def main() -> None:
    args = parse_args()
    runs = []
    with influx_url(args.influx_url) as influx:
        check = InfluxClient(InfluxSettings(url=influx, database="_internal", api="v1"))
        influx_version = check.server_version()
        check.close()
        for url, workers in configs(args):
            try:
                runs.append(run_config(args, url, workers, influx))
            except Exception as exc:  # the other configurations' figures still count
                print(f"run failed: {exc!r}", file=sys.stderr)
                runs.append({"database": url or "sqlite", "workers": workers, "error": repr(exc)})
    summary = []
    for each in runs:
        if "error" in each:
            summary.append(f"{each['database']}, {each['workers']} worker(s): {each['error']}")
            continue
        summary += _summary(f"{each['database']}, {each['workers']} worker(s)", each["results"])
    print("\n".join(summary))
    for each in runs:
        push = each.get("results", {}).get("push_readings")
        if push is not None:
            raw = push["raw_line_protocol_post"]
            print(
                f"{each['database']}, {each['workers']} worker(s): push "
                f"{push['readings_per_s']} readings/s; raw line-protocol POST of the same "
                f"readings {raw['readings_per_s']} readings/s; ratio {push['vs_raw_post']}"
            )
    report(
        "api_load",
        {
            "runs": runs,
            "server": {
                "command": f"{sys.executable} -m api (uvicorn; `serve --workers N` for N > 1)",
                "influxdb": influx_version,
                "gateway_rate_limit": "raised to 1e6/s, burst 1e6 (default 20/s, burst 40); "
                "readings and bytes limits raised too",
                "sweep_interval_s": 3600,
            },
            "client": {
                "kind": "httpx.Client per thread (keep-alive), ThreadPoolExecutor, same host",
                "httpx": httpx.__version__,
                "clients": args.clients,
                "requests_per_scenario": args.requests,
                "push_requests": args.push_requests,
                "warmup_per_client": "5 (2 for pushes), not counted",
                "time_limit_s": args.time_limit,
            },
            "host": {"cpus": os.cpu_count(), "system": platform.platform()},
        },
        args.json,
    )


def _rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


if __name__ == "__main__":
    main()
