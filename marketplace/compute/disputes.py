"""Verifiers for a disputed job: drawn at random by the matcher, never chosen by a party.

A dispute has two more providers run a single-replica job again, and their results
outvote the original's when both agree. Whoever picks them picks the outcome, so neither
the renter nor the original may: the marketplace draws them uniformly at random among
every provider in the network that can run the job (online, holding the image or able
to pull it, with room, asking no more than the job pays), wherever it is, excluding the
original provider and the renter, and signs the draw for the escrow
(:mod:`marketplace.chain.matcher`).
Drawing from the whole network, not the best scores near the job's origin, keeps a
renter from steering the choice by where it says it is or what it pays.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence

from marketplace.compute.images import pinned_digest
from marketplace.errors import ConflictError
from marketplace.geo import haversine_km
from marketplace.matching.records import Match, Provider
from protocol.schemas import JobSpec

DISPUTE_VERIFIERS = 2


def eligible(providers: Mapping[str, Provider], spec: JobSpec) -> list[Match]:
    """Every online provider with the image (or, for a renter's image, any) and room for
    `spec`, anywhere (distance and energy level filled in for the record, not for
    choosing)."""
    need = spec.resources
    pullable = pinned_digest(spec.image) is not None  # a renter's image: anyone can pull it
    out = []
    for p in providers.values():
        free = p.free
        fits = (
            free.cpu >= need.cpu
            and free.memory_mb >= need.memory_mb
            and free.gpu >= need.gpu
            and free.disk_mb >= need.disk_mb
        )
        if not (p.online and fits and (pullable or spec.image in p.images)):
            continue
        km = haversine_km(spec.origin.lat, spec.origin.lon, p.lat, p.lon)
        out.append(Match(p.id, km, p.energy_level, km, km))
    return out


def draw_verifiers(
    matches: Sequence[Match],
    *,
    cost_of: Callable[[str], int | None],
    job_price: int,
    exclude: set[str],
    choice: Callable[[list[str]], str] = secrets.choice,
) -> list[str]:
    """Two distinct providers drawn uniformly from the eligible `matches`.

    Args:
        matches: The job spec's candidates (online, image, capacity already checked).
        cost_of: What a provider would charge for the job (None: unknown provider).
        job_price: What the job pays per replica; dearer providers would refuse it.
        exclude: Addresses that may not verify (the original provider, the renter).
        choice: The random draw (a CSPRNG by default; tests pass a seeded one).

    Raises:
        ConflictError: fewer than two eligible providers.
    """
    lowered = {a.lower() for a in exclude}
    pool = []
    for m in matches:
        cost = cost_of(m.provider_id)
        if m.provider_id.lower() in lowered or cost is None or cost > job_price:
            continue
        pool.append(m.provider_id)
    pool = sorted(set(pool))
    if len(pool) < DISPUTE_VERIFIERS:
        raise ConflictError(
            f"only {len(pool)} provider(s) besides the original can verify this job now "
            f"(online, holding its image, with room, asking at most its price); a dispute "
            f"needs {DISPUTE_VERIFIERS}: try again when more providers are online"
        )
    drawn: list[str] = []
    while len(drawn) < DISPUTE_VERIFIERS:
        pick = choice([p for p in pool if p not in drawn])
        drawn.append(pick)
    return drawn
