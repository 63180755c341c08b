"""A service deployed in the browser, the whole way: the page places it, opens its lease
with a permit, pushes it to a real provider agent that runs it in a real container,
waits until it is healthy, and the browser opens it through a real ingress gateway
(nginx); its logs are followed from the provider, and stopping it refunds the rest.

anvil, the marketplace and the provider agent run as processes (agents.devnet.network,
as `dcloud devnet` runs them), the gateway as nginx with its route controller.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from agents.devnet.network import Network as Devnet
from agents.devnet.network import ProviderSpec
from agents.devnet.procs import free_port
from agents.ingress import Controller, Nginx
from protocol.leases import EndReason, Leases, LeaseStatus
from tests.dashboard.conftest import _wait_for_free_port
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

RENTER = 7  # a funded dev account the devnet's providers do not use
UP_MS = 180_000  # placing, two transactions, a container start and the first health check
COMMAND = (
    """sh -c 'echo "$GREETING from a dcloud service" > /data/index.html; """
    """cd /data; exec python3 -m http.server 8000'"""
)


@pytest.fixture(scope="module")
def devnet(docker_engine, job_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("devnet")
    gateway_port = free_port()
    _wait_for_free_port(CHAINS["anvil"]["port"])
    with pytest.MonkeyPatch.context() as env, running_chain("anvil") as url:
        # the marketplace tells the dashboard where the gateway is
        env.setenv("DCLOUD_SERVICE_GATEWAY_URL", f"http://127.0.0.1:{gateway_port}")
        deploy_contracts(CHAINS["anvil"]["network"], root / "deployments.json")
        net = Devnet(root=root, rpc_url=url, deployments=root / "deployments.json")
        gateway = Nginx(root / "gateway", port=gateway_port)
        controller = None
        try:
            net.start_marketplace()
            net.add_provider(ProviderSpec("p-frankfurt", 1, 50.11, 8.68))
            gateway.start()
            controller = Controller(gateway, net.market_url, interval_s=0.3).start()
            yield net, gateway
        finally:
            if controller is not None:
                controller.stop()
            gateway.stop()
            net.close()


@pytest.fixture
def dashboard_url(devnet):
    return f"{devnet[0].market_url}/dashboard"


def test_a_service_deployed_in_the_browser_answers_through_the_gateway(tab, devnet):
    net, gateway = devnet
    leases = Leases(net.escrow.w3, net.escrow.deployment)
    provider = net.providers[0]
    page = tab.goto("/services")
    renter = tab.connect_dev_account(RENTER)
    page.locator("body[data-choices='ready']").wait_for(state="attached")
    tokens_before = net.escrow.balance_of(renter)

    page.get_by_label("Name", exact=True).fill("hello-page")
    expect(page.get_by_label("Image")).to_have_value("dcloud/python:3.11")
    page.get_by_label("Command").fill(COMMAND)
    page.get_by_label("Environment").fill("GREETING=hello")
    page.get_by_label("Deposit (DCT)", exact=True).fill("0.01")
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("#quote-provider")).to_contain_text(provider.address[:6])
    expect(page.locator("#quote-rate")).to_contain_text("0.0018 DCT/h")
    page.get_by_role("button", name="Deploy").click()

    expect(page.locator("#step-up")).to_have_class("done", timeout=UP_MS)
    url = f"http://hello-page.apps.localhost:{gateway.port}/"
    link = page.locator("#deployed-link")
    expect(link).to_have_attribute("href", url)
    assert tab.accessibility_problems() == []
    tab.screenshot("services-deployed")

    # the service, in the browser, through the gateway (by name, and by path)
    site = page.context.new_page()
    site.goto(url)
    expect(site.locator("body")).to_have_text("hello from a dcloud service")
    site.goto(f"{gateway.url}/apps/hello-page/")
    expect(site.locator("body")).to_have_text("hello from a dcloud service")
    site.close()

    lease_id = leases.lease_count()
    lease = leases.lease(lease_id)
    assert lease.renter == renter and lease.provider == provider.address
    assert lease.status == LeaseStatus.RUNNING and lease.deposit == 10**16
    row = page.locator("tr[data-service='hello-page']")
    expect(row).to_have_attribute("data-health", "healthy")
    expect(row.locator("a.service-url")).to_have_text(url)
    expect(row.locator("[data-cell='runs-out']")).to_have_text(re.compile(r"^in \d+ h \d+ min$"))

    # its logs, read from the provider with signed requests, show the visits just made
    row.get_by_role("button", name="Logs hello-page").click()
    expect(page.locator("#service-logs")).to_contain_text('"GET / HTTP/1.1" 200', timeout=30_000)
    site = page.context.new_page()
    site.goto(f"{url}?followed")
    site.close()
    expect(page.locator("#service-logs")).to_contain_text("GET /?followed", timeout=30_000)
    assert tab.accessibility_problems() == []
    tab.screenshot("services-logs")

    row.get_by_role("button", name="Stop hello-page").click()
    page.get_by_role("dialog").get_by_role("button", name="Stop hello-page").click()
    expect(page.locator("#stop-result")).to_contain_text("closed by you", timeout=60_000)
    lease = leases.lease(lease_id)
    assert lease.reason == EndReason.CLOSED_BY_RENTER
    # everything but what the provider earned came back to the wallet
    assert net.escrow.balance_of(renter) == tokens_before - lease.paid
    expect(row).to_have_attribute("data-health", "ended")
