"""The client's failure classes, shown against the real influxd (stopped, bad data, bad auth)."""

from __future__ import annotations

import pytest

from telemetry.errors import InfluxFatalError, InfluxRejectedError, InfluxRetryableError
from telemetry.influx.classify import classify_response, parse_retry_after
from telemetry.influx.client import InfluxClient
from telemetry.influx.settings import InfluxSettings
from telemetry.reading import now_ns
from tests.fixtures.factories import make_reading
from tests.fixtures.services import AuthInfluxDB, Service


def test_stopped_server_is_retryable(influxdb: Service, influx_client: InfluxClient) -> None:
    influxdb.stop()
    with pytest.raises(InfluxRetryableError, match="write failed"):
        influx_client.write_readings([make_reading()])
    influxdb.start()
    influx_client.write_readings([make_reading()])  # the same client recovers by itself
    assert len(influx_client.read_readings()) == 1


def test_killed_server_is_retryable_and_loses_nothing_confirmed(
    influxdb: Service, influx_client: InfluxClient
) -> None:
    confirmed = [make_reading(time_ns=now_ns() + i) for i in range(100)]
    influx_client.write_readings(confirmed)
    influxdb.kill()
    with pytest.raises(InfluxRetryableError):
        influx_client.read_readings()
    influxdb.start()
    assert len(influx_client.read_readings()) == 100


def test_malformed_body_is_rejected_with_the_servers_reason(influx_client: InfluxClient) -> None:
    with pytest.raises(InfluxRejectedError) as caught:
        influx_client.write_lines(b"telemetry,asset=a,site=s x=")
    assert caught.value.status == 400
    assert "unable to parse" in caught.value.server_reason


def test_partial_write_reports_dropped_points(influx_client: InfluxClient) -> None:
    t = now_ns()
    influx_client.write_lines(f"telemetry,asset=a,site=s x=1i {t}".encode())
    body = f"telemetry,asset=a,site=s x=2.5 {t + 1}\ntelemetry,asset=a,site=s y=3 {t + 2}".encode()
    with pytest.raises(InfluxRejectedError) as caught:
        influx_client.write_lines(body)
    assert "partial write" in caught.value.server_reason
    assert "field type conflict" in caught.value.server_reason
    assert caught.value.dropped == 1
    assert len(influx_client.read_readings()) == 2  # the good point of the batch was kept


def test_unknown_database_is_fatal(influxdb: Service) -> None:
    client = InfluxClient(InfluxSettings(url=influxdb.url, database="no_such_db", api="v1"))
    with pytest.raises(InfluxFatalError, match="database not found"):
        client.write_readings([make_reading()])


def test_wrong_credentials_are_fatal(influxdb_with_auth: AuthInfluxDB) -> None:
    url = influxdb_with_auth.server.url
    good = InfluxClient(
        InfluxSettings(
            url=url,
            database="authdb",
            api="v1",
            username="admin",
            password=influxdb_with_auth.password,
        )
    )
    good.ensure_database()
    good.write_readings([make_reading()])
    bad = InfluxClient(
        InfluxSettings(url=url, database="authdb", api="v1", username="admin", password="wrong")
    )
    with pytest.raises(InfluxFatalError) as caught:
        bad.write_readings([make_reading()])
    assert caught.value.status == 401
    anonymous = InfluxClient(InfluxSettings(url=url, database="authdb", api="v1"))
    with pytest.raises(InfluxFatalError):
        anonymous.read_readings()
    assert len(good.read_readings()) == 1


def test_query_error_is_rejected(influx_client: InfluxClient) -> None:
    with pytest.raises(InfluxRejectedError, match="error parsing query"):
        influx_client.query("SELEC nonsense")


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (503, {"Retry-After": "7"}, InfluxRetryableError, 7.0),
        (429, {"retry-after": "2"}, InfluxRetryableError, 2.0),
        (500, {}, InfluxRetryableError, None),
        (413, {}, InfluxRejectedError, None),
        (403, {}, InfluxFatalError, None),
    ],
)
def test_classification_of_statuses(status, headers, expected, retry_after) -> None:
    error = classify_response(status, headers, b'{"error": "x"}', action="write")
    assert type(error) is expected
    assert error.status == status
    if retry_after is not None:
        assert isinstance(error, InfluxRetryableError)
        assert error.retry_after == retry_after


def test_retry_after_as_http_date() -> None:
    assert parse_retry_after("Fri, 27 Nov 2026 07:00:30 GMT", now=1795762800.0) == 30.0
    assert parse_retry_after("soon") is None
