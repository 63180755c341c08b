"""Service names: one owner each, redeploys by the owner once the old deployment is over."""

from __future__ import annotations

import pytest

from tests.marketplace.api.conftest import account
from tests.marketplace.api.services_helpers import deploy, register, report, service_spec, stop

ALICE, BOB, PROVIDER = account("alice"), account("bob"), account("provider-names")


@pytest.fixture
def market(client):
    register(client, PROVIDER)
    return client


def test_first_deploy_registers_the_name_and_places_it(market):
    r = deploy(market, ALICE, service_spec("blog"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "placed" and body["provider"] == PROVIDER.address
    assert body["spec_hash"].startswith("0x") and body["reserved_until"] is not None


def test_a_name_taken_by_another_renter_is_refused(market):
    assert deploy(market, ALICE, service_spec("blog")).status_code == 201
    r = deploy(market, BOB, service_spec("blog"))
    assert r.status_code == 409
    assert r.json()["detail"] == "the name blog belongs to another renter"


def test_the_name_stays_its_owners_after_the_service_ended(market):
    assert deploy(market, ALICE, service_spec("blog")).status_code == 201
    assert stop(market, ALICE, "blog").json()["status"] == "ended"
    assert deploy(market, BOB, service_spec("blog")).status_code == 409


def test_the_owner_redeploys_once_the_old_deployment_ended(market):
    assert deploy(market, ALICE, service_spec("blog")).status_code == 201
    assert stop(market, ALICE, "blog").status_code == 200
    r = deploy(market, ALICE, service_spec("blog", cpu=2))
    assert r.status_code == 201 and r.json()["status"] == "placed"


def test_a_placed_deployment_without_a_lease_is_replaced_by_the_owners_new_one(market):
    first = deploy(market, ALICE, service_spec("blog")).json()
    second = deploy(market, ALICE, service_spec("blog", memory_mb=256)).json()
    assert second["status"] == "placed" and second["spec_hash"] != first["spec_hash"]
    listed = market.get("/v1/services", params={"renter": ALICE.address}).json()["items"]
    assert sorted(s["status"] for s in listed) == ["ended", "placed"]


def test_a_name_running_under_a_lease_is_refused_to_its_owner_too(market):
    assert deploy(market, ALICE, service_spec("blog")).status_code == 201
    # without a chain, the provider's report is what links the lease
    assert report(market, PROVIDER, "blog", host_port=31000, lease_id=7).status_code == 200
    r = deploy(market, ALICE, service_spec("blog"))
    assert r.status_code == 409
    assert r.json()["detail"] == "blog already runs under lease 7; stop it or choose another name"


@pytest.mark.parametrize("name", ["ab", "Blog", "-blog", "blog-", "my_blog", "x" * 41, "blög"])
def test_invalid_names_are_refused_with_the_rule(market, name):
    r = deploy(market, ALICE, service_spec(name))
    assert r.status_code == 422
    assert any(e["loc"][-1] == "name" for e in r.json()["detail"])


def test_invalid_name_in_the_path_is_refused_with_the_rule(market):
    r = market.get("/v1/services/Not_A_Name")
    assert r.status_code == 422
    assert "DNS label" in str(r.json()["detail"]) or "pattern" in str(r.json()["detail"])


@pytest.mark.parametrize("name", ["routes", "quote"])
def test_names_of_api_paths_are_reserved(market, name):
    r = deploy(market, ALICE, service_spec(name))
    assert r.status_code == 409 and "reserved" in r.json()["detail"]
