"""The simulated day's world: provider sites in every city and the jobs they receive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from marketplace.energy import PriceSource
from marketplace.energy.sources import nearest_region_indices
from protocol.cities import CITIES

WEIGHTS_KM = (0.0, 500.0, 1000.0, 2000.0, 4000.0, 12800.0)
DAY = datetime(2025, 1, 8, tzinfo=UTC)  # a Wednesday of the bundled series
WARMUP_S = 6 * 3600
DAY_S = 86400
CAPACITY_FACTOR = 2.0  # total cores over the day's mean demand in cores
MIN_SITE_CORES = 8  # the largest job fits every site
CORES = (1, 2, 4, 8)
CORES_P = (0.35, 0.30, 0.20, 0.15)
RUN_MEDIAN_S, RUN_SIGMA, RUN_MIN_S, RUN_MAX_S = 1800.0, 1.0, 120.0, 8 * 3600.0
JITTER_DEG = 0.3
LOCAL_HOUR_PROFILE = np.array(
    [0.25, 0.2, 0.2, 0.2, 0.2, 0.25, 0.35, 0.55, 0.8, 1.0, 1.0, 1.0,
     0.95, 1.0, 1.0, 1.0, 0.95, 0.85, 0.7, 0.6, 0.5, 0.45, 0.35, 0.3]
)  # fmt: skip
"""Relative arrival rate by local hour: a working day, never zero at night."""


@dataclass(frozen=True)
class Config:
    """One run of the study."""

    jobs: int = 60_000
    seed: int = 2025
    weights: tuple[float, ...] = WEIGHTS_KM
    capacity_factor: float = CAPACITY_FACTOR
    day: datetime = DAY


@dataclass(frozen=True)
class World:
    """Sites and jobs of one simulated day (times in seconds from the day's 00:00 UTC)."""

    site_names: tuple[str, ...]
    site_lat: NDArray[np.float64]
    site_lon: NDArray[np.float64]
    site_region: NDArray[np.intp]
    site_cores: NDArray[np.int64]
    job_lat: NDArray[np.float64]
    job_lon: NDArray[np.float64]
    job_cores: NDArray[np.int64]
    job_run_s: NDArray[np.float64]
    job_arrival_s: NDArray[np.float64]
    counted: NDArray[np.bool_]


def site_capacity(
    population_m: NDArray[np.float64], total: float, *, floor: int = MIN_SITE_CORES
) -> NDArray[np.int64]:
    """Whole cores per site, proportional to sqrt(population), at least ``floor`` each.

    The proportional part is scaled so the sum is ``total`` (rounded per site), unless the
    floors alone exceed it.
    """
    share = np.sqrt(population_m)
    lo, hi = 0.0, total / float(share.min())
    for _ in range(60):  # bisection on the scale; the sum is monotone in it
        mid = (lo + hi) / 2
        if np.maximum(floor, mid * share).sum() < total:
            lo = mid
        else:
            hi = mid
    return np.maximum(floor, np.rint(hi * share)).astype(np.int64)


def make_world(cfg: Config, source: PriceSource) -> World:
    """Sites in every city and ``cfg.jobs`` counted jobs plus warm-up jobs (seeded)."""
    rng = np.random.default_rng(cfg.seed)
    pop = np.array([c.population_m for c in CITIES])
    lat = np.array([c.lat for c in CITIES])
    lon = np.array([c.lon for c in CITIES])
    # Two days of arrivals, day -1 and day 0; keep day 0 and the last hours of day -1.
    n = 2 * cfg.jobs
    city = rng.choice(len(CITIES), n, p=pop / pop.sum())
    local_hour = rng.choice(24, n, p=LOCAL_HOUR_PROFILE / LOCAL_HOUR_PROFILE.sum())
    offset_h = np.rint(lon[city] / 15.0)
    utc_s = ((local_hour - offset_h) * 3600 + rng.uniform(0, 3600, n)) % DAY_S
    day = np.where(np.arange(n) < cfg.jobs, 0, -1)
    arrival = day * DAY_S + utc_s
    cores = rng.choice(np.array(CORES), n, p=np.array(CORES_P))
    run_s = np.clip(RUN_MEDIAN_S * np.exp(rng.normal(0, RUN_SIGMA, n)), RUN_MIN_S, RUN_MAX_S)
    jlat = np.clip(lat[city] + rng.normal(0, JITTER_DEG, n), -89.9, 89.9)
    jlon = (lon[city] + rng.normal(0, JITTER_DEG, n) + 180.0) % 360.0 - 180.0
    keep = arrival >= -WARMUP_S
    order = np.argsort(arrival[keep], kind="stable")
    counted = (day == 0)[keep][order]
    mean_demand = float((cores * run_s)[day == 0].sum()) / DAY_S
    regions = source.regions()
    return World(
        site_names=tuple(c.name for c in CITIES),
        site_lat=lat,
        site_lon=lon,
        site_region=nearest_region_indices(regions, lat, lon),
        site_cores=site_capacity(pop, cfg.capacity_factor * mean_demand),
        job_lat=jlat[keep][order],
        job_lon=jlon[keep][order],
        job_cores=cores[keep][order],
        job_run_s=run_s[keep][order],
        job_arrival_s=arrival[keep][order],
        counted=counted,
    )
