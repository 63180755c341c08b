"""The services API: reports only from the placed provider, inspection, the routes list."""

from __future__ import annotations

from tests.marketplace.api.conftest import account
from tests.marketplace.api.services_helpers import deploy, register, report, service_spec, stop

ALICE, BOB = account("alice"), account("bob")
P1, P2 = account("provider-api-1"), account("provider-api-2")


def _placed(client, name="blog"):
    register(client, P1, cpu=4)
    register(client, P2, cpu=1, lat=-33.9, lon=151.2)  # far away and too small
    body = deploy(client, ALICE, service_spec(name, cpu=2)).json()
    assert body["provider"] == P1.address
    return body


def test_the_placed_provider_reports_host_port_and_health(client):
    _placed(client)
    r = report(client, P1, "blog", host_port=31000, lease_id=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["health"]["host_port"] == 31000 and body["health"]["state"] == "healthy"
    assert body["route"] == "http://127.0.0.1:31000" and body["lease_id"] == 3


def test_another_provider_may_not_report_the_service(client):
    _placed(client)
    r = report(client, P2, "blog", host_port=31000)
    assert r.status_code == 401
    assert "only the provider blog is placed on" in r.json()["detail"]


def test_the_renter_may_not_report_its_own_service(client):
    _placed(client)
    assert report(client, ALICE, "blog", host_port=31000).status_code == 401


def test_a_report_for_another_lease_is_a_conflict(client):
    _placed(client)
    assert report(client, P1, "blog", host_port=31000, lease_id=3).status_code == 200
    assert report(client, P1, "blog", host_port=31000, lease_id=4).status_code == 409


def test_a_report_about_an_unknown_service_is_not_found(client):
    register(client, P1, cpu=4)
    assert report(client, P1, "nothing", host_port=31000).status_code == 404


def test_get_shows_status_provider_health_and_no_lease_without_a_chain(client):
    _placed(client)
    body = client.get("/v1/services/blog").json()
    assert body["status"] == "placed" and body["provider"] == P1.address
    assert body["lease"] is None and body["route"] is None
    assert body["health"]["probe_healthy"] is None
    assert client.get("/v1/services/absent").status_code == 404


def test_list_filters_by_renter(client):
    _placed(client)
    assert client.get("/v1/services", params={"renter": ALICE.address}).json()["total"] == 1
    assert client.get("/v1/services", params={"renter": BOB.address}).json()["total"] == 0
    assert client.get("/v1/services", params={"status": "placed"}).json()["total"] == 1


def test_routes_list_only_services_with_a_reported_port_and_lease(client):
    _placed(client)
    register(client, P1, cpu=4)
    deploy(client, ALICE, service_spec("wiki", cpu=1))
    assert client.get("/v1/services/routes").json() == []
    report(client, P1, "blog", host_port=31000, lease_id=3)
    r = client.get("/v1/services/routes")
    assert r.status_code == 200
    assert r.json() == [
        {"name": "blog", "target": "http://127.0.0.1:31000", "lease_id": 3, "healthy": True}
    ]


def test_routes_answer_304_while_unchanged(client):
    _placed(client)
    report(client, P1, "blog", host_port=31000, lease_id=3)
    first = client.get("/v1/services/routes")
    tag = first.headers["etag"]
    again = client.get("/v1/services/routes", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    report(client, P1, "blog", host_port=31000, lease_id=3, state="unhealthy")
    changed = client.get("/v1/services/routes", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.json()[0]["healthy"] is False


def test_a_stopped_service_with_a_lease_is_ending_and_still_routed(client):
    _placed(client)
    report(client, P1, "blog", host_port=31000, lease_id=3)
    body = stop(client, ALICE, "blog").json()
    assert body["status"] == "ending" and "lease 3" in body["reason"]
    assert [r["name"] for r in client.get("/v1/services/routes").json()] == ["blog"]
