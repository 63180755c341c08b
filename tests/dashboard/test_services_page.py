"""The services page against a real chain and marketplace: the deploy form's checks, the
estimate, the refusals that move no money, a deploy whose provider cannot be reached
(its lease closed and the deposit refunded), and the list, top-up and stop of a lease
opened on chain.

The provider here is registered and staked, but no agent answers at its endpoint; the
lease of the list test is accepted on chain with the provider's key and its service is
reported by that key to the marketplace, with a real HTTP server standing in for the
container, so the marketplace's prober finds it healthy and reports it serving.
"""

from __future__ import annotations

import http.server
import re
import threading

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import expect

from agents.devnet.network import dev_account
from protocol.leases import EndReason, Leases, LeaseStatus
from protocol.services import ServiceSpec, service_spec_hash
from tests.dashboard.conftest import PROVIDER_KEYS, free_port
from tests.marketplace.api.conftest import signed

pytestmark = pytest.mark.integration

TOKEN = 10**18
IMAGE = "dcloud/python:3.11"
PRICE = 10**12  # wei per CPU-second: 0.5 CPU is 5e11 wei/s, 0.0018 DCT an hour
RATE = PRICE // 2
HOUR = 3600


@pytest.fixture(scope="module")
def provider(network):
    """A staked provider near Frankfurt offering the python image (nobody answers at its
    endpoint)."""
    return network.add_provider(
        PROVIDER_KEYS[0], lat=50.1, lon=8.7, price_wei=PRICE, images=(IMAGE, "busybox")
    )


@pytest.fixture(scope="module")
def leases(network):
    return Leases(network.w3, network.deployment)


def fill(page, **fields):
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)


def open_form(tab, renter_index):
    page = tab.goto("/services")
    address = tab.connect_dev_account(renter_index)
    page.locator("body[data-choices='ready']").wait_for(state="attached")
    return page, address


def holdings(network, address):
    token = network.contract("ComputeToken")
    escrow = network.contract("LeaseEscrow")
    return (
        token.functions.balanceOf(address).call(),
        escrow.functions.creditOf(address).call(),
    )


def test_bad_input_is_explained_at_each_field_before_any_request(tab, provider):
    page, _ = open_form(tab, 3)
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/v1/services" in r.url else None)
    fill(page, Name="Bad_Name", Port="70000", **{"CPU cores": "0"})
    page.get_by_label("Max rate (DCT per hour)", exact=True).fill("lots")
    page.get_by_label("Environment").fill("1BAD=x")
    page.get_by_role("button", name="Estimate").click()

    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#name-error")).to_contain_text("lower-case letters, digits and hyphens")
    expect(page.locator("#port-error")).to_have_text("The port must be at most 65535")
    expect(page.locator("#cpu-error")).to_have_text("CPU cores must be more than 0")
    expect(page.locator("#max_rate-error")).to_contain_text("decimal number of DCT")
    expect(page.locator("#env-error")).to_contain_text("is not NAME=value")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-list li")).to_have_count(5)
    assert sent == []


def test_estimate_shows_provider_distance_energy_rate_and_how_long_the_deposit_lasts(tab, provider):
    page, _ = open_form(tab, 3)
    expect(page.get_by_label("Image")).to_have_value(IMAGE)
    fill(page, Name="web-estimate")
    page.get_by_label("Deposit (DCT)", exact=True).fill("0.0045")
    page.get_by_label("City").select_option(label="Paris (FR)")
    page.get_by_role("button", name="Estimate").click()

    expect(page.locator("#quote-provider")).to_contain_text(provider.address[:6])
    expect(page.locator("#quote-distance")).to_contain_text(re.compile(r"^\d+ km from your origin"))
    expect(page.locator("#quote-energy")).to_contain_text(re.compile(r"^\d on a scale of 0"))
    expect(page.locator("#quote-rate")).to_contain_text("0.0018 DCT/h")
    expect(page.locator("#quote-lasts")).to_contain_text("0.0045 DCT lasts 2 h 30 min")
    assert tab.accessibility_problems() == []
    tab.screenshot("services-estimate")


