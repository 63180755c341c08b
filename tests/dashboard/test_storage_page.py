"""The storage page's "Your files" panel in Chromium, through a real renter gateway.

Real processes: a marketplace (which serves the dashboard), six storage nodes and
`dcloud file serve` for one renter; no chain is needed for files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from agents.storage.files.manifest import RenterStore
from tests.agents.storage.network import Network, account, free_port
from tests.agents.storage.test_gateway import Gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    net = Network(tmp_path_factory.mktemp("storage-page"), nodes=6)
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="module")
def gateway(storage: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(
        tmp_path_factory.mktemp("page-renter"),
        market=storage.market.url,
        renter="page-renter",
        args=("--k", "4", "--n", "6", "--health-every", "1"),
    )
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def dashboard_url(storage: Network) -> str:
    return f"{storage.market.url}/dashboard"


def use_gateway(tab, url: str) -> None:
    """Make the page look for the gateway at `url` (what Connect remembers)."""
    tab.page.add_init_script(f"localStorage.setItem('dcloud.gateway', {url!r})")


def test_a_file_uploaded_in_the_page_is_listed_healthy_and_downloads_intact(tab, gateway, tmp_path):
    data = random.Random(7).randbytes(700_000)
    src = tmp_path / "holiday photo.jpg"
    src.write_bytes(data)
    use_gateway(tab, gateway.url)
    page = tab.goto("/storage")
    expect(page.locator("#gateway-state")).to_contain_text(gateway.address)

    page.get_by_label("File to store").set_input_files(str(src))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text("Stored holiday photo.jpg")
    row = page.locator("#files-body tr[data-name='holiday photo.jpg']")
    expect(row).to_contain_text("700.0 KB")
    expect(row).to_contain_text("4 of 6")
    expect(row.locator(".health")).to_have_text("✓ 6/6 shards healthy")
    expect(row.get_by_role("button", name="Repair holiday photo.jpg")).to_be_hidden()

    with page.expect_download() as download:
        row.get_by_role("link", name="Download holiday photo.jpg").click()
    assert download.value.suggested_filename == "holiday photo.jpg"
    assert Path(download.value.path()).read_bytes() == data
    expect(page.locator("#notice")).to_contain_text("Downloaded holiday photo.jpg")

    assert tab.accessibility_problems() == []
    used = page.locator("#nodes-body").get_by_text("199.8 MB / 200.0 MB")  # a shard each
    expect(used).to_have_count(6, timeout=20_000)
    tab.screenshot("storage")


def test_delete_asks_first_then_frees_the_file(tab, gateway):
    assert gateway.upload("draft.txt", b"first draft").status_code == 201
    use_gateway(tab, gateway.url)
    page = tab.goto("/storage")
    row = page.locator("#files-body tr[data-name='draft.txt']")
    delete = row.get_by_role("button", name="Delete draft.txt")

    page.once("dialog", lambda dialog: dialog.dismiss())
    delete.click()
    expect(row).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    delete.focus()
    page.keyboard.press("Enter")
    expect(row).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text("Deleted draft.txt: 6 shards removed")
    assert gateway.http.get("/v1/files/draft.txt").status_code == 404


def test_a_degraded_file_shows_its_health_in_words_and_repairs_from_the_page(tab, gateway, storage):
    assert gateway.upload("ledger.csv", b"a,b\n1,2\n" * 1000, k="2", n="4").status_code == 201
    store = RenterStore(gateway.log.parent, account("page-renter"))
    holder = storage.by_address(store.find("ledger.csv").segments[0].shards[0].node)
    use_gateway(tab, gateway.url)
    page = tab.goto("/storage")
    row = page.locator("#files-body tr[data-name='ledger.csv']")
    with storage.down([holder]):
        expect(row.locator(".health")).to_have_text("⚠ Degraded: 3/4 shards healthy")
        row.get_by_role("button", name="Repair ledger.csv").click()
        expect(page.locator("#notice")).to_contain_text("Repaired ledger.csv: 1 shards rebuilt")
        expect(row.locator(".health")).to_have_text("✓ 4/4 shards healthy")
        expect(row.get_by_role("button", name="Repair ledger.csv")).to_be_hidden()


def test_without_a_gateway_the_page_says_how_to_start_one(tab):
    tab.allow(r"net::ERR_CONNECTION_REFUSED")  # the page's probe of the absent gateway
    use_gateway(tab, f"http://127.0.0.1:{free_port()}")
    page = tab.goto("/storage")
    expect(page.locator("#gateway-state")).to_contain_text("dcloud file serve --home")
    expect(page.locator("#files-panel")).to_be_hidden()
    assert tab.accessibility_problems() == []
