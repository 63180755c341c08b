"""The grid-impact study's pure parts: city table, site capacity, energy cost, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gridsim import (
    CITIES,
    Config,
    HourlyGrid,
    energy_cost_eur,
    make_world,
    parse_cities,
    simulate,
    site_capacity,
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
