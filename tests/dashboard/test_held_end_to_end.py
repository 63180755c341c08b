"""A held job from the browser to its pay: planned for a later hour, funded held, pushed to
a real provider agent, started when the chain's clock reaches the hour, verified, paid.

anvil, the marketplace on a price series with one hour two hours ahead far cheaper than
every other (so the plan is known whatever the time of the run), one provider agent and
the job in a container on the real Docker engine (agents.devnet.network).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from agents.devnet.network import Network as Devnet
from agents.devnet.network import ProviderSpec
from marketplace.energy.sources import HOUR, floor_hour
from protocol.escrow import JobStatus
from tests.dashboard.conftest import _wait_for_free_port
from tests.integration.chains import CHAINS, deploy_contracts, running_chain
from tests.integration.test_held_jobs import cheap_hour_series

pytestmark = pytest.mark.integration

BUSYBOX = "dcloud/busybox:1"
RENTER = 6  # a funded dev account the devnet's providers do not use
JOB_S = 90_000  # ms: a container run, commit


@pytest.fixture(scope="module")
def devnet(docker_engine, job_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("held-devnet")
    cheap = floor_hour(datetime.now(UTC)) + 2 * HOUR
    series = cheap_hour_series(Path(tmp_path_factory.mktemp("series")), cheap)
    _wait_for_free_port(CHAINS["anvil"]["port"])
    with running_chain("anvil") as url:
        deploy_contracts(CHAINS["anvil"]["network"], root / "deployments.json")
        net = Devnet(
            root=root,
            rpc_url=url,
            deployments=root / "deployments.json",
            market_env={"DCLOUD_ENERGY_SERIES_DIR": str(series)},
        )
        try:
            net.start_marketplace()
            net.add_provider(ProviderSpec("p-frankfurt", 1, 50.11, 8.68))
            net.cheap_hour = int(cheap.timestamp())  # type: ignore[attr-defined]
            yield net
        finally:
            net.close()


@pytest.fixture
def dashboard_url(devnet):
    return f"{devnet.market_url}/dashboard"


def test_a_held_job_waits_for_its_hour_then_runs_and_pays(tab, devnet):
    page = tab.goto("/submit")
    tab.connect_dev_account(RENTER)
    page.get_by_label("Image").fill(BUSYBOX)
    page.get_by_label("Command").fill("sh -c 'echo held > /output/word.txt; echo ran'")
    page.get_by_label("CPU cores").fill("0.5")
    page.get_by_label("Memory (MB)").fill("64")
    page.get_by_label("Disk (MB)").fill("16")
    page.get_by_label("Time limit (seconds)").fill("30")
    page.get_by_label("Start by").fill("+4h")
    page.get_by_role("button", name="Estimate").click()
    # the cheap hour starts between one and two hours from now
    start = page.locator("#quote-plan [data-plan='start']")
    expect(start).to_contain_text(re.compile(r"local time \(in [12] h"))
    page.get_by_role("button", name="Pay & run").click()

    expect(page.locator("#step-push")).to_have_class("done", timeout=JOB_S)
    expect(page.locator("#held-note")).to_contain_text("held until")
    escrow = devnet.escrow
    job_id = escrow.contract.functions.jobCount().call()
    assert escrow.contract.functions.startsAt(job_id).call() == devnet.cheap_hour
    page.locator("#job-link").click()
    expect(page.locator("#job-state")).to_contain_text(re.compile(r"^Held until \d\d:\d\d"))
    expect(page.locator("#job-plan [data-plan='saving']")).to_contain_text("% saved")
    assert escrow.job(job_id).accepted == 0

    # The chain's clock reaches the planned hour: the provider accepts, runs and commits.
    devnet.time_travel(devnet.cheap_hour - escrow.now() + 1)
    confirm = page.get_by_role("button", name="Confirm and pay")
    expect(confirm).to_be_visible(timeout=JOB_S)
    expect(page.locator("#held-until")).to_have_count(0)
    page.get_by_role("button", name="Download and verify the result").click()
    expect(page.locator("#verify")).to_have_attribute("data-verdict", "verified", timeout=JOB_S)
    expect(page.locator("#logs")).to_contain_text("ran")
    confirm.click()
    expect(page.locator("#job-status")).to_have_text("settled", timeout=JOB_S)
    assert escrow.job(job_id).status == JobStatus.SETTLED
