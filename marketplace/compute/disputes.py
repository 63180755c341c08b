"""Verifiers for a disputed job: drawn at random by the matcher, never chosen by a party.

A dispute has two more providers run a single-replica job again, and their results
outvote the original's when both agree. Whoever picks them picks the outcome, so neither
the renter nor the original may: the marketplace draws them uniformly at random among
the eligible candidates for the job's spec (online, holding the image, with room, asking
no more than the job pays), excluding the original provider and the renter, and signs
the draw for the escrow (:mod:`marketplace.chain.matcher`). A random draw instead of the best
score keeps a renter from steering the choice through the job's origin or price.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from marketplace.errors import ConflictError
from marketplace.matching.records import Match

DISPUTE_VERIFIERS = 2


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
