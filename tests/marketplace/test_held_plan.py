"""Jobs that may wait: the marketplace plans their hour and place (marketplace/compute/held.py).

A real marketplace app on SQLite with the bundled price series; the planner's choice is
checked against a brute force over every candidate region and hour, priced hour by hour
from the price source itself."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.energy.plan import job_power_kw
from marketplace.energy.sources import BundledPriceSource
from marketplace.service import Service
from marketplace.settings import Settings
from marketplace.store.db import transaction
from marketplace.store.models import ProviderRow
from tests.marketplace.api.conftest import account, job_spec, registration, signed

SUBMIT, REGISTER = "dcloud/job.submit", "dcloud/provider.register"
# Frankfurt (the origin's own region), Madrid, Oslo: three price regions
SITES = {"fra": (50.11, 8.68), "mad": (40.42, -3.7), "osl": (59.91, 10.75)}
ORIGIN = SITES["fra"]


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'market.db'}", batch_window_ms=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        for name, (lat, lon) in SITES.items():
            body = registration(lat=lat, lon=lon, cpu=8)
            r = c.post("/v1/providers", json=signed(account(name), REGISTER, body))
            assert r.status_code == 201, r.text
        yield c


def spec(**extra: Any) -> dict[str, Any]:
    return {**job_spec(lat=ORIGIN[0], lon=ORIGIN[1], cpu=4, time_limit_s=5400), **extra}


def brute_cost(region: str, start: float, run_s: float, cpu: float) -> float:
    """EUR of a run from `start`, hour by hour from the bundled series."""
    source, cost, t = BundledPriceSource(), 0.0, start
    while t < start + run_s:
        hour_end = (math.floor(t / 3600) + 1) * 3600
        step = min(hour_end, start + run_s) - t
        price = source.price(region, datetime.fromtimestamp(t, UTC)).price
        cost += job_power_kw(cpu) * step / 3600 * price / 1000
        t += step
    return cost


def test_a_window_gets_the_cheapest_hour_and_place(client: TestClient) -> None:
    now = time.time()
    start_by = int(now + 10 * 3600)
    r = client.post("/v1/jobs/quote", json=spec(start_by=start_by))
    assert r.status_code == 200, r.text
    plan = r.json()["plan"]
    assert plan is not None and plan["basis"] == "price"
    regions = {"fra": "DE-FRA", "mad": "ES-MAD", "osl": "NO-OSL"}
    hours = [now] + [(math.floor(now / 3600) + h) * 3600 for h in range(1, 11)]
    options = [
        (brute_cost(reg, t, 5400, 4), t, reg)
        for reg in regions.values()
        for t in hours
        if t <= start_by
    ]
    best_cost, best_t, best_region = min(options)
    assert plan["region"] == best_region
    assert plan["cost_eur"] == pytest.approx(best_cost, rel=1e-6)
    assert abs(plan["start_at"] - best_t) < 2
    assert plan["cost_now_eur"] == pytest.approx(brute_cost("DE-FRA", now, 5400, 4), rel=1e-3)
    assert plan["saving_pct"] >= 0 and plan["co2_g"] is not None


def test_max_km_zero_keeps_the_job_at_the_nearest_provider(client: TestClient) -> None:
    r = client.post("/v1/jobs/quote", json=spec(start_by=int(time.time() + 6 * 3600), max_km=0))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"]["region"] == "DE-FRA" and body["plan"]["km_added"] == 0
    assert [c["provider"] for c in body["candidates"]] == [account("fra").address]


def test_a_held_job_is_matched_with_its_start_and_reserves_nothing_yet(
    client: TestClient,
) -> None:
    start_by = int(time.time() + 12 * 3600)
    r = client.post("/v1/jobs", json=signed(account("renter"), SUBMIT, spec(start_by=start_by)))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "matched" and job["plan"] is not None
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    chosen = job["assignments"][0]["provider"]
    with transaction(service.sessions) as session:
        row = session.get(ProviderRow, chosen)
        assert row is not None
        free = row.free_cpu
    if job["start_at"] is None:  # now was the cheapest: it starts now and holds its room
        assert free == 4
    else:
        assert time.time() < job["start_at"] <= start_by
        assert job["start_at"] % 3600 == 0
        assert free == 8  # nothing reserved before the start


def test_a_window_the_escrow_cannot_hold_is_refused(client: TestClient) -> None:
    too_far = int(time.time() + 3 * 86400)
    r = client.post("/v1/jobs/quote", json=spec(start_by=too_far))
    assert r.status_code == 422, r.text
    assert "at most 47 h" in r.text
    r = client.post("/v1/jobs", json=signed(account("renter"), SUBMIT, spec(start_by=too_far)))
    assert r.status_code == 422 and "start_by" in r.text


def test_jobs_without_a_window_have_no_plan(client: TestClient) -> None:
    r = client.post("/v1/jobs/quote", json=spec())
    assert r.status_code == 200 and r.json()["plan"] is None
