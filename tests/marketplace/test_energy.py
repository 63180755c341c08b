"""Electricity prices: bundled data, levels and the ENTSO-E adapter (recorded responses)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from marketplace.energy import (
    BundledPriceSource,
    LevelScale,
    PriceSource,
    generate_data,
    levels_for_locations,
    nearest_region,
    price_at_location,
    region_levels,
)
from marketplace.energy.entsoe import (
    EntsoePriceSource,
    EntsoeSettings,
    fetch_document,
    hourly_means,
    parse_day_ahead_prices,
    parse_total_load,
)
from marketplace.errors import (
    FeedNotConfiguredError,
    FeedParseError,
    FeedRequestError,
    InvalidInputError,
    InvalidTimeError,
    PriceUnavailableError,
    UnknownRegionError,
)

DATA = Path(__file__).parent / "data"
DE_LU = "10Y1001A1001A82H"
FR = "10YFR-RTE------C"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- bundled data -------------------------------------------------------------------------


def test_bundled_source_covers_twelve_regions_on_several_continents_for_a_week():
    source = BundledPriceSource()
    regions = source.regions()
    assert len(regions) >= 12
    assert len({r.continent for r in regions}) >= 5
    start, end = source.period
    assert end - start >= timedelta(days=7)


def test_bundled_source_implements_the_price_source_protocol():
    assert isinstance(BundledPriceSource(), PriceSource)


def test_bundled_files_match_their_generator():
    regions_csv, prices_csv, carbon_csv = generate_data.render()
    shipped = Path(generate_data.__file__).parent / "data"
    got_c = (shipped / "carbon.csv").read_text(encoding="utf-8").splitlines()
    want_c = carbon_csv.splitlines()
    assert len(got_c) == len(want_c) and got_c[0] == want_c[0]
    for g, w in zip(got_c[1:], want_c[1:], strict=True):
        assert g.split(",")[:2] == w.split(",")[:2]
        assert abs(float(g.split(",")[2]) - float(w.split(",")[2])) <= 0.11
    assert (shipped / "regions.csv").read_text(encoding="utf-8") == regions_csv
    got = (shipped / "prices.csv").read_text(encoding="utf-8").splitlines()
    want = prices_csv.splitlines()
    assert len(got) == len(want)
    for g, w in zip(got[1:], want[1:], strict=True):
        gt, gr, gp, gd = g.split(",")
        wt, wr, wp, wd = w.split(",")
        assert (gt, gr) == (wt, wr)
        assert abs(float(gp) - float(wp)) <= 0.011  # tolerate a last-digit libm difference
        assert abs(float(gd) - float(wd)) <= 1.0


def test_bundled_price_has_demand_and_hour_start():
    point = BundledPriceSource().price("DE-FRA", datetime(2025, 1, 7, 18, 42, tzinfo=UTC))
    assert point.start == datetime(2025, 1, 7, 18, tzinfo=UTC)
    assert point.demand_mw is not None and point.demand_mw > 0
    assert point.currency == "EUR"


def test_bundled_source_repeats_every_two_weeks():
    source = BundledPriceSource()
    at = datetime(2025, 1, 8, 5, tzinfo=UTC)
    later = at + timedelta(days=14 * 40)
    assert source.price("JP-TYO", at).price == source.price("JP-TYO", later).price


def test_bundled_source_without_cycle_refuses_times_outside_the_period():
    with pytest.raises(PriceUnavailableError, match="cyclic=True"):
        BundledPriceSource(cyclic=False).price("JP-TYO", datetime(2030, 1, 1, tzinfo=UTC))


def test_unknown_region_lists_the_known_ones():
    with pytest.raises(UnknownRegionError, match="DE-FRA"):
        BundledPriceSource().price("XX", datetime(2025, 1, 8, tzinfo=UTC))


def test_naive_datetime_is_refused_with_a_hint():
    with pytest.raises(InvalidTimeError, match="aware"):
        BundledPriceSource().price("DE-FRA", datetime(2025, 1, 8))


def test_bundled_prices_follow_a_daily_cycle():
    source = BundledPriceSource()
    # Warsaw: evening peak (19:00 local = 18:00 UTC) dearer than the night (03:00 local).
    days = (7, 8, 9)
    evening = [source.price("PL-WAW", datetime(2025, 1, d, 18, tzinfo=UTC)).price for d in days]
    night = [source.price("PL-WAW", datetime(2025, 1, d, 2, tzinfo=UTC)).price for d in days]
    assert min(evening) > max(night)


def test_nearest_region_handles_the_antimeridian():
    source = BundledPriceSource()
    # Just west of the antimeridian, nearest is Auckland, not anywhere in the Americas.
    assert nearest_region(source.regions(), -36.0, -179.9).id == "NZ-AKL"
    point = price_at_location(source, 48.2, 16.4, datetime(2025, 1, 9, 12, tzinfo=UTC))
    assert point.region in {"DE-FRA", "PL-WAW"}  # Vienna


def test_levels_for_locations_uses_the_nearest_region():
    source = BundledPriceSource()
    levels = {r.id: i % 10 for i, r in enumerate(source.regions())}
    got = levels_for_locations(
        source.regions(), levels, np.array([35.7, -33.9]), np.array([139.7, 151.2])
    )
    assert got.tolist() == [levels["JP-TYO"], levels["AU-SYD"]]


# --- levels -------------------------------------------------------------------------------


def test_level_scale_maps_deciles_to_levels():
    scale = LevelScale.from_prices(range(100), n_levels=10, demand_weight=0.0)
    assert scale.level(-5.0) == 0
    assert scale.level(5.0) == 0
    assert scale.level(55.0) == 5
    assert scale.level(99.0) == 9
    assert scale.level(1e6) == 9


def test_level_is_monotone_in_price():
    rng = np.random.default_rng(1)
    scale = LevelScale.from_prices(rng.normal(80, 30, 500).tolist())
    prices = np.sort(rng.normal(80, 40, 300))
    levels = [scale.level(float(p)) for p in prices]
    assert levels == sorted(levels)


def test_high_demand_raises_the_level():
    scale = LevelScale.from_prices(range(100), demand_weight=0.25)
    assert scale.level(50.0, demand_percentile=1.0) > scale.level(50.0, demand_percentile=0.0)


def test_level_scale_refuses_bad_settings():
    with pytest.raises(InvalidInputError, match="demand_weight"):
        LevelScale.from_prices([1.0], demand_weight=2.0)
    with pytest.raises(InvalidInputError, match="at least one"):
        LevelScale.from_prices([])
    with pytest.raises(InvalidInputError, match="fraction"):
        LevelScale.from_prices([1.0]).level(1.0, demand_percentile=3.0)


def test_region_levels_rank_cheap_regions_low():
    levels = region_levels(BundledPriceSource(), datetime(2025, 1, 8, 3, tzinfo=UTC))
    assert set(levels.values()) <= set(range(10))
    assert levels["CA-QC"] < levels["SG-SIN"]  # hydro vs import-dependent island
    assert len(set(levels.values())) >= 5  # levels spread across the scale


# --- ENTSO-E ------------------------------------------------------------------------------


def test_parse_hourly_day_ahead_prices_of_two_delivery_days():
    series = parse_day_ahead_prices(read("entsoe_a44_de_lu_2024-01-15.xml"))
    assert [s.zone for s in series] == [DE_LU, DE_LU]
    assert series[0].currency == "EUR" and series[0].unit == "MWH"
    first = series[0].intervals
    assert len(first) == 24
    assert first[0].start == datetime(2024, 1, 14, 23, tzinfo=UTC)
    assert first[0].end - first[0].start == timedelta(hours=1)
    assert first[0].value == pytest.approx(78.37)
    assert series[1].intervals[-1].end == datetime(2024, 1, 16, 23, tzinfo=UTC)


def test_parse_quarter_hour_prices_carries_omitted_positions_forward():
    (series,) = parse_day_ahead_prices(read("entsoe_a44_fr_2025-10-02_pt15m.xml"))
    iv = series.intervals
    assert series.zone == FR
    assert len(iv) == 96  # 79 points in the file, curve type A03
    assert all(b.start == a.end for a, b in itertools.pairwise(iv))
    assert [iv[k].value for k in range(4, 8)] == [iv[3].value] * 4
    assert all(iv[k].value == iv[89].value for k in range(89, 96))


def test_hourly_means_average_quarter_hours():
    (series,) = parse_day_ahead_prices(read("entsoe_a44_fr_2025-10-02_pt15m.xml"))
    hourly = hourly_means(series.intervals)
    assert len(hourly) == 24
    first = datetime(2025, 10, 1, 22, tzinfo=UTC)
    assert hourly[first] == pytest.approx(sum(i.value for i in series.intervals[:4]) / 4)


def test_parse_total_load():
    (series,) = parse_total_load(read("entsoe_a65_de_lu_2024-01-15.xml"))
    assert series.zone == DE_LU and series.unit == "MAW"
    assert len(series.intervals) == 96
    assert 30_000 < min(i.value for i in series.intervals) < max(i.value for i in series.intervals)


def test_acknowledgement_document_raises_with_the_reason():
    with pytest.raises(FeedRequestError, match="No matching data found"):
        parse_day_ahead_prices(read("entsoe_acknowledgement_no_data.xml"))


def test_parser_refuses_wrong_documents():
    with pytest.raises(FeedParseError, match="GL_MarketDocument"):
        parse_total_load(read("entsoe_a44_de_lu_2024-01-15.xml"))
    with pytest.raises(FeedParseError, match="well-formed"):
        parse_day_ahead_prices("<Publication_MarketDocument>")
    with pytest.raises(FeedParseError, match="DOCTYPE"):
        parse_day_ahead_prices('<!DOCTYPE x [<!ENTITY a "b">]><x/>')


def test_fetch_without_token_fails_before_any_request():
    with pytest.raises(FeedNotConfiguredError, match="DCLOUD_ENTSOE_API_TOKEN"):
        fetch_document(
            EntsoeSettings(api_token=None),
            kind="prices",
            zone=DE_LU,
            start=datetime(2024, 1, 15, tzinfo=UTC),
            end=datetime(2024, 1, 16, tzinfo=UTC),
        )


def test_fetch_without_endpoint_fails_before_any_request():
    with pytest.raises(FeedNotConfiguredError, match="DCLOUD_ENTSOE_BASE_URL"):
        fetch_document(
            EntsoeSettings(api_token="secret", base_url=None),
            kind="prices",
            zone=DE_LU,
            start=datetime(2024, 1, 15, tzinfo=UTC),
            end=datetime(2024, 1, 16, tzinfo=UTC),
        )


def test_entsoe_source_answers_hourly_prices_and_demand_from_recorded_responses():
    calls: list[tuple[str, str, datetime, datetime]] = []
    files = {"prices": "entsoe_a44_de_lu_2024-01-15.xml", "load": "entsoe_a65_de_lu_2024-01-15.xml"}

    def fetch(kind: str, zone: str, start: datetime, end: datetime) -> str:
        calls.append((kind, zone, start, end))
        return read(files[kind])

    source = EntsoePriceSource(EntsoeSettings(api_token=None), fetch=fetch)
    assert isinstance(source, PriceSource)
    point = source.price("DE-FRA", datetime(2024, 1, 15, 7, 30, tzinfo=UTC))
    # 07:00 UTC is 08:00 CET, the ninth hour of the delivery day starting 2024-01-14T23:00Z.
    assert point.price == pytest.approx(121.73)
    assert point.demand_mw is not None and point.demand_mw > 40_000
    source.price("DE-FRA", datetime(2024, 1, 15, 9, tzinfo=UTC))
    day = datetime(2024, 1, 15, tzinfo=UTC)
    assert calls == [
        ("prices", DE_LU, day, day + timedelta(days=1)),
        ("load", DE_LU, day, day + timedelta(days=1)),
    ]  # one fetch per kind and day, then cached


def test_entsoe_source_refuses_regions_without_a_zone():
    source = EntsoePriceSource(EntsoeSettings(), fetch=lambda *a: "")
    with pytest.raises(UnknownRegionError, match="no ENTSO-E zone"):
        source.price("JP-TYO", datetime(2024, 1, 15, tzinfo=UTC))
