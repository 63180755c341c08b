"""Services are ranked by their providers' energy level over the coming hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketplace.energy.grid import Grid
from marketplace.energy.levels import region_levels
from marketplace.energy.sources import BundledPriceSource
from marketplace.service import Service
from marketplace.services.placement import forecast_levels, rate_of
from marketplace.settings import Settings

AT = datetime(2026, 3, 2, 6, tzinfo=UTC)


def test_the_forecast_is_the_rounded_mean_of_the_coming_hours(tmp_path):
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}"))
    levels, basis = forecast_levels(service, hours=4, at=AT)
    source = BundledPriceSource()
    hourly = [region_levels(source, AT + timedelta(hours=h)) for h in range(4)]
    assert levels == {r: round(sum(h[r] for h in hourly) / 4) for r in hourly[0]}
    assert basis == "mean energy level over the next 4 h"


def test_a_source_that_knows_no_future_gives_the_level_now(tmp_path):
    source = BundledPriceSource(cyclic=False)
    end = source.period[1] - timedelta(hours=1)  # the last hour the series knows
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}"), grid=Grid(source))
    levels, basis = forecast_levels(service, hours=6, at=end)
    assert levels == Grid(source).levels(end)
    assert basis.startswith("energy level now")


def test_the_rate_is_the_ask_times_the_cpu_rounded_up_and_never_zero():
    assert rate_of(1000, 1.5) == 1500
    assert rate_of(3, 0.5) == 2
    assert rate_of(0, 2) == 1