def test_a_name_another_renter_owns_is_refused_at_the_name_with_no_money_moved(
    tab, network, provider, leases
):
    other = dev_account(4)
    spec = _spec("taken-name")
    r = httpx.post(
        f"{network.url}/v1/services",
        json=signed(other, "dcloud/service.deploy", spec.model_dump(mode="json")),
    )
    assert r.status_code == 201, r.text
    page, renter = open_form(tab, 3)
    before, count = holdings(network, renter), leases.lease_count()
    fill(page, Name="taken-name")
    page.get_by_role("button", name="Deploy").click()

    expect(page.locator("#name-error")).to_contain_text("The name taken-name is taken")
    expect(page.locator("#step-check")).to_have_class("failed")
    assert holdings(network, renter) == before and leases.lease_count() == count


def test_a_deposit_under_the_minimum_is_refused_with_the_minimum(tab, network, provider, leases):
    page, renter = open_form(tab, 3)
    before, count = holdings(network, renter), leases.lease_count()
    fill(page, Name="small-deposit")
    page.get_by_label("Deposit (DCT)", exact=True).fill("0.00001")
    page.get_by_role("button", name="Deploy").click()

    # the least deposit is 60 s of 5e11 wei/s: 0.00003 DCT
    expect(page.locator("#deposit-error")).to_contain_text(
        "below this service's minimum of 0.00003 DCT (60 s at 0.0018 DCT/h)"
    )
    assert holdings(network, renter) == before and leases.lease_count() == count


def test_a_max_rate_under_every_ask_is_refused_at_the_max_rate(tab, network, provider, leases):
    page, renter = open_form(tab, 3)
    before, count = holdings(network, renter), leases.lease_count()
    fill(page, Name="too-cheap")
    page.get_by_label("Max rate (DCT per hour)", exact=True).fill("0.001")
    page.get_by_role("button", name="Deploy").click()

    expect(page.locator("#max_rate-error")).to_contain_text("No provider can run too-cheap")
    expect(page.locator("#max_rate-error")).to_contain_text("max rate")
    assert holdings(network, renter) == before and leases.lease_count() == count
    tab.screenshot("services-errors")


def test_a_provider_that_cannot_be_reached_gets_the_lease_closed_and_the_deposit_back(
    tab, network, provider, leases
):
    tab.allow(r"Failed to load resource: net::ERR_CONNECTION_REFUSED")
    page, renter = open_form(tab, 5)
    before = holdings(network, renter)
    count = leases.lease_count()
    fill(page, Name="unreachable")
    page.get_by_label("Deposit (DCT)", exact=True).fill("0.01")
    page.get_by_role("button", name="Deploy").click()

    expect(page.locator("#step-lease")).to_have_class("done")
    expect(page.locator("#step-push")).to_have_class("failed")
    expect(page.locator("#step-push")).to_contain_text("cannot be reached")
    expect(page.locator("#step-push")).to_contain_text("was closed: 0.01 DCT came back")
    # opened with a permit for exactly the deposit, for the placed provider, then cancelled
    lease = leases.lease(count + 1)
    assert lease.renter == renter and lease.provider == provider.address
    assert lease.deposit == 10**16 and lease.rate_per_second == RATE
    assert lease.reason == EndReason.CANCELLED_BEFORE_ACCEPT
    assert holdings(network, renter) == before


