"""The OpenAPI schema, its browsable docs, and property-based fuzzing of the live server from it.

Schemathesis generates requests from the schema (valid and invalid ones) and checks every answer:
no 5xx, a status the schema documents, and a body that matches the documented shape. The budget
is bounded (SCOUT_FUZZ_EXAMPLES examples per operation).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live import ADMIN, Backends, ScoutServer

CONTRACT_PATHS = {
    "/api/create_model",
    "/api/delete_model/{cb_model_id}",
    "/api/models",
    "/api/model_details/{cb_model_id}",
    "/api/fetch_recommended_variant",
    "/api/update_model/{cb_model_id}",
    "/api/rollout_global_variant/{cb_model_id}",
    "/api/clear_global_variant/{cb_model_id}",
    "/admin/get_protection",
    "/admin/set_protection",
    "/admin/generate_token",
    "/admin/redis_health",
    "/admin/model_config",
    "/admin/system_config",
    "/admin/redis_config",
}


def test_the_schema_describes_every_contract_endpoint(api):
    response = api.get("/api/schema/", params={"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= CONTRACT_PATHS
    fetch = schema["paths"]["/api/fetch_recommended_variant"]["post"]
    assert {"200", "400", "404", "413", "503"} <= set(fetch["responses"])
    assert fetch["requestBody"]["content"]["application/json"]["examples"]


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_docs_are_served_locally(api, page):
    response = api.get(page)
    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    scripts = [url for url in assets if url.endswith((".js", ".css"))]
    assert scripts, response.text[:500]
    for url in scripts:
        assert url.startswith("/static/"), url  # nothing from a CDN: operators run air-gapped
        assert api.get(url).status_code == 200, url


@pytest.fixture(scope="module")
def fuzzed_server(backends: Backends) -> Iterator[ScoutServer]:
    server = ScoutServer.dedicated(backends, "fuzz").start()
    with server.client() as api:  # a Test for the fuzzer to find among the random ids
        api.post("/api/create_model", json={"name": "Fuzzed", "variants": {"0": "a", "1": "b"}})
    with server.client(auth=ADMIN.credentials) as staff:
        system = staff.get("/admin/system_config").json()
        defaults = staff.get("/admin/model_config").json()
    yield server
    # The fuzzer changed the stored listening address and the Test defaults; on PostgreSQL the
    # test servers share one database, so put them back as they were found.
    with server.client(auth=ADMIN.credentials) as staff:
        restored = {key: system[key] for key in ("host", "port", "debug")}
        assert staff.post("/admin/system_config", json=restored).status_code == 200
        back = staff.post("/admin/model_config", json=defaults)
        assert back.status_code == 200, back.text
    server.stop()


EXAMPLES = int(os.environ.get("SCOUT_FUZZ_EXAMPLES", "25"))
# Changing protection, tokens or the Redis in use would only make the rest refuse.
NOT_FUZZED = re.compile(r"^/admin/(set_protection|generate_token|redis_config)$")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]


def _within_rules(case):
    """A case without the fields whose rules compare two values or a value with the clock,
    which no schema can state, so that the fuzzer does not take their refusals for valid data
    rejected: create_model's end and on_end (an end in the future and after the start, an
    on_end among the body's variants), a metric series' `from` (at most 14 days before `to`).
    The same fields' siblings, read by the same code, are still fuzzed (a schedule's start, a
    series' `to`); the refusals are tested in test_schedules and test_history."""
    if case.operation.path == "/api/create_model" and isinstance(case.body, dict):
        case.body.pop("ends_at", None)
        case.body.pop("on_end", None)
    if case.operation.path.startswith("/api/metrics/{cb_model_id}/") and case.query:
        case.query.pop("from", None)
    return case


def _fuzz(operation, base_url: str, auth: tuple[str, str] | None) -> None:
    @given(case=operation.as_strategy().map(_within_rules))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case) -> None:
        case.call_and_validate(base_url=base_url, auth=auth, checks=CHECKS)

    call()


def test_fuzzing_finds_no_server_error_and_no_answer_off_the_schema(fuzzed_server):
    loaded = schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/schema/?format=json")
    operations = [result.ok() for result in loaded.get_all_operations()]
    fuzzed = [op for op in operations if not NOT_FUZZED.match(op.path)]
    assert len(fuzzed) >= 15
    for operation in fuzzed:
        auth = ADMIN.credentials if operation.path.startswith("/admin/") else None
        _fuzz(operation, fuzzed_server.url, auth)
