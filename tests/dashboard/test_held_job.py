"""Jobs that may wait, in the browser: a start window's plan in the estimate, a job funded
held (JobEscrow.fundAt) until the planned hour, and its cancel with a full refund.

The marketplace plans with the bundled price series at the real clock, so the provider
sits in a region whose coming hours (within the window) hold an hour clearly cheaper than
the current one: the plan then starts later whatever the time of the run. Its endpoint
answers nothing, so nobody ever accepts and the job stays held.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from marketplace.energy.sources import BundledPriceSource, Region, forecast
from protocol.schemas import JobSpec, spec_hash
from tests.dashboard.conftest import PROVIDER_KEYS

pytestmark = pytest.mark.integration

WINDOW_H = 40
PRICE_WEI = 10**12  # per CPU-second: the default job (1 CPU, 60 s) costs 6e13 wei
CANCELLED = 4  # JobEscrow's JobStatus.Cancelled
REFUSED = r"Failed to load resource: net::ERR_CONNECTION_REFUSED"


def _region_with_a_cheaper_later_hour() -> Region:
    """A bundled region whose cheapest hour in the window is >= 10% below this hour's."""
    source = BundledPriceSource()
    now = datetime.now(UTC)
    for region in source.regions():
        fc = forecast(source, [region.id], now, WINDOW_H)
        prices = fc.price[0]
        if len(prices) > 2 and min(prices[1:]) < 0.9 * prices[0]:
            return region
    raise AssertionError("no bundled region has an hour 10% cheaper than now in the window")


@pytest.fixture(scope="module")
def site(network):
    region = _region_with_a_cheaper_later_hour()
    network.add_provider(
        PROVIDER_KEYS[0], lat=region.lat, lon=region.lon, price_wei=PRICE_WEI, region=region.id
    )
    return region


def _fill_window(page, site, start_by=f"+{WINDOW_H}h"):
    page.get_by_label("Latitude").fill(str(site.lat))
    page.get_by_label("Longitude").fill(str(site.lon))
    page.get_by_label("Start by").fill(start_by)


def test_the_page_hashes_specs_with_and_without_a_window_as_python_does(tab, network):
    page = tab.goto("/submit")
    base = {
        "image": "busybox",
        "command": ["sh", "-c", "echo hi"],
        "resources": {"cpu": 0.5, "memory_mb": 64},
        "time_limit_s": 60,
        "max_price_wei": str(10**18),
        "origin": {"lat": 50.11, "lon": 8.68},
    }
    variants = [
        {},
        {"start_by": 1_800_000_000},
        {"max_km": 500},
        {"max_km": 0.1},
        {"start_by": 1_800_000_000, "max_km": 1234.5},
        {"start_by": None, "max_km": None},
        {"image_bytes": 5_000_000},
    ]
    for extra in variants:
        spec = {**base, **extra}
        in_page = page.evaluate(
            """async (spec) => {
              const p = await import("/dashboard/static/js/protocol.js");
              return p.specHash(spec);
            }""",
            spec,
        )
        assert in_page == spec_hash(JobSpec.model_validate(spec)), extra
    plain = spec_hash(JobSpec.model_validate(base))
    assert spec_hash(JobSpec.model_validate({**base, "start_by": None})) == plain


def test_a_bad_window_is_explained_at_its_fields(tab, network):
    page = tab.goto("/submit")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/v1/jobs" in r.url else None)
    page.get_by_label("Start by").fill("+60h")
    page.get_by_label("Max km for energy").fill("-5")
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("#start_by-error")).to_contain_text("at most 47 h")
    expect(page.locator("#max_km-error")).to_have_text("Max km for energy must be at least 0")
    page.get_by_label("Start by").fill("tomorrow")
    page.get_by_label("Max km for energy").fill("")
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("#start_by-error")).to_contain_text("is not a start; write +6h")
    expect(page.locator("#max_km-error")).to_have_text("")
    assert sent == []


