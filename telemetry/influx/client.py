"""InfluxDB client: batched line-protocol writes (v2 API or 1.x /write) and InfluxQL reads.

Writes take ready line-protocol bodies: building ``influxdb_client.Point`` objects costs about
2.7x the CPU of formatting lines directly, so readings are formatted in bulk by
:class:`telemetry.codecs.line_protocol.LineFormatter` and handed over as bytes.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from telemetry.codecs.line_protocol import LineFormatter
from telemetry.errors import InfluxError, InfluxRejectedError, InfluxRetryableError
from telemetry.influx.classify import classify_response, server_message
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import Reading

log = logging.getLogger(__name__)

_VERSION = re.compile(r"v?(\d+)\.(\d+)")


@dataclass(slots=True)
class Series:
    """One InfluxQL result series: name, group-by tags, column names and rows."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]] = field(default_factory=list)


def parse_version(header: str | None) -> tuple[int, int] | None:
    """(major, minor) from an X-Influxdb-Version header such as '1.6.7~rc0' or 'v2.7.10'."""
    match = _VERSION.match(header or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def quote_literal(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(text: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxClient:
    """Writes readings and runs InfluxQL queries; every failure is an InfluxError subclass."""

    def __init__(self, settings: InfluxSettings, *, pool_size: int = 4) -> None:
        self.settings = settings
        self._base = settings.url.rstrip("/")
        self._http = urllib3.PoolManager(
            maxsize=pool_size,
            cert_reqs="CERT_REQUIRED" if settings.verify_tls else "CERT_NONE",
            retries=False,
            timeout=urllib3.Timeout(connect=min(5.0, settings.timeout_s), read=settings.timeout_s),
        )
        self._formatter = LineFormatter()
        self._use_v2: bool | None = {"v1": False, "v2": True}.get(settings.api)
        self._v2_write: Any = None
        self._v2_client: Any = None

    # -- connection ------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if self.settings.token is not None:
            return {"Authorization": f"Token {self.settings.token.get_secret_value()}"}
        if self.settings.username:
            password = self.settings.password.get_secret_value() if self.settings.password else ""
            raw = f"{self.settings.username}:{password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        try:
            response = self._http.request(
                method,
                self._base + path,
                body=body,
                headers={**self._auth_headers(), **(headers or {})},
                preload_content=preload,
            )
        except Urllib3Error as exc:
            raise InfluxRetryableError(f"InfluxDB {action} failed: {exc}") from exc
        if response.status >= 300:
            data = response.data if preload else response.read()
            raise classify_response(response.status, dict(response.headers), data, action=action)
        return response

    def server_version(self) -> str:
        """The server's version string from /ping (raises InfluxRetryableError when down)."""
        response = self._request("GET", "/ping", action="ping")
        return response.headers.get("X-Influxdb-Version", "")

    def uses_v2_write(self) -> bool:
        """Whether writes go through /api/v2/write (decided once from /ping in 'auto' mode)."""
        if self._use_v2 is None:
            version = parse_version(self.server_version())
            self._use_v2 = version is not None and version >= (1, 8)
            log.info("InfluxDB write path: %s", "/api/v2/write" if self._use_v2 else "/write")
        return self._use_v2

    def close(self) -> None:
        """Release pooled connections."""
        self._http.clear()
        if self._v2_client is not None:
            self._v2_client.close()

    # -- writes ----------------------------------------------------------------------------

    def format(self, readings: Iterable[Reading]) -> bytes:
        """The line-protocol body for readings (exposed so callers can cache or split it)."""
        return self._formatter.lines(readings)

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Write readings in one request; returns only once the server confirmed."""
        if readings:
            self.write_lines(self.format(readings))

    def write_lines(self, body: bytes) -> None:
        """Write a ready line-protocol body (ns precision) in one request."""
        if self.uses_v2_write():
            self._write_v2(body)
        else:
            self._write_v1(body)

    def _write_v1(self, body: bytes) -> None:
        query = {"db": self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            query["rp"] = self.settings.retention_policy
        self._request(
            "POST",
            "/write?" + urlencode(query),
            action="write",
            body=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    def _write_v2(self, body: bytes) -> None:
        from influxdb_client.rest import ApiException

        api = self._v2_write_api()
        try:
            api.write(
                bucket=self.settings.effective_bucket,
                org=self.settings.org,
                record=body,
                write_precision="ns",
            )
        except ApiException as exc:
            headers = dict(exc.headers or {})
            raise classify_response(exc.status or 0, headers, exc.body, action="write") from exc
        except Urllib3Error as exc:
            raise InfluxRetryableError(f"InfluxDB write failed: {exc}") from exc

    def _v2_write_api(self) -> Any:
        if self._v2_write is None:
            from influxdb_client.client.influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            token = self.settings.token.get_secret_value() if self.settings.token else None
            if token is None and self.settings.username:
                # InfluxDB 1.8's v2 compatibility takes 'user:password' as the token.
                password = (
                    self.settings.password.get_secret_value() if self.settings.password else ""
                )
                token = f"{self.settings.username}:{password}"
            self._v2_client = InfluxDBClient(
                url=self._base,
                token=token or "",
                org=self.settings.org,
                timeout=int(self.settings.timeout_s * 1000),
                verify_ssl=self.settings.verify_tls,
                retries=False,
            )
            self._v2_write = self._v2_client.write_api(write_options=SYNCHRONOUS)
        return self._v2_write

    # -- reads and admin -------------------------------------------------------------------

    def query(self, influxql: str, *, chunk_size: int = 10_000) -> list[Series]:
        """Run InfluxQL over /query and return every series, chunks merged, times in ns."""
        merged: dict[tuple[int, str, str], Series] = {}
        for statement_id, raw in self._query_chunks(influxql, chunk_size):
            key = (
                statement_id,
                raw.get("name", ""),
                json.dumps(raw.get("tags") or {}, sort_keys=True),
            )
            series = merged.get(key)
            if series is None:
                series = merged[key] = Series(
                    raw.get("name", ""), dict(raw.get("tags") or {}), list(raw["columns"])
                )
            series.values.extend(raw.get("values") or [])
        return list(merged.values())

    def _query_chunks(self, influxql: str, chunk_size: int) -> Iterator[tuple[int, dict[str, Any]]]:
        form = {
            "db": self.settings.database,
            "q": influxql,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(chunk_size),
        }
        if self.settings.retention_policy:
            form["rp"] = self.settings.retention_policy
        response = self._request(
            "POST",
            "/query",
            action="query",
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            preload=False,
        )
        try:
            buffer = b""
            for data in response.stream(65536):
                buffer += data
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    yield from _chunk_series(line)
            yield from _chunk_series(buffer)
        except Urllib3Error as exc:
            raise InfluxRetryableError(f"InfluxDB query failed while reading: {exc}") from exc
        finally:
            response.release_conn()

    def execute(self, influxql: str) -> None:
        """Run a statement for its effect (CREATE/DROP DATABASE, users...)."""
        self.query(influxql)

    def ensure_database(self, name: str | None = None) -> None:
        """Create the 1.x database if missing (CREATE DATABASE is idempotent)."""
        self.execute(f"CREATE DATABASE {quote_ident(name or self.settings.database)}")

    def read_readings(
        self,
        *,
        site: str | None = None,
        asset: str | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        measurement: str = "telemetry",
    ) -> list[Reading]:
        """Read raw points back as readings (nulls dropped), ordered by asset and time."""
        where = []
        if site is not None:
            where.append(f"site = {quote_literal(site)}")
        if asset is not None:
            where.append(f"asset = {quote_literal(asset)}")
        if start_ns is not None:
            where.append(f"time >= {start_ns}")
        if end_ns is not None:
            where.append(f"time < {end_ns}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        readings: list[Reading] = []
        q = f"SELECT * FROM {quote_ident(measurement)}{clause} GROUP BY site, asset"  # noqa: S608 (quoted)
        for series in self.query(q):
            columns = series.columns
            sensor_columns = [(i, c) for i, c in enumerate(columns) if c not in ("time", "quality")]
            quality_index = columns.index("quality") if "quality" in columns else None
            for row in series.values:
                values = {c: float(row[i]) for i, c in sensor_columns if row[i] is not None}
                quality = row[quality_index] if quality_index is not None else None
                readings.append(
                    Reading(series.tags["site"], series.tags["asset"], int(row[0]), values, quality)
                )
        return readings


def _chunk_series(line: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    if not line.strip():
        return
    # orjson: the analytics tick reads every asset's new rows in one response, and the stdlib
    # decoder was the largest cost of that read (about half of it).
    document = orjson.loads(line)
    if "error" in document:
        raise InfluxRejectedError(
            f"InfluxDB query failed: {document['error']}", server_reason=str(document["error"])
        )
    for result in document.get("results", []):
        if "error" in result:
            raise InfluxRejectedError(
                f"InfluxDB query failed: {result['error']}", server_reason=str(result["error"])
            )
        for series in result.get("series", []):
            yield int(result.get("statement_id", 0)), series


__all__ = [
    "InfluxClient",
    "InfluxError",
    "Series",
    "parse_version",
    "quote_ident",
    "quote_literal",
    "server_message",
]
