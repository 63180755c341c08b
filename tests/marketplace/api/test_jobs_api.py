from __future__ import annotations

from tests.marketplace.api.conftest import account, job_spec, registration, signed

REGISTER, SUBMIT = "dcloud/provider.register", "dcloud/job.submit"


def _providers(client, n=3):
    spots = [(48.14, 11.58), (40.71, -74.0), (35.68, 139.69), (-33.87, 151.21)]
    out = []
    for i in range(n):
        p = account(f"prov{i}")
        lat, lon = spots[i % len(spots)]
        r = client.post("/v1/providers", json=signed(p, REGISTER, registration(lat=lat, lon=lon)))
        assert r.status_code == 201, r.text
        out.append(p)
    return out


def test_submitted_job_is_matched_with_endpoint_and_reasons(client):
    _providers(client)
    renter = account("renter")
    r = client.post("/v1/jobs", json=signed(renter, SUBMIT, job_spec()))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "matched"
    (a,) = job["assignments"]
    assert a["endpoint"].startswith("http://")
    assert a["distance_km"] >= 0 and 0 <= a["energy_level"] <= 9
    assert job["price_wei"] == a["cost_wei"] == 10**9 * 60
    assert client.get(f"/v1/jobs/{job['id']}").json()["id"] == job["id"]


def test_replicas_go_to_distinct_providers(client):
    _providers(client, 3)
    r = client.post("/v1/jobs", json=signed(account("r2"), SUBMIT, job_spec(replicas=3)))
    providers = [a["provider"] for a in r.json()["assignments"]]
    assert len(providers) == 3 == len(set(providers))


def test_job_nobody_can_run_is_unmatched_with_a_reason(client):
    _providers(client)
    r = client.post("/v1/jobs", json=signed(account("r3"), SUBMIT, job_spec(cpu=64)))
    assert r.status_code == 201
    assert r.json()["status"] == "unmatched"
    assert r.json()["reason"] == (
        "no online provider holding busybox has more than 8 CPU free (you asked 64 CPU)"
    )


def test_quote_does_not_record_a_job(client):
    _providers(client)
    q = client.post("/v1/jobs/quote", json=job_spec())
    assert q.status_code == 200, q.text
    assert q.json()["price_wei"] == 10**9 * 60
    assert client.get("/v1/jobs").json()["total"] == 0


def test_capacity_is_reserved_between_batches(client):
    (_p,) = _providers(client, 1)  # 8 CPU
    renter = account("r4")
    statuses = [
        client.post("/v1/jobs", json=signed(renter, SUBMIT, job_spec(cpu=3))).json()["status"]
        for _ in range(3)
    ]
    assert statuses == ["matched", "matched", "unmatched"]


def test_bad_spec_gets_a_422_naming_the_field(client):
    spec = job_spec()
    spec["resources"]["cpu"] = 0
    r = client.post("/v1/jobs", json=signed(account("r5"), SUBMIT, spec))
    assert r.status_code == 422
    assert "cpu" in r.text


def test_list_filters_by_renter(client):
    _providers(client)
    a, b = account("ra"), account("rb")
    client.post("/v1/jobs", json=signed(a, SUBMIT, job_spec()))
    client.post("/v1/jobs", json=signed(b, SUBMIT, job_spec()))
    listed = client.get("/v1/jobs", params={"renter": a.address}).json()
    assert listed["total"] == 1 and listed["items"][0]["renter"] == a.address


def test_unknown_job_is_404(client):
    assert client.get("/v1/jobs/nope").status_code == 404


def test_region_preference_ranks_providers_there_first(client):
    _providers(client, 3)  # Munich, New York, Tokyo
    tokyo = client.get("/v1/providers", params={"limit": 10}).json()["items"]
    region = next(p["region"] for p in tokyo if p["location"]["lon"] > 100)
    spec = job_spec(lat=48.1, lon=11.6)  # origin Munich: nearest is Munich
    spec["regions"] = [region]
    job = client.post("/v1/jobs", json=signed(account("rr"), SUBMIT, spec)).json()
    assert job["status"] == "matched"
    chosen = client.get(f"/v1/providers/{job['assignments'][0]['provider']}").json()
    assert chosen["region"] == region


def test_unknown_preferred_region_is_a_422_listing_known_ones(client):
    spec = job_spec()
    spec["regions"] = ["ATLANTIS"]
    r = client.post("/v1/jobs", json=signed(account("rx"), SUBMIT, spec))
    assert r.status_code == 422
    assert "use some of" in r.json()["detail"]
