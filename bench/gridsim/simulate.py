"""The day run batch by batch through the real matching index, and the figures of a run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.gridsim.energy import PUE, WATTS_PER_CORE, HourlyGrid, energy_cost_eur
from bench.gridsim.world import WARMUP_S, World
from marketplace.geo import chord_to_great_circle_km, to_xyz_km
from marketplace.matching import (
    IndexSnapshot,
    JobRequest,
    ProviderTable,
    Resources,
    distance_only,
)

BATCH_S = 60
K = 8
MEMORY_MB_PER_CORE = 2048


@dataclass(frozen=True)
class Placement:
    """Where and when each job of a world ran under one weight."""

    site: NDArray[np.int64]
    start_s: NDArray[np.float64]
    km: NDArray[np.float64]
    nearest_km: NDArray[np.float64]
    level: NDArray[np.int64]


def _gc_km(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Great-circle km between rows of ``a`` (m, 3) and ``b`` (n, 3), as in matching."""
    chord = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    return chord_to_great_circle_km(chord)


def simulate(world: World, grid: HourlyGrid, weight_km: float) -> Placement:
    """Run the day with the real matching index at ``weight_km``; see the module docs."""
    n_jobs, n_sites = world.job_cores.shape[0], world.site_cores.shape[0]
    ids = [f"{i:03d}-{name}" for i, name in enumerate(world.site_names)]
    site_xyz = to_xyz_km(world.site_lat, world.site_lon)
    free = world.site_cores.astype(np.int64).copy()
    requests = [
        JobRequest(
            lat=float(world.job_lat[j]),
            lon=float(world.job_lon[j]),
            resources=Resources(
                cpu=float(world.job_cores[j]),
                memory_mb=int(world.job_cores[j]) * MEMORY_MB_PER_CORE,
            ),
        )
        for j in range(n_jobs)
    ]
    job_xyz = to_xyz_km(world.job_lat, world.job_lon)
    site = np.full(n_jobs, -1, dtype=np.int64)
    start = np.zeros(n_jobs)
    km = np.zeros(n_jobs)
    nearest = np.zeros(n_jobs)
    level = np.zeros(n_jobs, dtype=np.int64)
    ends: list[tuple[float, int, int]] = []  # (end time, site, cores), kept sorted lazily
    waiting: list[int] = []
    nxt = 0
    t = -float(WARMUP_S) + BATCH_S
    while nxt < n_jobs or waiting:
        while nxt < n_jobs and world.job_arrival_s[nxt] < t:
            waiting.append(nxt)
            nxt += 1
        if ends:
            ends.sort()
            done = 0
            while done < len(ends) and ends[done][0] <= t:
                free[ends[done][1]] += ends[done][2]
                done += 1
            del ends[:done]
        site_level = grid.levels(math.floor(t / 3600))[world.site_region]
        # Rounds: a job whose k candidates filled up earlier in this batch asks again
        # against the remaining capacity; it waits for the next batch only when a round
        # places nobody (no site it can reach in its top k has room).
        while waiting:
            table = ProviderTable.from_arrays(
                ids=ids, lat=world.site_lat, lon=world.site_lon, cpu=free,
                memory_mb=free * MEMORY_MB_PER_CORE, gpu=np.zeros(n_sites),
                disk_mb=np.zeros(n_sites), price_wei=np.zeros(n_sites), level=site_level,
                reputation=np.ones(n_sites), online=np.ones(n_sites, dtype=np.bool_), holders={},
            )  # fmt: skip
            snap = IndexSnapshot.build(table, weight_km=weight_km, scorer=distance_only)
            found = snap.query_batch([requests[j] for j in waiting], k=K)
            dist = _gc_km(job_xyz[waiting], site_xyz)
            still: list[int] = []
            for row, (j, matches) in enumerate(zip(waiting, found, strict=True)):
                need = int(world.job_cores[j])
                pick = next((m for m in matches if free[table.row_of[m.provider_id]] >= need), None)
                if pick is None:
                    still.append(j)
                    continue
                s = table.row_of[pick.provider_id]
                nearest[j] = float(dist[row][free >= need].min())
                free[s] -= need
                site[j], start[j], km[j] = s, t, pick.distance_km
                level[j] = pick.energy_level
                ends.append((t + float(world.job_run_s[j]), s, need))
            if len(still) == len(waiting):
                break
            waiting = still
        t += BATCH_S
    return Placement(site=site, start_s=start, km=km, nearest_km=nearest, level=level)


def summarise(
    world: World,
    placements: Sequence[tuple[dict[str, Any], Placement]],
    grid: HourlyGrid,
    *,
    capacity_factor: float,
) -> list[dict[str, Any]]:
    """One row per placement over the counted jobs, led by its ``label`` keys (mode,
    window, weight...); the first placement is the baseline."""
    c = world.counted
    kwh = float((world.job_cores * world.job_run_s)[c].sum() * WATTS_PER_CORE * PUE / 3.6e6)
    totals = []
    for _, p in placements:
        region = world.site_region[p.site]
        cost, co2 = (
            energy_cost_eur(
                start_s=p.start_s, run_s=world.job_run_s, cores=world.job_cores,
                region=region, price_of_hour=per_hour,
            )
            for per_hour in (grid.prices, grid.carbon)  # EUR; kg of CO2
        )  # fmt: skip
        totals.append((float(cost[c].sum()), float(co2[c].sum())))
    base, base_co2 = totals[0]
    rows = []
    for (label, p), (total, co2_kg) in zip(placements, totals, strict=True):
        added = (p.km - p.nearest_km)[c]
        delay = (p.start_s - world.job_arrival_s)[c]
        rows.append(
            {
                **label,
                "capacity_factor": capacity_factor,
                "jobs": int(c.sum()),
                "energy_cost_eur": round(total, 2),
                "eur_per_mwh": round(total / kwh * 1000.0, 2),
                "cost_saved_pct": round(100.0 * (1.0 - total / base), 2),
                "co2_kg": round(co2_kg, 1),
                "g_co2_per_kwh": round(co2_kg / kwh * 1000.0, 1),
                "co2_saved_pct": round(100.0 * (1.0 - co2_kg / base_co2), 2),
                "km_added_mean": round(float(added.mean()), 1),
                "km_added_p95": round(float(np.percentile(added, 95)), 1),
                "moved_pct": round(100.0 * float((added > 1.0).mean()), 1),
                "km_mean": round(float(p.km[c].mean()), 1),
                "km_vs_nearest_now": round(
                    float(p.km[c].mean() - placements[0][1].km[c].mean()), 1
                ),
                "level_mean": round(float(p.level[c].mean()), 2),
                "waited_pct": round(100.0 * float((delay > BATCH_S).mean()), 2),
                "delay_mean_h": round(float(delay.mean()) / 3600.0, 2),
            }
        )
    return rows
