"""A renter's own image through the API: quotes say who must pull it, and for how long."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from protocol import purposes
from tests.marketplace.api.conftest import account, job_spec, registration, signed
from tests.marketplace.api.services_helpers import service_spec

DIGEST = "sha256:" + "ab" * 32
PINNED = f"myapp:1@{DIGEST}"
NEAR, FAR = account("img-near"), account("img-far")


def _register(client: TestClient) -> None:
    """Munich's renter: Frankfurt (300 km) has never seen the image, a provider at Oslo's
    position (1300 km) holds it; both in one region, so at one energy level."""
    for who, (lat, lon), images in (
        (NEAR, (50.11, 8.68), ("busybox",)),
        (FAR, (59.91, 10.75), ("busybox", DIGEST)),
    ):
        body = registration(lat=lat, lon=lon, images=images, region="DE-FRA")
        r = client.post("/v1/providers", json=signed(who, purposes.PROVIDER_REGISTER, body))
        assert r.status_code == 201, r.text


def _pinned(image_bytes: int | None, **kw: Any) -> dict[str, Any]:
    spec = job_spec(image=PINNED, **kw)
    spec["image_bytes"] = image_bytes
    return spec


def test_a_large_image_is_quoted_on_the_provider_holding_it(client):
    _register(client)
    q = client.post("/v1/jobs/quote", json=_pinned(2 * 10**9)).json()
    assert [c["provider"] for c in q["candidates"]] == [FAR.address]
    assert q["image_pull"] is None and q["reason"] == ""


def test_a_small_image_is_quoted_on_the_near_provider_with_its_pull(client):
    _register(client)
    q = client.post("/v1/jobs/quote", json=_pinned(5 * 10**6)).json()
    assert [c["provider"] for c in q["candidates"]] == [NEAR.address]
    assert q["image_pull"] == {
        "bytes": 5 * 10**6,
        "seconds": 0.1,  # at the default 50 MB/s
        "providers": [NEAR.address],
        "size_assumed": False,
    }


def test_replicas_name_only_the_providers_that_must_pull(client):
    _register(client)
    q = client.post("/v1/jobs/quote", json=_pinned(None, replicas=2)).json()
    assert {c["provider"] for c in q["candidates"]} == {NEAR.address, FAR.address}
    pull = q["image_pull"]
    assert pull["providers"] == [NEAR.address] and pull["size_assumed"] is True
    assert pull["bytes"] == 2**30


def test_a_pinned_image_nobody_holds_is_matched_and_submitted(client):
    _register(client)
    spec = _pinned(10**8, replicas=2)
    spec["image"] = f"other:3@sha256:{'0' * 64}"
    q = client.post("/v1/jobs/quote", json=spec).json()
    assert sorted(q["image_pull"]["providers"]) == sorted([NEAR.address, FAR.address])
    job = client.post("/v1/jobs", json=signed(account("r-img"), purposes.JOB_SUBMIT, spec))
    assert job.status_code == 201, job.text
    assert job.json()["status"] == "matched"


def test_offered_images_still_need_a_holder_and_quote_no_pull(client):
    _register(client)
    q = client.post("/v1/jobs/quote", json=job_spec(image="busybox")).json()
    assert q["image_pull"] is None and q["price_wei"] is not None
    q = client.post("/v1/jobs/quote", json=job_spec(image="dcloud/other:1")).json()
    assert q["reason"] == "no provider offers image dcloud/other:1 (offered: busybox)"


def test_unmatched_pinned_job_never_blames_the_image(client):
    _register(client)
    q = client.post("/v1/jobs/quote", json=_pinned(10**6, cpu=64)).json()
    assert q["image_pull"] is None
    assert q["reason"] == "no online provider has more than 8 CPU free (you asked 64 CPU)"


def test_a_malformed_pinned_reference_is_refused_with_how_to_name_an_image(client):
    _register(client)
    r = client.post("/v1/jobs/quote", json=job_spec(image="myapp@sha256:1234"))
    assert r.status_code == 422
    assert "is not a pinned image" in r.text and "dcloud image push" in r.text


def test_heartbeats_may_list_cached_renter_images(client):
    _register(client)
    hb = {
        "free": {"cpu": 8, "memory_mb": 16384, "gpu": 0, "disk_mb": 100_000},
        "images": ["busybox", DIGEST, "sha256:" + "cd" * 32],
    }
    r = client.post("/v1/providers/heartbeat", json=signed(NEAR, purposes.PROVIDER_HEARTBEAT, hb))
    assert r.status_code == 200, r.text
    listed = client.get(f"/v1/providers/{NEAR.address}").json()
    assert DIGEST in listed["images"]
    # Now both hold it: the nearer one wins, and nobody must pull.
    q = client.post("/v1/jobs/quote", json=_pinned(2 * 10**9)).json()
    assert [c["provider"] for c in q["candidates"]] == [NEAR.address]
    assert q["image_pull"] is None


def test_service_quote_and_deploy_say_whether_the_provider_must_pull(client):
    _register(client)
    small = service_spec("img-small", image=PINNED)
    small["image_bytes"] = 5 * 10**6
    q = client.post("/v1/services/quote", json=small).json()
    assert q["provider"] == NEAR.address
    assert q["image_pull"]["providers"] == [NEAR.address]
    large = service_spec("img-large", image=PINNED)
    large["image_bytes"] = 2 * 10**9
    q = client.post("/v1/services/quote", json=large).json()
    assert (q["provider"], q["image_pull"]) == (FAR.address, None)
    r = client.post("/v1/services", json=signed(account("svc-img"), purposes.SERVICE_DEPLOY, small))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "placed" and body["image_pull"]["seconds"] == 0.1
