"""Grid-impact study: one simulated day of jobs, energy-aware in place and in time vs nearest.

Run from the repository root::

    .venv/bin/python -m bench.grid            # 60 000 jobs
    .venv/bin/python -m bench.grid --quick    # 15 000 jobs, same world scaled down (CI);
                                              # weights 0 and the default only, one bound

The world (every figure below is an assumption of the study, stated once here):

- **Sites**: one provider site in each of the 112 real cities of :data:`CITIES`
  (coordinates of the city centre, approximate metropolitan population). A site's price
  region is the nearest bundled region, as the service maps providers. Its cores are
  proportional to the square root of the population (at least :data:`MIN_SITE_CORES`),
  scaled so that all sites together hold :data:`CAPACITY_FACTOR` times the day's mean
  demand (so about 50% average utilisation).
- **Jobs**: origins drawn by population, jittered by about 30 km; arrivals follow a
  local-time working-day profile (:data:`LOCAL_HOUR_PROFILE`, local time from longitude);
  1, 2, 4 or 8 cores; run time log-normal with a 30-minute median (2 minutes to 8 hours).
  Jobs from the 6 hours before the day warm the sites up and are not counted.
- **Energy**: :data:`WATTS_PER_CORE` per busy core times a data-centre :data:`PUE`. The
  cost of a job is its energy in each hour it runs times its site's region price in that
  hour (the bundled synthetic series, EUR/MWh). Savings in percent do not depend on the
  watts or the PUE, which only scale every cost alike.
- **Matching**: every :data:`BATCH_S` seconds the jobs that arrived are matched by the
  real index (:class:`marketplace.matching.IndexSnapshot`, ``distance_only`` scorer, the
  current hour's region levels, each site's free cores), ``k`` = :data:`K` candidates;
  in arrival order each job takes its best-ranked candidate that still has room (what the
  service's assignment does for one job). Jobs whose candidates all filled up within the
  batch ask again against the remaining capacity; a job waits for the next batch only
  when no candidate has room. Capacity is released when a job ends.

- **Start windows** (:mod:`bench.gridsim.timeshift`): every job may start up to
  ``window_h`` (0, 2, 6, 12) hours after it arrives. ``temporal``: its nearest site, at
  the hour the start planner (:mod:`marketplace.energy.plan`) finds cheapest over the run;
  ``both``: any site within ``max_km`` of its origin, at any hour of the window. The
  bundled series is the forecast (known exactly: an upper bound for a real forecast).
  A planned job books its site's cores for its run, so a site booked full at an hour
  cannot take more then, and a job that finds no room anywhere in its window waits.
- **Carbon**: each job's energy x its site region's carbon intensity hour by hour (the
  bundled synthetic series; ``co2_saved_pct``).

Figures per row: ``cost_saved_pct`` and ``co2_saved_pct`` against the nearest site with
room now (weight 0, no window), ``km_added_*``: distance to the chosen site minus distance
to the nearest site that had room for the job when it started, ``moved_pct``: share of
jobs sent past that nearest site, ``delay_mean_h``: arrival to start. Seeded and
deterministic. Writes ``bench/results/grid.json`` and
``docs/grid-impact.png`` (into ``$DCLOUD_BENCH_RESULTS`` instead when that is set).

The study itself is the package :mod:`bench.gridsim` (cities, world, energy, simulation,
plot); this module runs it at the weights above and reports.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.gridsim import BATCH_S, CITIES, PUE, WATTS_PER_CORE, Config, K, plot, run
from bench.report import print_table, write_results
from marketplace.matching import DEFAULT_ENERGY_WEIGHT_KM

logger = logging.getLogger(__name__)

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
WINDOWS_H = (0.0, 2.0, 6.0, 12.0)
BOTH_MAX_KM: tuple[float | None, ...] = (1000.0, 2000.0, None)
"""Distance bounds of the ``both`` runs; the first of 2000 km is the headline one."""
HEADLINE_MAX_KM = 2000.0


def _first_reaching(rows: Sequence[dict[str, Any]], pct: float) -> float | None:
    return next((r["weight"] for r in rows if r["cost_saved_pct"] >= pct), None)


def _verdict(rows: Sequence[dict[str, Any]], default: float) -> str:
    sweep = [r for r in rows if r["mode"] in ("nearest", "spatial")]
    d = next(r for r in sweep if r["weight"] == default)
    reach = _first_reaching(sweep, 25.0)
    spatial = (
        f"Spatial only at the default weight ({default:.0f} km/level) saves "
        f"{d['cost_saved_pct']:.1f}% ({'meets' if d['cost_saved_pct'] >= 25 else 'misses'} "
        f"the 25% target) for {d['km_added_mean']:.0f} km added on average"
        + (
            f"; the smallest weight tried that reaches 25% is {reach:.0f} km/level."
            if reach is not None
            else "; no weight tried reaches 25%."
        )
    )
    both = next(
        (r for r in rows if r["mode"] == "both" and r["window_h"] == 6.0
         and r["max_km"] == HEADLINE_MAX_KM),
        None,
    )  # fmt: skip
    temporal = next((r for r in rows if r["mode"] == "temporal" and r["window_h"] == 6.0), None)
    if both is None or temporal is None:
        return spatial
    ok_cost = both["cost_saved_pct"] >= 45.0
    ok_km = both["km_added_mean"] <= d["km_added_mean"] / 2
    return (
        f"{spatial} Temporal only with a 6 h window saves {temporal['cost_saved_pct']:.1f}% "
        f"(delay {temporal['delay_mean_h']:.1f} h). Both with a 6 h window and "
        f"max_km {HEADLINE_MAX_KM:.0f} save {both['cost_saved_pct']:.1f}% of energy cost "
        f"({'meets' if ok_cost else 'misses'} the 45% target) and "
        f"{both['co2_saved_pct']:.1f}% of CO2 for {both['km_added_mean']:.0f} km added on "
        f"average ({'within' if ok_km else 'over'} half of spatial only's; "
        f"{both['km_vs_nearest_now']:.0f} km farther than nearest-now on average, as "
        f"held jobs' bookings fill near sites) and {both['delay_mean_h']:.1f} h of delay."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Grid impact of energy-aware placement")
    parser.add_argument("--quick", action="store_true", help="15 000 jobs instead of 60 000")
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    default = DEFAULT_ENERGY_WEIGHT_KM
    if args.quick:
        cfg = Config(jobs=15_000, seed=args.seed, weights=(0.0, default))
        bounds: tuple[float | None, ...] = (HEADLINE_MAX_KM,)
    else:
        cfg = Config(jobs=60_000, seed=args.seed)
        bounds = BOTH_MAX_KM
    rows = run(cfg, windows_h=WINDOWS_H, both_max_km=bounds)
    # How much the answer leans on spare capacity: the default weight with less and more.
    sensitivity = []
    if not args.quick:
        for factor in (1.25, 4.0):
            sensitivity += run(replace(cfg, capacity_factor=factor, weights=(0.0, default)))[1:]
    main_cols = [
        "mode", "window_h", "weight", "max_km", "cost_saved_pct", "co2_saved_pct",
        "km_added_mean", "km_added_p95", "km_vs_nearest_now", "delay_mean_h", "moved_pct",
        "km_mean", "eur_per_mwh", "g_co2_per_kwh", "waited_pct",
    ]  # fmt: skip
    print_table(
        rows, title="Grid impact: energy-aware in place and time vs nearest now", columns=main_cols
    )
    if sensitivity:
        print_table(
            sensitivity,
            title="Sensitivity: default weight with less / more spare capacity",
            columns=["capacity_factor", *main_cols],
        )
    verdict = _verdict(rows, default)
    print("\n" + verdict)
    out = os.environ.get("DCLOUD_BENCH_RESULTS")
    png = (Path(out) if out else DOCS_DIR) / "grid-impact.png"
    plot(rows, png, default_km=default, headline_km=HEADLINE_MAX_KM)
    print(f"plot: {png}")
    write_results(
        "grid",
        rows + sensitivity,
        title="Grid impact (energy-aware in place and time vs nearest now, one simulated day)",
        notes=(
            f"{cfg.jobs:,} jobs from {len(CITIES)} real cities (origins by population, "
            f"local working-day arrivals), one site per city with cores ~ sqrt(population) "
            f"and {cfg.capacity_factor:g}x the day's mean demand in total; 2025-01-08 "
            f"(UTC) of the bundled synthetic price and carbon series; batches every "
            f"{BATCH_S} s, k = {K}, real `IndexSnapshot` with the hour's levels and free "
            f"cores for `nearest` (weight 0) and `spatial`. `temporal` / `both`: the start "
            "planner with the bundled series as an exact forecast, every job given the same "
            "window (`window_h`), `both` bounded by `max_km` (empty: no bound), capacity "
            f"booked ahead. Energy = {WATTS_PER_CORE:g} W per busy core x PUE {PUE:g}, "
            "priced (and its CO2 counted) hour by hour at the site's region. `km_added`: "
            "distance to the chosen site minus distance to the nearest site with room when "
            "the job started; `km_vs_nearest_now`: mean distance minus nearest-now's mean "
            "distance; `delay_mean_h`: arrival to start. "
            + ("Last rows: the default weight with 1.25x and 4x capacity. " if sensitivity else "")
            + verdict
        ),
        columns=["capacity_factor", *main_cols],
    )


if __name__ == "__main__":
    main()
