"""Choose providers for a batch of jobs from their matching candidates.

Each job needs ``replicas`` distinct providers among its candidates; no provider may be
given more than its free capacity in any dimension. The choice maximises the total value
(the jobs' budgets) and, among equal values, wastes the least capacity: this is the
multi-dimensional multiple knapsack of ``marketplace.packing``. Within a job, a replica
goes to the best-ranked candidate the packing left room on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from marketplace.matching_types import Match, Provider
from protocol.schemas import JobSpec

logger = logging.getLogger(__name__)


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
    """Providers for each job (a list as long as its replicas, or shorter if none fit)."""
    free = {pid: list(p.free.as_vector()) for pid, p in providers.items()}
    order = sorted(items, key=lambda it: (-it.spec.max_price_wei, it.job_id))
    out: dict[str, list[Choice]] = {}
    for item in order:
        demand = _demand(item.spec)
        chosen: list[Choice] = []
        tentative: list[str] = []
        for match in item.matches:
            if len(chosen) == item.spec.replicas:
                break
            room = free.get(match.provider_id)
            if room is None or not all(d <= r + 1e-9 for d, r in zip(demand, room, strict=True)):
                continue
            provider = providers[match.provider_id]
            chosen.append(Choice(match, provider.price_wei, provider.reputation))
            tentative.append(match.provider_id)
            free[match.provider_id] = [r - d for r, d in zip(room, demand, strict=True)]
        if len(chosen) < item.spec.replicas:  # all or nothing: give the room back
            for pid in tentative:
                free[pid] = [r + d for r, d in zip(free[pid], demand, strict=True)]
        out[item.job_id] = chosen
    return out


def _demand(spec: JobSpec) -> tuple[float, float, float, float]:
    r = spec.resources
    return (float(r.cpu), float(r.memory_mb), float(r.gpu), float(r.disk_mb))
