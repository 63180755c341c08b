from __future__ import annotations

from tests.marketplace.api.conftest import account, registration, signed

REGISTER, HEARTBEAT = "dcloud/provider.register", "dcloud/provider.heartbeat"


def test_register_then_get_shows_the_provider_online(client):
    p = account("p1")
    r = client.post("/v1/providers", json=signed(p, REGISTER, registration(lat=52.5, lon=13.4)))
    assert r.status_code == 201, r.text
    body = client.get(f"/v1/providers/{p.address}").json()
    assert body["online"] is True
    assert body["region"]  # nearest bundled region was filled in
    assert body["stake_verified"] is False


def test_replayed_registration_is_refused(client):
    p = account("p2")
    envelope = signed(p, REGISTER, registration(lat=1, lon=2))
    assert client.post("/v1/providers", json=envelope).status_code == 201
    r = client.post("/v1/providers", json=envelope)
    assert r.status_code == 401
    assert "replay" in r.json()["detail"]


def test_signature_for_another_purpose_is_refused(client):
    p = account("p3")
    envelope = signed(p, HEARTBEAT, registration(lat=1, lon=2))
    r = client.post("/v1/providers", json=envelope)
    assert r.status_code == 401


def test_tampered_payload_is_refused(client):
    p = account("p4")
    envelope = signed(p, REGISTER, registration(lat=1, lon=2))
    envelope["payload"]["price_wei"] = 1
    assert client.post("/v1/providers", json=envelope).status_code == 401


def test_heartbeat_before_register_is_a_conflict(client):
    p = account("p5")
    hb = {"free": {"cpu": 1, "memory_mb": 100}}
    r = client.post("/v1/providers/heartbeat", json=signed(p, HEARTBEAT, hb))
    assert r.status_code == 409
    assert "register" in r.json()["detail"]


def test_heartbeat_updates_free_capacity(client):
    p = account("p6")
    client.post("/v1/providers", json=signed(p, REGISTER, registration(lat=1, lon=2)))
    hb = {"free": {"cpu": 2.5, "memory_mb": 1000}}
    r = client.post("/v1/providers/heartbeat", json=signed(p, HEARTBEAT, hb))
    assert r.status_code == 200, r.text
    assert r.json()["free"]["cpu"] == 2.5


def test_free_above_total_is_a_validation_error(client):
    p = account("p7")
    body = registration(lat=1, lon=2)
    body["free"]["cpu"] = 99
    r = client.post("/v1/providers", json=signed(p, REGISTER, body))
    assert r.status_code == 422
    assert "exceeds total" in r.text


def test_unknown_region_lists_the_known_ones(client):
    p = account("p8")
    r = client.post(
        "/v1/providers", json=signed(p, REGISTER, registration(lat=1, lon=2, region="ATLANTIS"))
    )
    assert r.status_code == 422
    assert "use one of" in r.json()["detail"]


def test_unknown_provider_is_404(client):
    r = client.get("/v1/providers/0x" + "ab" * 20)
    assert r.status_code == 404


def test_regions_have_levels(client):
    regions = client.get("/v1/regions").json()
    assert len(regions) >= 12
    assert {r["energy_level"] for r in regions} <= set(range(10))
