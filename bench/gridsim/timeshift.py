"""The day run with start windows: jobs may wait for a cheaper hour (and place).

Every job carries the same slack window (``window_h``): it may start any time up to that
many hours after it arrives. At each batch the jobs that are due ask the marketplace's
start planner (:func:`marketplace.energy.plan.choose`) for the start and site of least
expected energy cost over their run, with the bundled series as the forecast:

- ``temporal``: the candidates are the job's nearest site (any hour in the window) and,
  when that one is full now, the nearest site with room now;
- ``both``: every site within ``max_km`` of the origin (the nearest always).

A plan for now starts the job at once (its site has room: the planner only offers sites
with room for now). A plan for a later hour holds the job until that hour; then it asks
again, so a site that filled up meanwhile sends it to the next best hour or place. Jobs
whose window has passed and that find no site with room wait for the next batch, as in
the spatial runs. Capacity is released when a job ends.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from bench.gridsim.energy import HourlyGrid
from bench.gridsim.simulate import BATCH_S, Placement, _gc_km
from bench.gridsim.world import WARMUP_S, World
from marketplace.energy import EnergyBasis, Forecast
from marketplace.energy.plan import ForecastIntegral, candidate_starts, choose
from marketplace.geo import to_xyz_km

MODES = ("temporal", "both")
HORIZON_H = 48  # hours of forecast past the day's end: the longest window plus the longest run


def day_integral(
    world: World, grid: HourlyGrid, basis: EnergyBasis | None = None
) -> ForecastIntegral:
    """The forecast from the start of the warm-up to past the day's end, as the planner
    reads it (times in the integral are seconds from the warm-up's start)."""
    first = -math.ceil(WARMUP_S / 3600)
    hours = range(first, 24 + HORIZON_H)
    fc = Forecast(
        tuple(grid.region_ids),
        grid.at(first),
        np.stack([grid.prices(h) for h in hours], axis=1),
        np.stack([grid.carbon(h) for h in hours], axis=1),
    )
    return ForecastIntegral(fc, basis)


class Calendar:
    """Cores booked per site and minute: running jobs and jobs held for a later start.

    A job books its site's cores from its start to its end (whole minutes, rounded out),
    so a site is available at a start when its bookings over the run leave room.
    """

    def __init__(self, cores: NDArray[np.int64], first_s: float, last_s: float) -> None:
        self.cores = cores
        self.first_s = first_s
        self.used = np.zeros((cores.shape[0], math.ceil((last_s - first_s) / SLOT_S) + 1), np.int64)

    def _span(self, start_s: float, run_s: float) -> tuple[int, int]:
        a = math.floor((start_s - self.first_s) / SLOT_S)
        b = math.ceil((start_s + run_s - self.first_s) / SLOT_S)
        return a, min(b, self.used.shape[1])

    def room(
        self, start_s: float, run_s: float, need: int, sites: NDArray[np.intp] | None = None
    ) -> NDArray[np.bool_]:
        """Which sites (all, or ``sites``) can take ``need`` cores from ``start_s`` for
        ``run_s`` seconds."""
        a, b = self._span(start_s, run_s)
        if sites is None:
            return np.asarray(self.used[:, a:b].max(axis=1) + need <= self.cores)
        return np.asarray(self.used[sites, a:b].max(axis=1) + need <= self.cores[sites])

    def book(self, site: int, start_s: float, run_s: float, need: int) -> None:
        a, b = self._span(start_s, run_s)
        self.used[site, a:b] += need


SLOT_S = 60


def simulate_shift(
    world: World,
    integral: ForecastIntegral,
    *,
    mode: str,
    window_h: float,
    max_km: float | None = None,
) -> Placement:
    """Run the day with every job's window ``window_h`` in ``mode`` (see the module docs)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}; use one of {MODES}")
    n_jobs = world.job_cores.shape[0]
    offset = float(math.ceil(WARMUP_S / 3600) * 3600)  # day seconds -> integral seconds
    site_xyz = to_xyz_km(world.site_lat, world.site_lon)
    job_xyz = to_xyz_km(world.job_lat, world.job_lon)
    rows = np.asarray(world.site_region, dtype=np.intp)
    cal = Calendar(world.site_cores.astype(np.int64), -offset, (24 + HORIZON_H) * 3600.0)
    site = np.full(n_jobs, -1, dtype=np.int64)
    start = np.zeros(n_jobs)
    km = np.zeros(n_jobs)
    nearest_km = np.zeros(n_jobs)
    window_s = window_h * 3600.0
    waiting: list[int] = []
    nxt = 0
    t = -float(WARMUP_S) + BATCH_S
    while nxt < n_jobs or waiting:
        while nxt < n_jobs and world.job_arrival_s[nxt] < t:
            waiting.append(nxt)
            nxt += 1
        if not waiting:
            t += BATCH_S
            continue
        dist = _gc_km(job_xyz[waiting], site_xyz)
        still: list[int] = []
        for row, j in enumerate(waiting):
            need, run = int(world.job_cores[j]), float(world.job_run_s[j])
            d = dist[row]
            left = max(0.0, float(world.job_arrival_s[j]) + window_s - t)
            starts = candidate_starts(t + offset, left) - offset
            near = int(np.argmin(d))
            if mode == "temporal":
                cand, nearest_i = np.array([near], dtype=np.intp), 0
            else:
                cand = np.flatnonzero(d <= max_km) if max_km is not None else np.arange(d.size)
                if near not in cand:
                    cand = np.append(cand, near)
                nearest_i = int(np.flatnonzero(cand == near)[0])
            avail = np.stack([cal.room(st, run, need, cand) for st in starts], axis=1)
            picked = choose(
                integral, rows=rows[cand], km=d[cand], available=avail, nearest=nearest_i,
                now_s=t + offset, window_s=left, run_s=run,
            )  # fmt: skip
            room_now = cal.room(t, run, need)
            if picked is None:  # none allowed has room in the window: nearest with room now
                if not room_now.any():
                    still.append(j)
                    continue
                s, at = int(np.argmin(np.where(room_now, d, np.inf))), t
            else:
                s, at = int(cand[picked[0]]), picked[1] - offset
            # km added: against the nearest site that had room for the run at its start
            room_then = room_now if at == t else cal.room(at, run, need)
            nearest_km[j] = float(d[room_then | (np.arange(d.shape[0]) == s)].min())
            cal.book(s, at, run, need)
            site[j], start[j], km[j] = s, at, float(d[s])
        waiting = still
        t += BATCH_S
    return Placement(
        site=site, start_s=start, km=km, nearest_km=nearest_km, level=np.zeros(n_jobs, np.int64)
    )


def delay_h(world: World, p: Placement) -> NDArray[np.float64]:
    """Hours from each job's arrival to its start."""
    return np.asarray((p.start_s - world.job_arrival_s) / 3600.0, dtype=np.float64)
