"""The providers map: bundled world shapes, providers as dots by energy level, price curves."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import PROVIDER_KEYS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def providers(network):
    return [
        network.add_provider(PROVIDER_KEYS[0], lat=50.1, lon=8.7),  # Frankfurt
        network.add_provider(PROVIDER_KEYS[1], lat=-33.9, lon=151.2),  # Sydney
    ]


def test_map_draws_the_world_and_a_dot_per_provider_coloured_by_level(tab, network, providers):
    page = tab.goto("/providers")
    expect(page.locator("svg.map path.land")).to_have_count(177)  # world-atlas 110m countries
    for acct in providers:
        dot = page.locator(f"svg.map circle.provider[data-address='{acct.address}']")
        expect(dot).to_have_count(1)
        level = int(dot.get_attribute("data-level"))
        swatch = page.locator("#legend .swatch").nth(level)
        colour = swatch.evaluate("s => s.style.background")
        assert dot.get_attribute("fill").lower() == _rgb_hex(colour)
        expect(page.locator(f"#providers-body tr[data-address='{acct.address}']")).to_be_visible()
    # Frankfurt sits right of and above Sydney on an equirectangular map
    fra, syd = (
        page.locator(f"circle[data-address='{a.address}']").bounding_box() for a in providers
    )
    assert fra["x"] < syd["x"] and fra["y"] < syd["y"]
    expect(page.locator("#legend li")).to_have_count(12)


def test_region_price_curves_cover_the_last_day(tab, network, providers):
    page = tab.goto("/providers")
    charts = page.locator("#charts li")
    expect(charts).to_have_count(18)
    points = page.locator("#charts li[data-region='DE-FRA'] polyline").get_attribute("points")
    assert len(points.split()) == 24
    expect(page.locator("#charts li[data-region='DE-FRA'] svg")).to_have_attribute(
        "aria-label", re.compile(r"Frankfurt.*per MWh now.*energy level \d")
    )
    tab.screenshot("providers-map")


def test_provider_dots_are_reachable_by_keyboard(tab, network, providers):
    page = tab.goto("/providers")
    expect(page.locator("svg.map circle.provider")).to_have_count(2)
    page.locator("svg.map circle.provider").first.focus()
    label = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert label.startswith("Provider 0x") and "energy level" in label


def _rgb_hex(css: str) -> str:
    """'rgb(26, 152, 80)' -> '#1a9850' (the form a browser reports inline colours in)."""
    parts = css[css.index("(") + 1 : css.index(")")].split(",")
    return "#" + "".join(f"{int(p):02x}" for p in parts)


def test_each_region_shows_its_levels_for_the_next_twelve_hours(tab, network, providers):
    page = tab.goto("/providers")
    strip = page.locator("#charts li[data-region='DE-FRA'] div.ahead span")
    expect(strip).to_have_count(12)
    ahead = page.evaluate("fetch('/dashboard/api/regions/ahead?hours=12').then(r => r.json())")
    de = next(r for r in ahead["regions"] if r["id"] == "DE-FRA")
    assert [int(x) for x in strip.all_inner_texts()] == de["levels"]
    first = strip.first.evaluate("s => s.style.background")
    swatch = (
        page.locator("#legend .swatch").nth(de["levels"][0]).evaluate("s => s.style.background")
    )
    assert first == swatch
    expect(page.locator("#charts li[data-region='DE-FRA'] div.ahead")).to_have_attribute(
        "aria-label", re.compile(r"Energy level \(price\), next 12 h: (\d, ){11}\d; lowest \d")
    )
    regions_now = page.evaluate("fetch('/v1/regions').then(r => r.json())")
    assert de["levels"][0] == next(r for r in regions_now if r["id"] == "DE-FRA")["energy_level"]
