"""Property-based run over the OpenAPI schema (schemathesis): no 5xx, no off-schema response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.main import create_app
from telemetry.influx.settings import InfluxSettings
from tests.api.helpers import Api, create_asset, create_site, make_settings, serve, setup_roles

# What the acceptance asks: no 5xx, and every answer as documented (status, media type, body,
# headers). "Schema-valid request rejected" is left out: a valid id that does not exist is 404.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture
def fuzz_target(
    database_url: str, influx_settings: InfluxSettings
) -> Iterator[tuple[OpenApiSchema, Api]]:
    settings = make_settings(database_url, influx_settings, gateway_burst=100000)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        api = Api(client, settings)
        site = create_site(api, "plant-a")
        setup_roles(api, site["id"])
        create_asset(api, site["id"])
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema.config.base_url = url
        yield schema, api


def fuzz(operation: Any, headers: dict[str, str]) -> Any:
    """A hypothesis test calling one operation with generated cases."""

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    return run


@pytest.mark.slow
def test_no_server_errors(fuzz_target: tuple[OpenApiSchema, Api]) -> None:
    schema, api = fuzz_target
    failures: list[str] = []
    for operation in schema.get_all_operations():
        assert isinstance(operation, Ok), operation
        op = operation.ok()
        role = "gateway" if op.path == "/api/v1/readings" else "admin"
        try:
            fuzz(op, api.headers(role))()
        except BaseException as exc:  # a FailureGroup; keep fuzzing, report them all
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert failures == []
