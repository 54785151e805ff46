"""Property-based run over the OpenAPI schema (schemathesis): no 5xx, no off-schema response.

Besides the generated cases, every PATCH operation is called with explicit nulls (each field
alone, and all at once) and without If-Match, on resources that exist (issue 15).
"""

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


# How many cases were sent, reported at the end (the acceptance asks for the figures).
CALLS: dict[str, int] = {"generated": 0, "explicit_nulls": 0}


def fuzz(operation: Any, headers: dict[str, str]) -> Any:
    """A hypothesis test calling one operation with generated cases."""

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case[Any]) -> None:
        CALLS["generated"] += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    return run


def _existing_ids(api: Api) -> dict[str, int]:
    """Path parameters naming resources that exist, so a PATCH reaches its rules."""
    site = api.ok("admin", "GET", "/api/v1/sites?code=plant-a")["items"][0]
    asset = api.ok("admin", "GET", "/api/v1/assets?code=pump-01")["items"][0]
    order = api.ok(
        "facilities", "POST", "/api/v1/work-orders", json={"asset_id": asset["id"], "title": "x"}
    )
    plan = api.ok(
        "facilities",
        "POST",
        "/api/v1/pm-plans",
        json={
            "site_id": site["id"],
            "asset_id": asset["id"],
            "title": "x",
            "every": 1,
            "unit": "weeks",
        },
    )
    return {
        "site_id": site["id"],
        "asset_id": asset["id"],
        "order_id": order["id"],
        "plan_id": plan["id"],
        "user_id": api.user_ids["technician2"],
    }


def null_bodies(operation: Any) -> list[dict[str, Any]]:
    """Each property of the PATCH body set to null alone, then all of them at once."""
    schema = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = operation.schema.raw_schema["components"]["schemas"][name]
    names = list(schema["properties"])
    return [{name: None} for name in names] + [dict.fromkeys(names)]


# The operations are fuzzed in shards, each against an app of its own: one test of every
# operation was the suite's longest CPU-bound test (30 s alone, 150 s on a loaded machine), on
# one worker while the others had finished.
SHARDS = 4


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_server_errors(fuzz_target: tuple[OpenApiSchema, Api], shard: int) -> None:
    schema, api = fuzz_target
    failures: list[str] = []
    operations = list(schema.get_all_operations())
    assert len(operations) > 4 * SHARDS  # every shard fuzzes some operations
    for operation in operations[shard::SHARDS]:
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
    print(f"schemathesis, shard {shard}: {CALLS['generated']} generated cases, 0 failures")


def test_explicit_nulls_and_no_if_match_on_every_patch(
    fuzz_target: tuple[OpenApiSchema, Api],
) -> None:
    """Every PATCH with nulls and no If-Match: documented answers, no 5xx, GET still 200."""
    schema, api = fuzz_target
    ids = _existing_ids(api)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    patches = [op for op in operations if op.method.upper() == "PATCH"]
    assert len(patches) == 5, [p.path for p in patches]
    failures: list[str] = []
    for op in patches:
        params = {name: ids[name] for name in ids if "{" + name + "}" in op.path}
        for body in null_bodies(op):
            case = op.Case(path_parameters=params, body=body, media_type="application/json")
            CALLS["explicit_nulls"] += 1
            try:
                response = case.call_and_validate(headers=api.headers("admin"), checks=CHECKS)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"PATCH {op.path} {body}: {str(exc)[:800]}")
                continue
            nullable = body.keys() <= {"due_at", "area_id", "installed_on"}
            if response.status_code != (200 if nullable else 422):
                failures.append(f"PATCH {op.path} {body}: {response.status_code}")
            path = op.path.format(**params)
            if api.call("admin", "GET", path).status_code != 200:
                failures.append(f"GET {path} after PATCH {body}")
    assert failures == []
    print(f"explicit-null PATCH cases: {CALLS['explicit_nulls']}, 0 failures")
