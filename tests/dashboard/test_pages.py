"""Every page: loads with no console errors, labels on every control, keyboard use,
visible focus, and text contrast at WCAG AA."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.marketplace.api.conftest import account, signed

pytestmark = pytest.mark.integration

PAGES = ["/jobs", "/submit", "/services", "/providers", "/storage"]
# Chromium logs a refused connection when the storage page probes for the renter's
# local gateway and none runs; the page then explains how to start one.
NO_GATEWAY = r"net::ERR_CONNECTION_REFUSED \(http://127\.0\.0\.1:8790/"


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_with_labels_and_aa_contrast(tab, network, path):
    if path == "/storage":
        tab.allow(NO_GATEWAY)
    page = tab.goto(path)
    tab.connect_dev_account(2)
    page.wait_for_load_state("networkidle")
    assert tab.accessibility_problems() == []


def test_keyboard_reaches_the_skip_link_and_pages_with_visible_focus(tab, network):
    page = tab.goto("/jobs")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    for _ in range(3):  # the brand link, "Your jobs", "Submit a job"
        page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Submit a job").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{tab.base}/submit")
    page.locator("body[data-ready]").wait_for(state="attached")
    page.get_by_label("Image").focus()
    page.keyboard.press("Enter")  # Enter in the form estimates; it never pays
    expect(page.locator("#quote")).to_be_visible()


def test_storage_page_lists_nodes_and_says_where_files_live(tab, network):
    node = account("dashboard-storage-node")
    reg = {
        "endpoint": "http://127.0.0.1:9200",
        "location": {"lat": 52.5, "lon": 13.4},
        "capacity_bytes": 10 * 2**30,
        "free_bytes": 4 * 2**30,
    }
    r = httpx.post(
        f"{network.url}/v1/storage/nodes", json=signed(node, "dcloud/storage.register", reg)
    )
    assert r.status_code == 201, r.text
    tab.allow(NO_GATEWAY)
    page = tab.goto("/storage")
    expect(page.locator("#files-note")).to_contain_text("dcloud file put")
    row = page.locator(f"#nodes-body tr[data-address='{node.address}']")
    expect(row).to_contain_text("4.3 GB / 10.7 GB")
    expect(row).to_contain_text("yes")
