"""A matched job nobody funds expires and gives its providers' room back at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient

from marketplace.api.schemas import JobStatusName
from marketplace.app import create_app
from marketplace.chain import apply
from marketplace.chain.apply import ChainEvent, apply_events
from marketplace.compute import expiry, jobs
from marketplace.service import Service
from marketplace.settings import Settings
from marketplace.store.db import transaction
from marketplace.store.models import JobRow, ProviderRow
from protocol.assignments import VALID_S
from protocol.schemas import JobSpec
from tests.marketplace.api.conftest import account, job_spec, registration, signed

SUBMIT, REGISTER, HEARTBEAT = (
    "dcloud/job.submit",
    "dcloud/provider.register",
    "dcloud/provider.heartbeat",
)
EXPIRES_S = 600
OFFLINE_AFTER_S = 10**7
PROVIDER = account("expiry-provider")


def _client(tmp_path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(
            Settings(
                database_url=f"sqlite:///{tmp_path / 'market.db'}",
                batch_window_ms=0,
                **settings,
            )
        ),
        raise_server_exceptions=False,
    )


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    """A marketplace with one 8-CPU provider."""
    with _client(tmp_path, match_expires_s=EXPIRES_S, offline_after_s=OFFLINE_AFTER_S) as c:
        body = registration(lat=48.1, lon=11.6, cpu=8)
        assert c.post("/v1/providers", json=signed(PROVIDER, REGISTER, body)).status_code == 201
        yield c


def _service(client: TestClient) -> Service:
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    return service


def _submit(client: TestClient, cpu: float = 6) -> dict[str, Any]:
    r = client.post("/v1/jobs", json=signed(account("renter"), SUBMIT, job_spec(cpu=cpu)))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _age(client: TestClient, job_id: str, seconds: float) -> None:
    """Move the job's match and the provider's last heartbeat `seconds` into the past, as
    if all had happened that long ago (the provider stays online: OFFLINE_AFTER_S)."""
    with transaction(_service(client).sessions) as session:
        row = session.get(JobRow, job_id)
        assert row is not None and row.matched_at is not None
        row.matched_at -= seconds
        provider = session.get(ProviderRow, PROVIDER.address)
        assert provider is not None
        provider.last_heartbeat_at -= seconds


def _free_cpu(client: TestClient) -> float:
    return float(client.get(f"/v1/providers/{PROVIDER.address}").json()["free"]["cpu"])


def test_default_expiry_is_the_life_of_the_matcher_signature():
    assert Settings().match_expires_s == VALID_S == 600


def test_unfunded_match_reads_as_expired_with_the_reason(client):
    job = _submit(client)
    assert job["status"] == "matched"
    _age(client, job["id"], EXPIRES_S + 1)
    got = client.get(f"/v1/jobs/{job['id']}").json()
    assert (got["status"], got["reason"]) == ("expired", "not funded within 600 s of matching")
    assert client.get("/v1/jobs", params={"status": "matched"}).json()["total"] == 0
    assert client.get("/v1/jobs", params={"status": "expired"}).json()["total"] == 1


def test_a_fresh_match_stays_matched(client):
    job = _submit(client)
    _age(client, job["id"], EXPIRES_S - 5)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "matched"


def test_expiry_releases_the_reserved_capacity_at_once(client):
    job = _submit(client, cpu=6)
    assert _free_cpu(client) == 2
    assert _submit(client, cpu=6)["status"] == "unmatched"
    _age(client, job["id"], EXPIRES_S + 1)
    # no read and no heartbeat in between: the next batch expires it first
    assert _submit(client, cpu=6)["status"] == "matched"
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "expired"


def test_listing_releases_the_capacity_too(client):
    job = _submit(client, cpu=6)
    _age(client, job["id"], EXPIRES_S + 1)
    assert client.get("/v1/jobs").json()["items"][0]["status"] == "expired"
    assert _free_cpu(client) == 8


def test_capacity_a_heartbeat_already_reset_is_not_given_back_twice(client):
    job = _submit(client, cpu=6)
    # the provider never heard of the job; something else uses 4 of its 8 CPUs
    free = {"cpu": 4, "memory_mb": 16384, "gpu": 0, "disk_mb": 100_000}
    r = client.post("/v1/providers/heartbeat", json=signed(PROVIDER, HEARTBEAT, {"free": free}))
    assert r.status_code == 200, r.text
    _age(client, job["id"], EXPIRES_S + 1)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "expired"
    assert _free_cpu(client) == 4


def test_a_job_funded_on_chain_is_never_expired(client):
    job = _submit(client)
    funded = ChainEvent(
        contract="JobEscrow",
        name="JobFunded",
        block_number=10,
        log_index=0,
        tx_hash="0x" + "ab" * 32,
        args={
            "jobId": 7,
            "renter": account("renter").address,
            "specHash": bytes.fromhex(job["spec_hash"].removeprefix("0x")),
            "deposit": 10**15,
            "deadline": int(time.time()) + 3600,
            "replicas": 1,
            "providers": [PROVIDER.address],
        },
    )
    with transaction(_service(client).sessions) as session:
        apply_events(session, [funded], stakes={})
    _age(client, job["id"], EXPIRES_S * 10)
    got = client.get(f"/v1/jobs/{job['id']}").json()
    assert got["status"] == "funded" and got["chain"]["chain_job_id"] == 7
    assert _free_cpu(client) == 2


def test_the_sweeper_expires_without_any_read(tmp_path):
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", match_expires_s=1))
    service.open()
    with transaction(service.sessions) as session:
        spec = JobSpec.model_validate(job_spec())
        row = jobs.create(session, renter=account("renter").address, spec=spec, grid=service.grid)
        row.status, row.matched_at = jobs.MATCHED, time.time() - 10
        job_id = row.id
    stop = threading.Event()
    thread = expiry.start_sweeper(service, stop)
    try:
        # wait for the sweep's effect (bounded), not for a time
        deadline = time.monotonic() + 30
        status = jobs.MATCHED
        while status == jobs.MATCHED and time.monotonic() < deadline:
            stop.wait(0.02)
            with service.sessions() as session:
                status = jobs.get(session, job_id).status
        assert status == jobs.EXPIRED
    finally:
        stop.set()
        thread.join(timeout=30)
        service.close()


def test_sweeper_thread_ends_when_stopped(tmp_path):
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}"))
    service.open()
    stop = threading.Event()
    thread = expiry.start_sweeper(service, stop)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    service.close()


def test_the_openapi_document_lists_every_status(tmp_path):
    schema = create_app(Settings(database_url="sqlite://")).openapi()
    listed = schema["components"]["schemas"]["JobPublic"]["properties"]["status"]["enum"]
    assert "expired" in listed
    produced = {jobs.PENDING, jobs.MATCHED, jobs.UNMATCHED, jobs.EXPIRED, *apply._RANK}
    assert set(listed) == set(get_args(JobStatusName)) == produced
