"""The submit form: its checks, the marketplace's own checks, and the estimate."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import PROVIDER_KEYS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def provider(network):
    """A staked provider near Frankfurt holding busybox (its endpoint answers nothing)."""
    return network.add_provider(PROVIDER_KEYS[0], lat=50.1, lon=8.7, price_wei=10**9)


def test_bad_input_is_explained_next_to_each_field_before_any_request(tab):
    page = tab.goto("/submit")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/v1/jobs" in r.url else None)
    page.get_by_label("Image").fill("-not an image")
    page.get_by_label("CPU cores").fill("0")
    page.get_by_label("Latitude").fill("123")
    page.get_by_label("Max price per replica (DCT)").fill("1.5.2")
    page.get_by_role("button", name="Estimate").click()

    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#image-error")).to_contain_text("starts with a letter or digit")
    expect(page.locator("#cpu-error")).to_have_text("CPU cores must be more than 0")
    expect(page.locator("#lat-error")).to_have_text("Latitude must be at most 90")
    expect(page.locator("#max_price-error")).to_contain_text("decimal number of DCT")
    expect(page.get_by_label("CPU cores")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-list li")).to_have_count(4)
    assert sent == []
    tab.screenshot("submit-errors")


def test_the_marketplaces_own_messages_show_at_their_fields(tab):
    tab.allow(r"status of 422")
    page = tab.goto("/submit")
    page.evaluate("window.dcloudSkipClientChecks = true")
    page.get_by_label("Memory (MB)").fill("0")
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("#memory_mb-error")).to_contain_text(
        "resources.memory_mb: Input should be greater than 0"
    )
    expect(page.locator("#quote-body")).to_contain_text("The marketplace refused the job")


def test_estimate_shows_cost_and_the_chosen_provider_with_why(tab, provider):
    page = tab.goto("/submit")
    page.get_by_label("Image").fill("busybox")
    page.get_by_label("City").select_option(label="Paris (FR)")
    expect(page.get_by_label("Latitude")).to_have_value(re.compile(r"^48\.8"))
    expect(page.get_by_label("Longitude")).to_have_value(re.compile(r"^2\.3"))
    page.get_by_role("button", name="Estimate").click()
    # 10^9 wei per CPU-second x 1 CPU x 60 s
    expect(page.locator("#quote-cost")).to_contain_text("0.00000006 DCT")
    row = page.locator(f"#quote tr[data-provider='{provider.address}']")
    expect(row).to_contain_text("km")
    expect(row).to_contain_text("energy level")
    expect(row).to_contain_text("reputation")
    tab.screenshot("submit-estimate")


def test_estimate_without_a_capable_provider_gives_the_reason(tab, provider):
    page = tab.goto("/submit")
    page.get_by_label("Image").fill("no-such-image")
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("#quote-reason")).to_contain_text("No provider can run this job now")