def test_estimate_with_a_start_window_shows_the_planned_hour_place_and_saving(tab, site):
    page = tab.goto("/submit")
    _fill_window(page, site)
    page.get_by_label("Max km for energy").fill("300")
    page.get_by_role("button", name="Estimate").click()
    plan = page.locator("#quote-plan")
    expect(plan).to_be_visible()
    expect(page.locator("#quote-plan-lead")).to_contain_text("would hold the job and start it at")
    expect(plan.locator("[data-plan='start']")).to_have_text(
        re.compile(r"^\d\d:\d\d local time \(in (\d+ h)?( ?\d+ min)?\)$")
    )
    expect(plan.locator("[data-plan='region']")).to_have_text(site.id)
    expect(plan.locator("[data-plan='saving']")).to_have_text(re.compile(r"^[1-9]\d* % saved$"))
    expect(plan.locator("[data-plan='km']")).to_have_text("0 km added")
    expect(plan.locator("[data-plan='co2']")).to_contain_text(" vs ")
    expect(page.locator("#quote-cost")).to_contain_text("0.00006 DCT")
    assert tab.accessibility_problems() == []
    tab.screenshot("submit-plan")


def _pay_held(tab, network, site, renter_index):
    """Pay for the default job with a window; the push fails (nobody listens)."""
    tab.allow(REFUSED)
    page = tab.goto("/submit")
    renter = tab.connect_dev_account(renter_index)
    _fill_window(page, site)
    page.get_by_role("button", name="Pay & run").click()
    expect(page.locator("#step-fund")).to_have_class("done", timeout=30_000)
    expect(page.locator("#step-fund")).to_contain_text(re.compile(r"held until \d\d:\d\d \(in "))
    expect(page.locator("#step-push")).to_have_class("failed")
    expect(page.locator("#held-note")).to_contain_text("held until")
    escrow = network.contract("JobEscrow")
    job_id = escrow.functions.jobCount().call()
    assert escrow.functions.getJob(job_id).call()[0] == renter
    return renter, job_id


def test_a_held_job_shows_until_when_and_cancels_with_a_full_refund(tab, network, site):
    token, escrow = network.contract("ComputeToken"), network.contract("JobEscrow")
    dev8 = network.w3.eth.accounts[8]
    before = token.functions.balanceOf(dev8).call()
    renter, job_id = _pay_held(tab, network, site, 8)
    assert renter == dev8
    page = tab.page
    price = 60 * PRICE_WEI
    assert token.functions.balanceOf(renter).call() == before - price
    # funded held: no provider may accept before the planned start, an hour or more ahead
    chain_now = network.w3.eth.get_block("latest")["timestamp"]
    starts = escrow.functions.startsAt(job_id).call()
    assert chain_now + 3000 < starts <= time.time() + WINDOW_H * 3600
    held = escrow.events.JobHeld().get_logs(from_block=0)
    assert [(e.args.jobId, e.args.startAt) for e in held] == [(job_id, starts)]

    page.locator("#job-link").click()
    expect(page.locator("#job-status")).to_have_text("funded")
    expect(page.locator("#job-state")).to_contain_text(re.compile(r"^Held until \d\d:\d\d \(in "))
    expect(page.locator("#held-until")).to_contain_text("The job is held until")
    expect(page.locator("#timeline [data-event='JobHeld']")).to_contain_text(
        "no provider may accept"
    )
    expect(page.locator("#job-plan [data-plan='region']")).to_have_text(site.id)
    expect(page.locator("#job-plan [data-plan='saving']")).to_contain_text("% saved")
    assert tab.accessibility_problems() == []
    tab.screenshot("job-held")

    page.get_by_role("button", name="Cancel for a refund").click()
    expect(page.locator("#job-status")).to_have_text("cancelled")
    expect(page.locator("#timeline [data-event='JobCancelled']")).to_contain_text("refunded")
    expect(page.locator("#held-until")).to_have_count(0)
    assert escrow.functions.getJob(job_id).call()[9] == CANCELLED
    assert escrow.functions.creditOf(renter).call() == price
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#credit-box")).to_be_hidden()
    assert token.functions.balanceOf(renter).call() == before


def test_a_held_job_can_be_cancelled_from_the_submit_page(tab, network, site):
    escrow = network.contract("JobEscrow")
    renter, job_id = _pay_held(tab, network, site, 9)
    tab.page.get_by_role("button", name="Cancel for a full refund").click()
    expect(tab.page.locator("#held-note")).to_contain_text(
        "Cancelled: 0.00006 DCT is credited back"
    )
    assert escrow.functions.getJob(job_id).call()[9] == CANCELLED
    assert escrow.functions.creditOf(renter).call() == 60 * PRICE_WEI
