"""Storage-node routes of the marketplace, driven through HTTP on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.settings import Settings
from tests.marketplace.api.conftest import account, signed

REGISTER = "dcloud/storage.register"
HEARTBEAT = "dcloud/storage.heartbeat"
REPORT = "dcloud/storage.report"

# (lat, lon) in six different bundled regions' neighbourhoods
PLACES = [(52.5, 13.4), (48.9, 2.3), (40.4, -3.7), (40.7, -74.0), (35.7, 139.7), (-33.9, 151.2)]


def node_reg(
    *, lat: float = 52.5, lon: float = 13.4, capacity: int = 10 * 2**20, free: int | None = None
) -> dict[str, Any]:
    return {
        "endpoint": "http://127.0.0.1:9300",
        "location": {"lat": lat, "lon": lon},
        "capacity_bytes": capacity,
        "free_bytes": capacity if free is None else free,
    }


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'market.db'}")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def register(client: TestClient, name: str, **kw: Any) -> str:
    acct = account(name)
    r = client.post("/v1/storage/nodes", json=signed(acct, REGISTER, node_reg(**kw)))
    assert r.status_code == 201, r.text
    return acct.address


def test_registered_node_is_listed_online_with_its_region(client):
    address = register(client, "s1")
    body = client.get(f"/v1/storage/nodes/{address.lower()}").json()
    assert body["online"] is True
    assert body["region"]
    assert body["free_bytes"] == body["capacity_bytes"] == 10 * 2**20
    listing = client.get("/v1/storage/nodes", params={"online": True}).json()
    assert [n["address"] for n in listing["items"]] == [address]


def test_heartbeat_updates_free_space(client):
    address = register(client, "s2")
    hb = {"free_bytes": 1234, "shards": 3}
    r = client.post("/v1/storage/nodes/heartbeat", json=signed(account("s2"), HEARTBEAT, hb))
    assert r.status_code == 200, r.text
    body = client.get(f"/v1/storage/nodes/{address}").json()
    assert (body["free_bytes"], body["shards"]) == (1234, 3)
    assert body["used_bytes"] == 10 * 2**20 - 1234


def test_heartbeat_before_register_is_a_conflict(client):
    hb = {"free_bytes": 1, "shards": 0}
    r = client.post("/v1/storage/nodes/heartbeat", json=signed(account("s3"), HEARTBEAT, hb))
    assert r.status_code == 409
    assert "register" in r.json()["detail"]


def test_heartbeat_above_capacity_is_refused(client):
    register(client, "s4", capacity=100)
    hb = {"free_bytes": 101, "shards": 0}
    r = client.post("/v1/storage/nodes/heartbeat", json=signed(account("s4"), HEARTBEAT, hb))
    assert r.status_code == 422
    assert "capacity" in r.json()["detail"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"free_bytes": 11 * 2**20}, "free_bytes exceeds"),
        ({"capacity_bytes": 0}, "capacity_bytes"),
        ({"endpoint": "not a url"}, "endpoint"),
        ({"location": {"lat": 91, "lon": 0}}, "lat"),
        ({"region": "ATLANTIS"}, "use one of"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_registration_is_a_validation_error(client, change, where):
    body = {**node_reg(), **change}
    r = client.post("/v1/storage/nodes", json=signed(account("s5"), REGISTER, body))
    assert r.status_code == 422
    assert where in r.text


def test_registration_signed_for_another_purpose_is_refused(client):
    r = client.post("/v1/storage/nodes", json=signed(account("s6"), HEARTBEAT, node_reg()))
    assert r.status_code == 401


def test_replayed_heartbeat_is_refused(client):
    register(client, "s7")
    envelope = signed(account("s7"), HEARTBEAT, {"free_bytes": 5, "shards": 0})
    assert client.post("/v1/storage/nodes/heartbeat", json=envelope).status_code == 200
    r = client.post("/v1/storage/nodes/heartbeat", json=envelope)
    assert r.status_code == 401
    assert "replay" in r.json()["detail"]


def test_node_without_recent_heartbeat_is_offline_and_not_placed(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", offline_after_s=1e-9)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        register(c, "s8")
        listing = c.get("/v1/storage/nodes", params={"online": False}).json()
        assert listing["total"] == 1 and listing["items"][0]["online"] is False
        r = c.post("/v1/storage/placement", json={"n": 1, "shard_bytes": 1})
        assert r.status_code == 503


def test_placement_gives_distinct_nodes_in_distinct_regions(client):
    addresses = [register(client, f"p{i}", lat=lat, lon=lon) for i, (lat, lon) in enumerate(PLACES)]
    r = client.post("/v1/storage/placement", json={"n": 6, "segments": 3, "shard_bytes": 1000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {n["address"] for n in body["nodes"]} == set(addresses)
    regions = {n["address"]: n["region"] for n in body["nodes"]}
    assert len(set(regions.values())) == 6
    for seg in body["segments"]:
        assert sorted(seg) == list(range(6))


def test_placement_excludes_nodes_and_full_nodes(client):
    a = register(client, "q1", lat=52.5, lon=13.4)
    b = register(client, "q2", lat=48.9, lon=2.3, capacity=500)
    c = register(client, "q3", lat=40.4, lon=-3.7)
    r = client.post(
        "/v1/storage/placement", json={"n": 1, "shard_bytes": 1000, "exclude": [a.lower()]}
    )
    assert r.status_code == 200, r.text
    assert [n["address"] for n in r.json()["nodes"]] == [c]
    r = client.post("/v1/storage/placement", json={"n": 2, "shard_bytes": 1000, "exclude": [a]})
    assert r.status_code == 503
    assert "only 1 online storage nodes" in r.json()["detail"]
    assert b  # registered, but too small for a 1000-byte shard


@pytest.mark.parametrize(
    "body",
    [
        {"n": 0, "shard_bytes": 1},
        {"n": 33, "shard_bytes": 1},
        {"n": 1, "shard_bytes": -1},
        {"n": 1, "shard_bytes": 1, "segments": 0},
        {"n": 1, "shard_bytes": 1, "segments": 5000},
        {"n": 1, "shard_bytes": 1, "exclude": ["nope"]},
        {"n": 1},
    ],
)
def test_bad_placement_request_is_a_validation_error(client, body):
    assert client.post("/v1/storage/placement", json=body).status_code == 422


def test_reports_feed_reputation(client):
    good = register(client, "r1")
    bad = register(client, "r2", lat=48.9, lon=2.3)
    renter = account("renter")
    stranger = "0x" + "12" * 20
    payload = {
        "reports": [
            {"node": good, "ok": 20, "latency_ms": 12.5},
            {"node": bad, "ok": 1, "failed": 5, "corrupt": 3},
            {"node": stranger, "ok": 1},
        ]
    }
    r = client.post("/v1/storage/reports", json=signed(renter, REPORT, payload))
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 2, "unknown": [stranger]}
    g = client.get(f"/v1/storage/nodes/{good}").json()
    b = client.get(f"/v1/storage/nodes/{bad}").json()
    assert (g["fetch_ok"], g["latency_ms"]) == (20, 12.5)
    assert (b["fetch_failed"], b["fetch_corrupt"]) == (5, 3)
    assert g["reputation"] > b["reputation"]


@pytest.mark.parametrize(
    "payload",
    [
        {"reports": []},
        {"reports": [{"node": "0x" + "12" * 20, "ok": -1}]},
        {"reports": [{"node": "0x" + "12" * 20, "latency_ms": -5}]},
        {"reports": [{"node": "x"}]},
    ],
)
def test_bad_report_is_a_validation_error(client, payload):
    r = client.post("/v1/storage/reports", json=signed(account("renter2"), REPORT, payload))
    assert r.status_code == 422


def test_unsigned_report_is_refused(client):
    r = client.post("/v1/storage/reports", json={"reports": [{"node": "0x" + "12" * 20}]})
    assert r.status_code == 422


def test_unknown_node_is_404(client):
    assert client.get("/v1/storage/nodes/0x" + "ab" * 20).status_code == 404