def _spec(name: str) -> ServiceSpec:
    """The page's defaults: python's web server on 8000, 0.5 CPU, up to 1 DCT an hour."""
    return ServiceSpec.model_validate(
        {
            "name": name,
            "image": IMAGE,
            "command": ["python3", "-m", "http.server", "8000"],
            "port": 8000,
            "resources": {"cpu": 0.5, "memory_mb": 128, "disk_mb": 16},
            "max_rate_wei_per_s": TOKEN // 3600,
            "origin": {"lat": 50.11, "lon": 8.68},
        }
    )


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from a service\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_server():
    """A real HTTP server where the service's published port would be."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_list_shows_a_running_lease_and_tops_it_up_and_stops_it(
    tab, network, provider, leases, web_server
):
    renter = dev_account(6)
    spec = _spec("hello-web")
    placed = httpx.post(
        f"{network.url}/v1/services",
        json=signed(renter, "dcloud/service.deploy", spec.model_dump(mode="json")),
    )
    assert placed.status_code == 201 and placed.json()["status"] == "placed", placed.text
    assert placed.json()["rate_wei_per_s"] == RATE
    deposit = RATE * 4 * HOUR
    escrow, token = leases.contract, network.contract("ComputeToken")
    network.transact(token.functions.approve(escrow.address, deposit), renter.address)
    network.transact(
        escrow.functions.open(
            provider.address, RATE, deposit, bytes.fromhex(service_spec_hash(spec)[2:])
        ),
        renter.address,
    )
    lease_id = leases.lease_count()
    network.transact(escrow.functions.accept(lease_id), provider.address)
    _report(network, provider, lease_id, web_server)

    page, _ = open_form(tab, 6)
    row = page.locator("tr[data-service='hello-web']")
    expect(row).to_have_attribute("data-health", "healthy")
    expect(row.locator("a.service-url")).to_have_text("http://hello-web.apps.localhost:8780/")
    expect(row).to_contain_text("0.0018 DCT/h")
    expect(row.locator("[data-cell='runs-out']")).to_have_text(re.compile(r"^in (3 h 59 min|4 h)$"))
    # the marketplace's prober found it answering and reported it serving on chain
    expect(row).not_to_contain_text("cannot reach")
    expect(row).to_have_attribute("data-serving", "true", timeout=30_000)
    assert leases.lease(lease_id).serving_at > 0
    _time_travel(network, 40 * 60)
    expect(row.locator("[data-cell='runs-out']")).to_have_text(re.compile(r"^in 3 h (19|20) min$"))
    expect(row.locator("[data-cell='spent']")).not_to_have_text("0 DCT")
    assert tab.accessibility_problems() == []
    tab.screenshot("services-list")

    # top up by an hour, confirmed in the dialog
    row.get_by_role("button", name="Top up hello-web").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("costs 0.0018 DCT/h")
    expect(page.get_by_label("Add to the deposit (DCT)")).to_have_value("0.0018")
    assert tab.accessibility_problems() == []
    page.get_by_label("Add to the deposit (DCT)").fill("0")
    dialog.get_by_role("button", name="Add to the deposit").click()
    expect(page.locator("#topup-amount-error")).to_have_text(
        "Enter a positive amount of DCT, e.g. 0.5"
    )
    page.get_by_label("Add to the deposit (DCT)").fill("0.0018")
    dialog.get_by_role("button", name="Add to the deposit").click()
    expect(page.locator("#topup-result")).to_contain_text(
        "Added 0.0018 DCT to hello-web: the deposit is now 0.009 DCT"
    )
    assert leases.lease(lease_id).deposit == deposit + RATE * HOUR
    expect(row.locator("[data-cell='runs-out']")).to_have_text(re.compile(r"^in 4 h (19|20) min$"))

    # stop: cancelled once, then confirmed
    row.get_by_role("button", name="Stop hello-web").click()
    expect(dialog).to_contain_text("the rest of the deposit")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert leases.lease(lease_id).status == LeaseStatus.RUNNING
    tokens_before = token.functions.balanceOf(renter.address).call()
    row.get_by_role("button", name="Stop hello-web").click()
    dialog.get_by_role("button", name="Stop hello-web").click()
    expect(page.locator("#stop-result")).to_contain_text("Stopped hello-web: lease")
    expect(page.locator("#stop-result")).to_contain_text("closed by you")
    lease = leases.lease(lease_id)
    assert lease.status == LeaseStatus.ENDED and lease.reason == EndReason.CLOSED_BY_RENTER
    refund = lease.deposit - lease.paid
    expect(page.locator("#stop-result")).to_contain_text("withdrawn to your wallet")
    assert token.functions.balanceOf(renter.address).call() == tokens_before + refund
    expect(row).to_have_attribute("data-health", "ended")
    expect(row.get_by_role("button")).to_have_count(0)
    tab.screenshot("services-stopped")


def _report(network, provider, lease_id: int, port: int) -> None:
    """The provider's signed report: healthy, published at `port`."""
    acct = Account.from_key(PROVIDER_KEYS[0])
    assert acct.address == provider.address
    report = {
        "name": "hello-web",
        "lease_id": lease_id,
        "host_port": port,
        "state": "healthy",
        "uptime_s": 12.0,
    }
    r = httpx.post(
        f"{network.url}/v1/services/hello-web/report",
        json=signed(acct, "dcloud/service.report", report),
    )
    assert r.status_code == 200, r.text


def _time_travel(network, seconds: int) -> None:
    network.w3.provider.make_request("evm_increaseTime", [seconds])
    network.w3.provider.make_request("evm_mine", [])
