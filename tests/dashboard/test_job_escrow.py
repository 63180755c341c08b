"""Paying for a job through the page, and the escrow buttons its state allows.

The provider here is registered and staked but its endpoint answers nothing, so the job
is funded on chain and never accepted: the page must say so and offer the cancel that
refunds the renter in full.
"""

from __future__ import annotations

import re

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from playwright.sync_api import expect

from tests.dashboard.conftest import PROVIDER_KEYS

pytestmark = pytest.mark.integration

TOKEN = 10**18


@pytest.fixture(scope="module")
def provider(network):
    return network.add_provider(PROVIDER_KEYS[1], lat=48.9, lon=2.3, price_wei=10**12)


def test_pay_funds_the_escrow_and_cancel_refunds_in_full(tab, network, provider):
    tab.allow(r"Failed to load resource: net::ERR_CONNECTION_REFUSED")
    page = tab.goto("/submit")
    renter = tab.connect_dev_account(8)
    token, escrow = network.contract("ComputeToken"), network.contract("JobEscrow")
    before = token.functions.balanceOf(renter).call()

    page.get_by_label("Replicas").fill("1")
    page.get_by_role("button", name="Pay & run").click()
    expect(page.locator("#step-fund")).to_have_class("done")
    expect(page.locator("#step-push")).to_have_class("failed")
    expect(page.locator("#step-push")).to_contain_text("cannot be reached")
    expect(page.locator("#progress-result")).to_contain_text("paid for but not every provider")

    # 10^12 wei per CPU-second x 1 CPU x 60 s, deposited on chain for the named provider
    price = 60 * 10**12
    job_id = escrow.functions.jobCount().call()
    job = escrow.functions.getJob(job_id).call()
    assert job[0] == renter and job[1] == price
    assert escrow.functions.getReplica(job_id, 0).call()[0] == provider.address
    assert token.functions.balanceOf(renter).call() == before - price

    page.locator("#job-link").click()
    expect(page.locator("#job-status")).to_have_text("funded")
    expect(page.locator("#escrow")).to_contain_text(f"#{job_id}")
    expect(page.locator("#timeline [data-event='JobFunded']")).to_be_visible()
    expect(page.locator("#job-state")).to_contain_text("Waiting for 1 provider(s) to accept")
    assert tab.accessibility_problems() == []
    tab.screenshot("job-funded")
    cancel = page.get_by_role("button", name="Cancel for a refund")
    expect(cancel).to_be_visible()
    cancel.click()

    expect(page.locator("#job-status")).to_have_text("cancelled")
    expect(page.locator("#timeline [data-event='JobCancelled']")).to_contain_text("refunded")
    expect(page.get_by_role("button", name="Cancel for a refund")).to_have_count(0)
    assert escrow.functions.creditOf(renter).call() == price
    expect(page.locator("#wallet-credit")).to_have_text(re.compile(r"0\.00006 DCT"))
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#credit-box")).to_be_hidden()
    assert token.functions.balanceOf(renter).call() == before


def _pay_through_the_page(tab, renter_index):
    """Submit the default job and pay for it; the push fails (nobody listens). Job id."""
    tab.allow(r"Failed to load resource: net::ERR_CONNECTION_REFUSED")
    page = tab.goto("/submit")
    tab.connect_dev_account(renter_index)
    page.get_by_role("button", name="Pay & run").click()
    expect(page.locator("#step-fund")).to_have_class("done")
    text = page.locator("#step-fund").inner_text()
    job_id = int(re.search(r"escrow job #(\d+)", text).group(1))
    page.locator("#job-link").click()
    expect(page.locator("#job-status")).to_have_text("funded")
    return job_id


def _time_travel(network, seconds):
    network.w3.provider.make_request("evm_increaseTime", [seconds])
    network.w3.provider.make_request("evm_mine", [])


def test_a_no_show_is_claimed_from_the_page_and_slashed_to_the_renter(tab, network, provider):
    escrow = network.contract("JobEscrow")
    job_id = _pay_through_the_page(tab, 9)
    page = tab.page
    network.transact(escrow.functions.accept(job_id), provider.address)
    expect(page.locator("#job-status")).to_have_text("accepted")
    expect(page.get_by_role("button", name="Cancel for a refund")).to_have_count(0)

    deadline = escrow.functions.getJob(job_id).call()[3]
    now = network.w3.eth.get_block("latest")["timestamp"]
    _time_travel(network, deadline - now + 1)
    expect(page.locator("#job-state")).to_contain_text("a no-show can be claimed")
    token = network.contract("ComputeToken")
    renter, price, collateral = (escrow.functions.getJob(job_id).call()[i] for i in (0, 1, 11))
    held = token.functions.balanceOf(renter).call()
    page.get_by_role("button", name="Claim no-show").click()

    expect(page.locator("#job-status")).to_have_text("settled")
    expect(page.locator("#timeline [data-event='ReplicaSlashed']")).to_contain_text("Slashed")
    # the deposit is credited back; the slashed collateral, less the treasury's share, is
    # paid to the renter straight from the provider's stake
    assert escrow.functions.creditOf(renter).call() == price
    share = network.deployment.parameters["slash_treasury_bps"]
    gained = token.functions.balanceOf(renter).call() - held
    assert gained == collateral - collateral * share // 10_000


@pytest.fixture(scope="module")
def verifiers(network, provider):
    """Two more staked providers near the first, for the marketplace to draw from (and
    to match: the original is whichever of the three the marketplace chose)."""
    return [
        network.add_provider(PROVIDER_KEYS[2], lat=49.0, lon=2.4, price_wei=10**12),
        network.add_provider(PROVIDER_KEYS[3], lat=48.8, lon=2.2, price_wei=10**12),
    ]


def test_a_committed_result_can_be_disputed_from_the_page(tab, network, provider, verifiers):
    escrow = network.contract("JobEscrow")
    job_id = _pay_through_the_page(tab, 5)  # a renter that is none of the providers
    page = tab.page
    named = escrow.functions.getReplica(job_id, 0).call()[0]
    original = next(p for p in (provider, *verifiers) if p.address == named)
    result, salt = b"\x11" * 32, b"\x22" * 32
    types = ["bytes32", "bytes32", "address"]
    commitment = keccak(abi_encode(types, [result, salt, original.address]))
    for call in (escrow.functions.accept(job_id), escrow.functions.commit(job_id, commitment)):
        network.transact(call, original.address)
    # a single replica's result stays off chain: nothing for a verifier to copy
    assert escrow.functions.getReplica(job_id, 0).call()[2] == commitment
    expect(page.locator("#job-state")).to_contain_text("committed its result")
    expect(page.get_by_role("button", name="Confirm and pay")).to_be_visible()
    page.get_by_role("button", name="Dispute the result").click()
    # the verifiers' endpoints here answer nothing: the dispute stands, the push fails
    expect(page.locator("#notice")).to_contain_text("cannot be reached")
    expect(page.locator("#job-status")).to_have_text("disputed")
    expect(page.locator("#timeline [data-event='JobDisputed']")).to_contain_text("bond")
    assert escrow.functions.getJob(job_id).call()[5] == 3  # now a 3-replica job
    # the verifiers are the marketplace's random draw among registered providers, never
    # the original or the renter
    drawn = {escrow.functions.getReplica(job_id, slot).call()[0] for slot in (1, 2)}
    renter = escrow.functions.getJob(job_id).call()[0]
    assert len(drawn) == 2 and drawn <= set(network.registered)
    assert original.address not in drawn and renter not in drawn
