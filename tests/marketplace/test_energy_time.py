"""Carbon intensity, forecasts and the level basis of the bundled energy series."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from marketplace.energy import (
    BundledPriceSource,
    EnergyBasis,
    Forecast,
    PricePoint,
    Region,
    forecast,
    generate_data,
    region_levels,
)
from marketplace.energy.entsoe import EntsoePriceSource, EntsoeSettings
from marketplace.energy.grid import Grid
from marketplace.errors import InvalidInputError, PriceUnavailableError
from marketplace.settings import Settings

WED = datetime(2025, 1, 8, tzinfo=UTC)


def test_bundled_carbon_averages_each_regions_stated_annual_mean():
    source = BundledPriceSource()
    start, end = source.period
    hours = int((end - start) / timedelta(hours=1))
    for spec in generate_data.CARBON_SPECS:
        values = [
            source.price(spec.id, start + timedelta(hours=h)).carbon_g_kwh for h in range(hours)
        ]
        assert all(v is not None and v > 0 for v in values)
        mean = sum(v for v in values if v is not None) / hours
        assert mean == pytest.approx(spec.mean_g_kwh, rel=0.01, abs=0.1)


def test_every_region_has_a_carbon_spec():
    assert [c.id for c in generate_data.CARBON_SPECS] == [r.id for r in generate_data.REGION_SPECS]


def _local_hour_means(region: str, offset: float, column: str) -> list[float]:
    _, prices_csv, carbon_csv = generate_data.render()
    text = carbon_csv if column == "carbon_g_kwh" else prices_csv
    sums = [0.0] * 24
    counts = [0] * 24
    for row in csv.DictReader(io.StringIO(text)):
        if row["region"] != region:
            continue
        at = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
        h = int((at.hour + offset) % 24)
        sums[h] += float(row[column])
        counts[h] += 1
    return [s / c for s, c in zip(sums, counts, strict=True)]


def test_solar_heavy_grid_is_greener_at_midday_than_at_the_evening_peak():
    cal = _local_hour_means("US-CAL", -8, "carbon_g_kwh")
    assert cal[13] < 0.8 * cal[19]


def test_carbon_follows_net_load_like_the_price_does():
    price = np.array(_local_hour_means("DE-FRA", 1, "price_eur_mwh"))
    carbon = np.array(_local_hour_means("DE-FRA", 1, "carbon_g_kwh"))
    assert np.corrcoef(price, carbon)[0, 1] > 0.8


def test_hydro_grid_is_cleaner_than_coal_grid_every_hour():
    source = BundledPriceSource()
    for h in range(48):
        at = WED + timedelta(hours=h)
        no = source.price("NO-OSL", at).carbon_g_kwh
        pl = source.price("PL-WAW", at).carbon_g_kwh
        assert no is not None and pl is not None and no < pl / 5


def test_bundled_forecast_matches_the_hourly_prices():
    source = BundledPriceSource()
    fc = forecast(source, ["DE-FRA", "NO-OSL"], WED + timedelta(minutes=40), 30)
    assert fc.start == WED and fc.hours == 30 and fc.price.shape == (2, 30)
    for h in (0, 7, 29):
        point = source.price("NO-OSL", WED + timedelta(hours=h))
        assert fc.price[fc.row("NO-OSL"), h] == point.price
        assert fc.carbon[fc.row("NO-OSL"), h] == point.carbon_g_kwh


def test_bundled_forecast_wraps_the_cycle_and_stops_at_the_end_without_it():
    cyclic = BundledPriceSource()
    start, end = cyclic.period
    last = end - timedelta(hours=1)
    wrapped = forecast(cyclic, ["FR-PAR"], last, 3)
    assert wrapped.price[0, 1] == cyclic.price("FR-PAR", start).price
    cut = forecast(BundledPriceSource(cyclic=False), ["FR-PAR"], last, 3)
    assert cut.hours == 1


class HourByHour:
    """A source without a forecast method: prices known for the next 5 hours only."""

    def __init__(self) -> None:
        self._inner = BundledPriceSource()

    def regions(self) -> list[Region]:
        return list(self._inner.regions())

    def price(self, region: str, at: datetime) -> PricePoint:
        if at >= WED + timedelta(hours=5):
            raise PriceUnavailableError("not published yet")
        p = self._inner.price(region, at)
        return PricePoint(p.region, p.start, p.price, demand_mw=p.demand_mw)


def test_forecast_of_a_plain_source_ends_before_the_first_unknown_hour():
    fc = forecast(HourByHour(), ["ES-MAD"], WED, 12)
    assert fc.hours == 5
    assert np.isnan(fc.carbon).all()
    with pytest.raises(PriceUnavailableError):
        forecast(HourByHour(), ["ES-MAD"], WED + timedelta(hours=6), 2)


def test_entsoe_forecast_reads_day_ahead_prices_until_unpublished():
    from tests.marketplace.test_energy import DE_LU, read

    def fetch(kind: str, zone: str, start: datetime, end: datetime) -> str:
        assert kind == "prices"  # a forecast does not ask for load
        if start == datetime(2024, 1, 15, tzinfo=UTC):
            return read("entsoe_a44_de_lu_2024-01-15.xml")
        return read("entsoe_acknowledgement_no_data.xml")  # the next day: not published yet

    src = EntsoePriceSource(
        EntsoeSettings(), zones={"DE-FRA": DE_LU}, with_demand=False, fetch=fetch
    )
    evening = datetime(2024, 1, 15, 20, tzinfo=UTC)
    fc = src.forecast(["DE-FRA"], evening, 10)
    assert isinstance(fc, Forecast) and fc.hours == 4  # 20:00 .. 23:00 UTC
    assert fc.price[0, 0] == src.price("DE-FRA", evening).price
    assert np.isnan(fc.carbon).all()


def test_price_basis_levels_are_unchanged_by_default():
    source = BundledPriceSource()
    assert region_levels(source, WED) == region_levels(source, WED, basis=EnergyBasis("price"))


def test_carbon_basis_ranks_clean_grids_low_and_coal_grids_high():
    levels = region_levels(BundledPriceSource(), WED, basis=EnergyBasis("carbon"))
    assert levels["CA-QC"] == 0 and levels["NO-OSL"] == 0
    assert levels["ZA-JNB"] >= 8 and levels["IN-BOM"] >= 8 and levels["PL-WAW"] >= 7


def test_mix_lies_between_price_and_carbon_levels():
    source = BundledPriceSource()
    for h in range(0, 24, 5):
        at = WED + timedelta(hours=h)
        p = region_levels(source, at)
        c = region_levels(source, at, basis=EnergyBasis("carbon"))
        m = region_levels(source, at, basis=EnergyBasis("mix", 0.5))
        for rid in p:
            assert min(p[rid], c[rid]) - 1 <= m[rid] <= max(p[rid], c[rid]) + 1


def test_carbon_basis_needs_a_source_with_carbon():
    with pytest.raises(PriceUnavailableError, match="energy basis 'price'"):
        region_levels(HourByHour(), WED, basis=EnergyBasis("carbon"))


def test_energy_basis_refuses_unknown_kinds_and_weights():
    with pytest.raises(InvalidInputError):
        EnergyBasis("wind")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        EnergyBasis("mix", 1.5)


def test_settings_choose_the_basis_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    assert Settings().energy_basis == "price"
    monkeypatch.setenv("DCLOUD_ENERGY_BASIS", "mix")
    monkeypatch.setenv("DCLOUD_ENERGY_CARBON_WEIGHT", "0.25")
    s = Settings()
    assert (s.energy_basis, s.energy_carbon_weight) == ("mix", 0.25)


def test_grid_levels_ahead_start_with_now_and_use_the_basis():
    grid = Grid(basis=EnergyBasis("carbon"))
    ahead = grid.levels_ahead(12, WED)
    assert len(ahead) == 12
    assert ahead[0] == grid.levels(WED)
    assert ahead[3] == region_levels(grid.source, WED + timedelta(hours=3), basis=grid.basis)


def test_grid_levels_ahead_stop_where_the_source_does():
    assert len(Grid(HourByHour()).levels_ahead(12, WED)) == 5  # hours 0..4
