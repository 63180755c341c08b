"""A renter's whole job in the browser: submit, watch it run, download and verify, pay.

The network is the real thing: anvil with the contracts, the marketplace and a provider
agent as processes (agents.devnet.network, as `dcloud devnet` runs them), and the job in
a container on the real Docker engine.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from agents.devnet.network import Network as Devnet
from agents.devnet.network import ProviderSpec
from tests.dashboard.conftest import _wait_for_free_port
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

BUSYBOX = "dcloud/busybox:1"
RENTER = 7  # a funded dev account the devnet's providers do not use
JOB_S = 90_000  # ms: matching, two transactions, a container run, commit and reveal


@pytest.fixture(scope="module")
def devnet(docker_engine, job_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("devnet")
    _wait_for_free_port(CHAINS["anvil"]["port"])
    with running_chain("anvil") as url:
        deploy_contracts(CHAINS["anvil"]["network"], root / "deployments.json")
        net = Devnet(root=root, rpc_url=url, deployments=root / "deployments.json")
        try:
            net.start_marketplace()
            net.add_provider(ProviderSpec("p-frankfurt", 1, 50.11, 8.68))
            yield net
        finally:
            net.close()


@pytest.fixture
def dashboard_url(devnet):
    return f"{devnet.market_url}/dashboard"


def test_job_submitted_in_the_browser_runs_verifies_and_pays_the_provider(tab, devnet, tmp_path):
    page = tab.goto("/submit")
    renter = tab.connect_dev_account(RENTER)
    provider = devnet.providers[0]
    holdings_before = _holdings(devnet, provider.address)

    words = tmp_path / "words.txt"
    words.write_text("energy aware cloud\n")
    page.get_by_label("Image").fill(BUSYBOX)
    page.get_by_label("Command").fill(
        "sh -c 'tr a-z A-Z < /input/words.txt > /output/upper.txt; echo done'"
    )
    page.get_by_label("CPU cores").fill("0.5")
    page.get_by_label("Memory (MB)").fill("64")
    page.get_by_label("Disk (MB)").fill("16")
    page.get_by_label("Time limit (seconds)").fill("30")
    page.get_by_label("Files").set_input_files(words)
    expect(page.locator("#input-list")).to_contain_text("words.txt: 19 bytes")
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator(f"#quote tr[data-provider='{provider.address}']")).to_be_visible()
    page.get_by_role("button", name="Pay & run").click()

    page.wait_for_url(re.compile(r"/dashboard/jobs/[0-9a-f-]{36}$"), timeout=JOB_S)
    expect(page.locator("#job-status")).to_have_text(
        re.compile("funded|accepted|committed|revealed"), timeout=JOB_S
    )
    confirm = page.get_by_role("button", name="Confirm and pay")
    expect(confirm).to_be_visible(timeout=JOB_S)
    # a single replica's result stays off chain: committed, then checked by the renter
    expect(page.locator("#timeline [data-event='ResultCommitted']")).to_be_visible()
    expect(page.locator("#timeline [data-event='ResultRevealed']")).to_have_count(0)
    expect(page.locator("#provider-states [data-provider-state]")).to_have_attribute(
        "data-provider-state", "committed", timeout=JOB_S
    )

    page.get_by_role("button", name="Download and verify the result").click()
    expect(page.locator("#verify")).to_have_attribute("data-verdict", "verified", timeout=JOB_S)
    expect(page.locator("#logs")).to_contain_text("done")
    with page.expect_download() as download:
        page.locator("#files a[data-path='upper.txt']").click()
    assert download.value.suggested_filename == "upper.txt"
    assert download.value.path().read_text(encoding="utf-8") == "ENERGY AWARE CLOUD\n"
    assert tab.accessibility_problems() == []
    tab.screenshot("job-revealed")

    confirm.click()
    expect(page.locator("#job-status")).to_have_text("settled", timeout=JOB_S)
    expect(page.locator("#timeline [data-event='ReplicaPaid']")).to_be_visible()
    expect(page.locator("#timeline [data-event='JobSettled']")).to_be_visible()
    expect(page.locator("#escrow")).to_contain_text("you paid 0.000015 DCT (providers")
    assert _holdings(devnet, provider.address) > holdings_before
    tab.screenshot("job-settled")

    page.get_by_role("link", name="Your jobs").click()
    row = page.locator("#jobs-body tr").first
    expect(row).to_contain_text("settled")
    expect(page.locator("#jobs-scope")).to_contain_text(renter)
    tab.screenshot("jobs")


def _holdings(devnet, address):
    """Tokens held plus escrow credit (the agent withdraws its pay on its own schedule)."""
    return devnet.escrow.balance_of(address) + devnet.escrow.credit_of(address)
