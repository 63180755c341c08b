"""Jobs that may wait: when and where a job with a start window runs (issue: energy in time).

A spec with ``start_by`` may start at any hour until then; one with ``max_km`` may go at
most that much farther than its nearest candidate for cheaper energy. Matching finds the
candidates as usual (the energy-weighted index, capacity and price filters); then:

1. :func:`order` ranks them for the packer with the start planner
   (:mod:`marketplace.energy.plan`): the site and hour of least expected energy cost (or
   carbon, or a mix: the grid's basis) over the job's time limit, within the window, first;
   candidates beyond ``max_km`` dropped (the nearest always stays).
2. After the packer chose the providers, :func:`plan_for` plans the chosen first
   provider's own best hour in the window, and prices the trade against running now at
   the nearest candidate: the job's ``start_at`` (None: it starts now) and ``plan``.

A held job is funded at once with that start (``JobEscrow.fundAt``): nobody may accept it
earlier and its renter may cancel it with a full refund until then. The marketplace does
not reserve the provider's capacity for it now (the provider counts it from its start,
``agents/provider/held.py``), and the planner knows only today's capacity, not the
capacity of later hours: a provider full at the start hour lets the acceptance window
pass and the renter cancels for a full refund.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marketplace.energy.grid import Grid
from marketplace.energy.plan import Site, StartPlan, job_power_kw, plan_job
from marketplace.errors import InvalidInputError, MarketplaceError
from marketplace.matching.records import Match
from protocol.schemas import JobSpec

logger = logging.getLogger(__name__)

# The escrow holds a funded job at most two days (JobEscrow.MAX_HOLD); the renter funds
# moments after matching, so a window may reach at most this far ahead of the match.
MAX_WINDOW_S = 2 * 86400 - 600


def check_window(spec: JobSpec, now: float) -> None:
    """Refuse a start window the escrow could not hold."""
    if spec.start_by is not None and spec.start_by > now + MAX_WINDOW_S:
        hours = (spec.start_by - now) / 3600
        raise InvalidInputError(
            f"start_by is {hours:.0f} h ahead; the escrow holds a job at most "
            f"{MAX_WINDOW_S // 3600} h: choose a start_by within that"
        )


def waits(spec: JobSpec) -> bool:
    """Whether the spec asks for planning in time or a distance bound at all."""
    return spec.start_by is not None or spec.max_km is not None


@dataclass(frozen=True)
class Planned:
    start_at: int | None  # None: starts now
    plan: dict[str, Any]


def _sites(matches: Sequence[Match], regions: dict[str, str]) -> list[Site]:
    return [
        Site(region=regions.get(m.provider_id, ""), km=m.distance_km, id=m.provider_id)
        for m in matches
    ]


def _window(spec: JobSpec, now: float) -> datetime | None:
    if spec.start_by is None or spec.start_by <= now:
        return None
    return datetime.fromtimestamp(spec.start_by, UTC)


def _plan(
    grid: Grid, spec: JobSpec, sites: list[Site], nearest: int, now: float, *, window: bool
) -> StartPlan | None:
    max_km = sites[nearest].km + spec.max_km if spec.max_km is not None else None
    return plan_job(
        source=grid.source,
        sites=sites,
        nearest=nearest,
        power_kw=job_power_kw(spec.resources.cpu),
        run_s=float(spec.time_limit_s),
        now=datetime.fromtimestamp(now, UTC),
        start_by=_window(spec, now) if window else None,
        basis=grid.basis,
        max_km=max_km,
    )


def order(
    spec: JobSpec, matches: list[Match], regions: dict[str, str], grid: Grid, now: float
) -> list[Match]:
    """The candidates for the packer: the planner's best site first, the others in rank
    order, none farther than ``max_km`` beyond the nearest."""
    if not waits(spec) or not matches:
        return matches
    nearest_km = min(m.distance_km for m in matches)
    allowed = [
        m
        for m in matches
        if spec.max_km is None or m.distance_km <= nearest_km + spec.max_km + 1e-9
    ]
    sites = _sites(allowed, regions)
    nearest = min(range(len(sites)), key=lambda i: sites[i].km)
    try:
        best = _plan(grid, spec, sites, nearest, now, window=True)
    except MarketplaceError as exc:  # no forecast for a region: keep the usual ranking
        logger.warning("start planner unavailable: %s", exc)
        return allowed
    if best is None:
        return allowed
    first = allowed[best.site]
    return [first, *(m for m in allowed if m is not first)]


def plan_for(
    spec: JobSpec,
    chosen: Match,
    candidates: Sequence[Match],
    regions: dict[str, str],
    grid: Grid,
    now: float,
) -> Planned | None:
    """The start and the energy trade of the provider the packer chose (first slot)."""
    if not waits(spec) or not candidates:
        return None
    near = min(candidates, key=lambda m: m.distance_km)
    try:
        mine = _plan(grid, spec, _sites([chosen], regions), 0, now, window=True)
        ref = _plan(grid, spec, _sites([near], regions), 0, now, window=False)
    except MarketplaceError as exc:
        logger.warning("start planner unavailable: %s", exc)
        return None
    if mine is None or ref is None:
        return None
    start_at = int(mine.start.timestamp()) if mine.delay_s > 0 else None
    saving = (1 - mine.cost / ref.cost) * 100 if ref.cost else 0.0
    co2 = (mine.co2_g, ref.co2_g)
    plan = {
        "start_at": start_at if start_at is not None else int(now),
        "provider": chosen.provider_id,
        "region": mine.region,
        "km_added": max(0.0, chosen.distance_km - near.distance_km),
        "cost_eur": mine.cost,
        "cost_now_eur": ref.cost,
        "saving_pct": saving,
        "co2_g": co2[0] if co2[0] == co2[0] else None,  # NaN: the source has no carbon
        "co2_now_g": co2[1] if co2[1] == co2[1] else None,
        "basis": mine.basis,
    }
    return Planned(start_at, plan)
