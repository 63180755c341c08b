"""Choose providers for a batch of jobs from their matching candidates.

Each job needs ``replicas`` distinct providers among its candidates; no provider may be
given more than its free capacity in any dimension. The batch goes through the knapsack
packer (:func:`marketplace.packing.pack`: maximise the jobs' total value, then waste the
least capacity), one pack item per replica. The packer does not know that replicas of a
job must land on distinct providers, so a replica that shares a provider with its sibling
is moved to another candidate with room; a job keeps its providers only if every replica
is placed (all or nothing). Within a job, slots follow the matching rank. A batch of one
job skips the solver: its best-ranked candidates with room are the optimum.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from marketplace.matching.records import Match, Provider
from marketplace.packing import PackJob, PackProvider, pack
from protocol.schemas import JobSpec

logger = logging.getLogger(__name__)

PACK_TIME_LIMIT_S = 0.25
Vector = list[float]


@dataclass(frozen=True)
class Item:
    job_id: str
    spec: JobSpec
    matches: list[Match]


@dataclass(frozen=True)
class Choice:
    match: Match
    price_wei: int
    reputation: float


def choose(items: list[Item], providers: Mapping[str, Provider]) -> dict[str, list[Choice]]:
    """Providers for each job (as many as its replicas, or none when they do not all fit)."""
    candidate_ids = {m.provider_id for it in items for m in it.matches}
    free: dict[str, Vector] = {
        pid: list(providers[pid].free.as_vector()) for pid in candidate_ids if pid in providers
    }
    # One job alone has nothing to be packed against: taking its best-ranked candidates
    # with room is optimal, and skips the solver (a quote or a quiet batch).
    placed = _greedy(items[0], free) if len(items) == 1 else _pack(items, free)
    out: dict[str, list[Choice]] = {}
    for item in items:
        chosen = _distinct(item, placed.get(item.job_id, []), free)
        if len(chosen) < item.spec.replicas:
            for pid in chosen:  # all or nothing: give the room back
                _give(free, pid, _demand(item.spec))
            chosen = []
        rank = {m.provider_id: i for i, m in enumerate(item.matches)}
        by_id = {m.provider_id: m for m in item.matches}
        out[item.job_id] = [
            Choice(by_id[pid], providers[pid].price_wei, providers[pid].reputation)
            for pid in sorted(chosen, key=rank.__getitem__)
        ]
    return out


def _pack(items: list[Item], free: dict[str, Vector]) -> dict[str, list[str]]:
    """Run the packer; reserve what it placed in `free`; return job id -> provider ids."""
    pack_jobs = [
        PackJob(
            id=f"{item.job_id}#{r}",
            demand=_demand(item.spec),
            value=float(item.spec.max_price_wei),
            candidates=tuple(m.provider_id for m in item.matches if m.provider_id in free),
        )
        for item in items
        for r in range(item.spec.replicas)
    ]
    pack_providers = [PackProvider(id=pid, capacity=tuple(vec)) for pid, vec in free.items()]
    result = pack(pack_jobs, pack_providers, time_limit_s=PACK_TIME_LIMIT_S)
    logger.debug(
        "packed %d of %d replicas (%s, waste %.3f)",
        len(result.assignment),
        len(pack_jobs),
        result.method,
        result.waste,
    )
    placed: dict[str, list[str]] = {}
    for pack_id, pid in result.assignment.items():
        job_id = pack_id.rsplit("#", 1)[0]
        placed.setdefault(job_id, []).append(pid)
    demand_of = {item.job_id: _demand(item.spec) for item in items}
    for job_id, pids in placed.items():
        for pid in pids:
            _take(free, pid, demand_of[job_id])
    return placed


def _greedy(item: Item, free: dict[str, Vector]) -> dict[str, list[str]]:
    """The job's first candidates in rank order that have room; reserves them in `free`."""
    demand = _demand(item.spec)
    chosen: list[str] = []
    for m in item.matches:
        if len(chosen) == item.spec.replicas:
            break
        pid = m.provider_id
        if pid not in chosen and pid in free and _fits(demand, free[pid]):
            _take(free, pid, demand)
            chosen.append(pid)
    return {item.job_id: chosen}


def _distinct(item: Item, pids: list[str], free: dict[str, Vector]) -> list[str]:
    """The job's providers with duplicates moved to other candidates that have room."""
    demand = _demand(item.spec)
    chosen: list[str] = []
    for pid in pids:
        if pid not in chosen:
            chosen.append(pid)
            continue
        _give(free, pid, demand)  # the duplicate's reservation goes back
        for m in item.matches:
            other = m.provider_id
            if other not in chosen and other in free and _fits(demand, free[other]):
                _take(free, other, demand)
                chosen.append(other)
                break
    return chosen


def _demand(spec: JobSpec) -> tuple[float, float, float, float]:
    r = spec.resources
    return (float(r.cpu), float(r.memory_mb), float(r.gpu), float(r.disk_mb))


def _fits(demand: tuple[float, ...], room: Vector) -> bool:
    return all(d <= r + 1e-9 for d, r in zip(demand, room, strict=True))


def _take(free: dict[str, Vector], pid: str, demand: tuple[float, ...]) -> None:
    free[pid] = [r - d for r, d in zip(free[pid], demand, strict=True)]


def _give(free: dict[str, Vector], pid: str, demand: tuple[float, ...]) -> None:
    free[pid] = [r + d for r, d in zip(free[pid], demand, strict=True)]
