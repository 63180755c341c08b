"""Schema fuzzing: every operation of the OpenAPI schema, valid and invalid inputs, every
check schemathesis has.

Schemathesis generates requests from the app's own OpenAPI schema (positive and negative
modes; its examples, coverage and fuzzing phases) and sends them in-process over ASGI to a
marketplace on a fresh SQLite file that already knows a few providers; half of the signed
envelopes get a valid signature, so payloads reach the handlers. Every answer is checked
with all of schemathesis's checks: no 5xx, status codes, content types, headers and bodies
as documented, invalid data refused, valid data accepted, 405 with the right Allow header
for undeclared methods. A deliberate 503 (with the service's reason) is checked the same
way, less the no-5xx check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from marketplace.api.limits import json_depth_exceeds
from marketplace.app import create_app
from marketplace.compute import providers
from marketplace.settings import Settings
from marketplace.store.db import migrate, transaction
from protocol.schemas import ProviderRegistration
from tests.marketplace.api.conftest import account, registration, signed

pytestmark = pytest.mark.integration


class _CurrentApp:
    """An ASGI app that forwards to the app of the running test (a fresh database each)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_current = _CurrentApp()
# The schema does not depend on settings; this app is never started.
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="sqlite://")).openapi())
schema.app = _current


@pytest.fixture(autouse=True)
def fresh_marketplace(tmp_path) -> Iterator[None]:
    """A marketplace on a new SQLite file with three providers, started by the first request."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'fuzz.db'}", batch_window_ms=0))
    service = app.state.service
    migrate(service.engine)
    with transaction(service.sessions) as session:
        for i, (lat, lon) in enumerate([(48.1, 11.6), (40.7, -74.0), (-33.9, 151.2)]):
            providers.register(
                session,
                address=account(f"fuzz{i}").address,
                reg=ProviderRegistration.model_validate(registration(lat=lat, lon=lon)),
                grid=service.grid,
                chain=None,
            )
    _current.app = app
    yield
    _current.app = None
    app.state.heartbeat_writer.stop()  # the app's lifespan never ran to stop it


PURPOSES = {
    "/v1/providers": "dcloud/provider.register",
    "/v1/providers/heartbeat": "dcloud/provider.heartbeat",
    "/v1/jobs": "dcloud/job.submit",
    "/v1/services": "dcloud/service.deploy",
    "/v1/services/{name}/report": "dcloud/service.report",
    "/v1/services/{name}/stop": "dcloud/service.stop",
}


def _sign_some(case) -> None:
    """Give half of the generated envelopes a valid signature over their generated payload,
    so that payloads get past authentication into the handlers (and the matcher)."""
    body = case.body
    purpose = PURPOSES.get(case.path)
    if case.method.upper() != "POST" or purpose is None or not isinstance(body, dict):
        return
    stamp = body.get("timestamp_ms")
    if "payload" not in body or not isinstance(stamp, int) or stamp % 2:
        return
    signer = account(f"fuzz{stamp % 6 // 2}")  # the seeded providers sign
    case.body = {**body, **signed(signer, purpose, body["payload"])}


@schema.parametrize()
@settings(
    max_examples=12,  # per operation and phase: the whole test stays near a minute
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_to_its_openapi_document(case):
    _sign_some(case)
    response = case.call()
    excluded = [positive_data_acceptance]
    if response.status_code == 503:
        # a deliberate refusal (e.g. too few storage nodes online right now) carries
        # the service's reason; an unexpected failure would be a bare 500
        body = response.json()
        assert body.get("error") == "UnavailableError" and body.get("detail"), body
        excluded.append(not_a_server_error)
    case.validate_response(response, excluded_checks=excluded)
    try:
        case.validate_response(response, checks=[positive_data_acceptance])
    except FailureGroup:
        if case.operation.label not in SCHEMA_CANNOT_SAY:
            raise


# Operations where a body the schema allows can still be refused (422), for a rule JSON
# Schema cannot state or a bound it cannot hold exactly; each is a known gap, named here so
# that a new one anywhere else fails this test.
SCHEMA_CANNOT_SAY = {
    # price_wei <= 2**63 - 1: past 2**53 JSON numbers are doubles, so a schema validator
    # takes 2**63 + 192 for the bound itself
    "POST /v1/providers",
    "POST /v1/providers/heartbeat",
    # start_by at most the escrow's hold ahead of now: depends on the clock
    "POST /v1/jobs/quote",
    "POST /v1/jobs",
    # free_bytes <= capacity_bytes: a rule between two fields
    "POST /v1/storage/nodes",
    # a deployment of several containers names its main one: a rule between fields
    "POST /v1/services/quote",
    "POST /v1/services",
}


# Found by fuzzing and probing around it; each was a 500 or worse before the fix.


def test_non_finite_number_gets_a_422_naming_the_field():
    body = '{"image":"busybox","resources":{"cpu":NaN,"memory_mb":1},"time_limit_s":1,'
    body += '"max_price_wei":1,"origin":{"lat":1e400,"lon":0}}'
    with TestClient(_current.app) as client:
        r = client.post(
            "/v1/jobs/quote", content=body, headers={"content-type": "application/json"}
        )
    assert r.status_code == 422
    assert {tuple(e["loc"][-2:]) for e in r.json()["detail"]} == {
        ("resources", "cpu"),
        ("origin", "lat"),
    }


def test_deeply_nested_body_is_refused_before_parsing():
    # py_ecc (via eth-account) lifts the recursion limit to 100,000, so a deep enough body
    # used to overflow the C stack in the JSON parser and kill the server.
    body = "[" * 20_000 + "]" * 20_000
    with TestClient(_current.app) as client:
        r = client.post("/v1/providers", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "deeper than" in r.json()["detail"]


def test_nesting_depth_ignores_brackets_inside_strings():
    assert not json_depth_exceeds(b'{"a": "' + b"[" * 100 + b'"}', 32)
    assert not json_depth_exceeds(b'{"a": "\\"' + b"[" * 100 + b'"}', 32)
    assert json_depth_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert not json_depth_exceeds(b"[" * 32 + b"]" * 32, 32)
