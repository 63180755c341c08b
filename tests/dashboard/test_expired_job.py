"""A matched job nobody funded in time shows as expired in the jobs list and on its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from marketplace.app import create_app
from marketplace.settings import Settings
from marketplace.store.db import make_engine, session_factory, transaction
from marketplace.store.models import JobRow, ProviderRow
from tests.dashboard.conftest import ServerThread, free_port
from tests.marketplace.api.conftest import account, job_spec, registration, signed

EXPIRES_S = 600


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A marketplace without a chain (nothing can be funded), on a database we can age."""
    db = tmp_path_factory.mktemp("expired") / "market.db"
    settings = Settings(database_url=f"sqlite:///{db}", batch_window_ms=0, offline_after_s=10**7)
    server = ServerThread(create_app(settings), free_port())
    server.start()
    try:
        yield server.url, db
    finally:
        server.stop()


@pytest.fixture
def dashboard_url(market: tuple[str, Path]) -> str:
    return market[0]


def _expired_job(url: str, db: Path) -> str:
    """Submit a job, then move its match (and the provider's heartbeat) past the expiry."""
    provider = account("expired-dashboard-provider")
    body = registration(lat=48.1, lon=11.6)
    r = httpx.post(f"{url}/v1/providers", json=signed(provider, "dcloud/provider.register", body))
    assert r.status_code == 201, r.text
    spec = job_spec()
    r = httpx.post(f"{url}/v1/jobs", json=signed(account("r"), "dcloud/job.submit", spec))
    assert r.json()["status"] == "matched", r.text
    job_id = str(r.json()["id"])
    engine = make_engine(f"sqlite:///{db}")
    with transaction(session_factory(engine)) as session:
        job, row = session.get(JobRow, job_id), session.get(ProviderRow, provider.address)
        assert job is not None and job.matched_at is not None and row is not None
        job.matched_at -= EXPIRES_S + 1
        row.last_heartbeat_at -= EXPIRES_S + 1
    engine.dispose()
    return job_id


def test_an_unfunded_match_shows_as_expired(tab, market):
    job_id = _expired_job(*market)
    page = tab.goto("/dashboard/jobs")
    expect(page.locator(f'tr[data-job="{job_id}"] .badge')).to_have_text("expired")
    page = tab.goto(f"/dashboard/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("expired")
    expect(page.locator("#job-state")).to_contain_text("not funded within 600 s of matching")
