"""The grid-impact study's pure parts: city table, site capacity, energy cost, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gridsim import (
    CITIES,
    Calendar,
    Config,
    HourlyGrid,
    day_integral,
    energy_cost_eur,
    make_world,
    parse_cities,
    simulate,
    simulate_shift,
    site_capacity,
    summarise,
)
from marketplace.energy import BundledPriceSource


def test_city_table_has_valid_unique_cities() -> None:
    names = [c.name for c in CITIES]
    assert len(names) == len(set(names)) >= 60
    assert all(-90 <= c.lat <= 90 and -180 <= c.lon <= 180 and c.population_m > 0 for c in CITIES)


def test_parse_cities_reads_records_across_lines() -> None:
    cities = parse_cities("A,1.5,2.5,3.0;B,-1,-2,0.5\nC,0,0,1\n")
    assert [(c.name, c.lat, c.lon, c.population_m) for c in cities] == [
        ("A", 1.5, 2.5, 3.0),
        ("B", -1.0, -2.0, 0.5),
        ("C", 0.0, 0.0, 1.0),
    ]


def test_site_capacity_sums_to_total_and_respects_floor() -> None:
    pop = np.array([0.1, 1.0, 4.0, 25.0])
    cores = site_capacity(pop, 400.0, floor=8)
    assert cores.min() >= 8
    assert abs(int(cores.sum()) - 400) <= len(pop)
    assert list(cores) == sorted(cores)


def test_site_capacity_keeps_floors_when_total_is_too_small() -> None:
    assert list(site_capacity(np.array([1.0, 4.0]), 5.0, floor=8)) == [8, 8]


def test_energy_cost_splits_a_job_across_hours_at_each_hours_price() -> None:
    prices = {0: np.array([100.0, 10.0]), 1: np.array([200.0, 20.0])}
    cost = energy_cost_eur(
        start_s=np.array([1800.0, 0.0]),
        run_s=np.array([3600.0, 3600.0]),
        cores=np.array([1, 2]),
        region=np.array([0, 1]),
        price_of_hour=prices.__getitem__,
        watts_per_core=1000.0,
        pue=1.0,
    )
    # 1 kW for half an hour at 100 and half an hour at 200 EUR/MWh; 2 kW for an hour at 10.
    assert cost == pytest.approx([0.5 * 0.1 + 0.5 * 0.2, 2 * 0.01])


def test_world_is_deterministic_for_a_seed() -> None:
    src = BundledPriceSource()
    a = make_world(Config(jobs=300, seed=7), src)
    b = make_world(Config(jobs=300, seed=7), src)
    assert np.array_equal(a.job_arrival_s, b.job_arrival_s)
    assert np.array_equal(a.site_cores, b.site_cores)
    assert int(a.counted.sum()) == 300
    assert np.all(np.diff(a.job_arrival_s) >= 0)


def test_weight_zero_places_every_job_at_the_nearest_site_with_room() -> None:
    src = BundledPriceSource()
    cfg = Config(jobs=200, seed=3)
    world = make_world(cfg, src)
    placed = simulate(world, HourlyGrid(src, cfg.day), 0.0)
    assert placed.site.min() >= 0
    assert np.all(placed.start_s >= world.job_arrival_s)
    assert placed.km == pytest.approx(placed.nearest_km, abs=1e-6)


def test_calendar_refuses_a_site_booked_full_over_the_run() -> None:
    cal = Calendar(np.array([4, 8]), 0.0, 7200.0)
    cal.book(0, 600.0, 1200.0, 3)
    assert list(cal.room(0.0, 600.0, 4)) == [True, True]  # ends as the booking starts
    assert list(cal.room(0.0, 700.0, 2)) == [False, True]
    assert list(cal.room(1800.0, 600.0, 4)) == [True, True]


@pytest.fixture(scope="module")
def small_world():  # type: ignore[no-untyped-def]
    src = BundledPriceSource()
    cfg = Config(jobs=400, seed=5)
    world = make_world(cfg, src)
    grid = HourlyGrid(src, cfg.day)
    return world, grid, day_integral(world, grid)


def test_temporal_without_a_window_is_the_nearest_site_with_room_now(small_world) -> None:  # type: ignore[no-untyped-def]
    world, grid, integral = small_world
    base = simulate(world, grid, 0.0)
    shifted = simulate_shift(world, integral, mode="temporal", window_h=0.0)
    assert np.array_equal(shifted.start_s, base.start_s)
    assert shifted.km == pytest.approx(base.km, abs=1e-6)


def test_windows_start_jobs_within_them_and_save_energy_cost(small_world) -> None:  # type: ignore[no-untyped-def]
    world, grid, integral = small_world
    base = simulate(world, grid, 0.0)
    placements = [({"mode": "nearest"}, base)]
    for mode in ("temporal", "both"):
        p = simulate_shift(world, integral, mode=mode, window_h=6.0, max_km=1500.0)
        delay = p.start_s - world.job_arrival_s
        assert p.site.min() >= 0 and delay.min() >= 0
        assert np.quantile(delay, 0.9) <= 6 * 3600 + 60  # a few wait past it for room
        placements.append(({"mode": mode}, p))
    rows = summarise(world, placements, grid, capacity_factor=2.0)
    assert rows[1]["cost_saved_pct"] > 0 and rows[2]["cost_saved_pct"] > 0
    assert rows[1]["km_added_mean"] == pytest.approx(0.0, abs=1.0)


def test_both_keeps_jobs_within_max_km_when_a_site_there_has_room(small_world) -> None:  # type: ignore[no-untyped-def]
    world, _, integral = small_world
    p = simulate_shift(world, integral, mode="both", window_h=2.0, max_km=800.0)
    assert np.mean(p.km <= 800.0 + 1e-6) > 0.95
