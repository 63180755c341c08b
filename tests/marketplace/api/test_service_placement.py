"""Service placement: energy-weighted, priced per second, never overbooking a provider
across jobs and services; reservations hold across heartbeats and expire."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.services import expiry
from marketplace.settings import Settings
from protocol import purposes
from tests.marketplace.api.conftest import account, job_spec, signed
from tests.marketplace.api.services_helpers import (
    deploy,
    free_cpu,
    register,
    report,
    service_spec,
    stop,
)

ALICE, BOB = account("alice"), account("bob")
P1 = account("provider-place-1")


def test_quote_names_the_provider_and_the_rate_per_second_without_holding_anything(client):
    register(client, P1, cpu=4, price_wei=1000)
    r = client.post("/v1/services/quote", json=service_spec("blog", cpu=1.5))
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["provider"] == P1.address and q["rate_wei_per_s"] == 1500
    assert q["energy_basis"] and q["reason"] == ""
    assert free_cpu(client, P1) == 4


def test_a_provider_whose_rate_is_above_the_max_rate_is_not_chosen(client):
    register(client, P1, cpu=4, price_wei=1000)
    r = deploy(client, ALICE, service_spec("blog", cpu=2, max_rate_wei_per_s=1999))
    body = r.json()
    assert r.status_code == 201 and body["status"] == "unmatched"
    assert "max rate" in body["reason"] and "per second" in body["reason"]
    assert free_cpu(client, P1) == 4


def test_unmatched_service_says_which_constraint_binds(client):
    register(client, P1, cpu=2)
    body = deploy(client, ALICE, service_spec("big", cpu=3)).json()
    assert body["status"] == "unmatched"
    assert body["reason"] == (
        "no online provider holding busybox has more than 2 CPU free (you asked 3 CPU)"
    )


def test_placement_takes_the_reservation_off_free_capacity(client):
    register(client, P1, cpu=4)
    body = deploy(client, ALICE, service_spec("blog", cpu=3)).json()
    assert body["status"] == "placed" and body["provider"] == P1.address
    assert free_cpu(client, P1) == 1


def test_the_reservation_survives_the_providers_heartbeats(client):
    register(client, P1, cpu=4)
    deploy(client, ALICE, service_spec("blog", cpu=3))
    free = {"cpu": 4, "memory_mb": 16384, "gpu": 0, "disk_mb": 100_000}
    r = client.post(
        "/v1/providers/heartbeat", json=signed(P1, purposes.PROVIDER_HEARTBEAT, {"free": free})
    )
    assert r.status_code == 200 and r.json()["free"]["cpu"] == 1


def test_services_never_overbook_a_provider(client):
    register(client, P1, cpu=4)
    assert deploy(client, ALICE, service_spec("one", cpu=3)).json()["status"] == "placed"
    assert deploy(client, ALICE, service_spec("two", cpu=2)).json()["status"] == "unmatched"
    assert deploy(client, ALICE, service_spec("three", cpu=1)).json()["status"] == "placed"
    assert free_cpu(client, P1) == 0


def test_jobs_and_services_never_overbook_a_provider_together(client):
    register(client, P1, cpu=4)
    assert deploy(client, ALICE, service_spec("blog", cpu=3)).json()["status"] == "placed"
    too_big = client.post("/v1/jobs", json=signed(BOB, purposes.JOB_SUBMIT, job_spec(cpu=2))).json()
    assert too_big["status"] == "unmatched"
    fits = client.post("/v1/jobs", json=signed(BOB, purposes.JOB_SUBMIT, job_spec(cpu=1))).json()
    assert fits["status"] == "matched"
    assert deploy(client, ALICE, service_spec("more", cpu=1)).json()["status"] == "unmatched"
    assert free_cpu(client, P1) == 0


def test_stopping_a_placed_service_frees_its_capacity_at_once(client):
    register(client, P1, cpu=4)
    deploy(client, ALICE, service_spec("blog", cpu=3))
    assert stop(client, ALICE, "blog").json()["status"] == "ended"
    assert free_cpu(client, P1) == 4


def test_only_the_owner_may_stop_a_service(client):
    register(client, P1, cpu=4)
    deploy(client, ALICE, service_spec("blog", cpu=3))
    assert stop(client, BOB, "blog").status_code == 401
    assert free_cpu(client, P1) == 1


def test_a_provider_report_hands_the_reservation_to_the_provider(client):
    register(client, P1, cpu=4)
    deploy(client, ALICE, service_spec("blog", cpu=3))
    assert report(client, P1, "blog", host_port=31000).status_code == 200
    # the provider counts the running service in its own free capacity from now on
    free = {"cpu": 1, "memory_mb": 16384, "gpu": 0, "disk_mb": 100_000}
    r = client.post(
        "/v1/providers/heartbeat", json=signed(P1, purposes.PROVIDER_HEARTBEAT, {"free": free})
    )
    assert r.json()["free"]["cpu"] == 1


@pytest.fixture
def short_client(tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'market.db'}",
        batch_window_ms=20,
        service_reservation_s=30,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_a_reservation_no_lease_took_up_expires_and_frees_capacity(short_client):
    client = short_client
    register(client, P1, cpu=4)
    placed = deploy(client, ALICE, service_spec("blog", cpu=3)).json()
    service = client.app.state.service  # type: ignore[attr-defined]
    assert expiry.expire_due(service, now=placed["reserved_until"] - 1) == 0
    assert expiry.expire_due(service, now=placed["reserved_until"] + 1) == 1
    assert free_cpu(client, P1) == 4
    body = client.get("/v1/services/blog").json()
    assert body["status"] == "expired" and "30 s" in body["reason"]
    # the owner may deploy again under the name
    assert deploy(client, ALICE, service_spec("blog")).json()["status"] == "placed"


def test_a_running_service_does_not_expire(short_client):
    client = short_client
    register(client, P1, cpu=4)
    placed = deploy(client, ALICE, service_spec("blog", cpu=3)).json()
    report(client, P1, "blog", host_port=31000)
    service = client.app.state.service  # type: ignore[attr-defined]
    assert expiry.expire_due(service, now=placed["reserved_until"] + 1) == 0
    assert expiry.expire_due(service, now=time.time() + 10**6) == 0
    assert client.get("/v1/services/blog").json()["status"] == "placed"
