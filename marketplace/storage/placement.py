"""Where a renter's shards go: n distinct nodes per segment, spread over regions, by reputation.

Pure functions, no I/O. For every segment of an object, :func:`place` picks ``n`` distinct
nodes that still have room for one more shard, then counts that shard against the node's
free space before placing the next segment (so one request never overfills a node).

Within a segment the choice is, in order of priority:

1. **Geographic spread**: regions are filled round-robin. Every region that has an
   eligible node gets one shard before any region gets a second, so a regional outage
   costs as few shards as the network allows.
2. **Reliability**: inside a round, nodes are ranked by a weighted random key
   (Efraimidis-Spirakis sampling, ``u ** (1 / w)``): a node of weight ``w`` is drawn with
   probability proportional to ``w``, so reliable nodes hold more shards over time but a
   less reliable node still receives some: reliable nodes are called on more often,
   while the others still hold a share of the data.

The weight is a pluggable policy (:data:`Weight`, higher is better, must be > 0):
:func:`hot_weight` favours reputation (``0.05 + reputation ** 2``), :func:`cold_weight`
weighs every node the same, for cold data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from marketplace.errors import InvalidInputError, UnavailableError

logger = logging.getLogger(__name__)

__all__ = ["Candidate", "Weight", "cold_weight", "hot_weight", "place"]


@dataclass(frozen=True)
class Candidate:
    """A node that may receive shards: online and not excluded by the renter."""

    id: str
    region: str
    free_bytes: int
    reputation: float


Weight = Callable[[Candidate], float]
"""A node's sampling weight: higher means chosen more often; must be finite and > 0."""


def hot_weight(node: Candidate) -> float:
    """Reliable nodes first: a node of reputation 1 is drawn ~20x as often as one of 0."""
    rep = min(1.0, max(0.0, node.reputation))
    return 0.05 + rep * rep


def cold_weight(node: Candidate) -> float:
    """Every node the same: less reliable nodes take a fair share of cold data."""
    return 1.0


def place(
    candidates: Sequence[Candidate],
    *,
    n: int,
    segments: int,
    shard_bytes: int,
    rng: np.random.Generator,
    weight: Weight = hot_weight,
) -> list[list[int]]:
    """Choose ``n`` distinct candidates for each of ``segments`` segments.

    Parameters
    ----------
    candidates : sequence of Candidate
        The nodes to choose from (ids must be distinct).
    n : int
        Shards per segment; each goes to a different node.
    segments : int
        How many segments to place.
    shard_bytes : int
        Size of each shard; a node is eligible while its remaining free space holds one.
    rng : numpy.random.Generator
        Source of the weighted random keys (seed it for reproducible placements).
    weight : Weight
        Sampling weight policy.

    Returns
    -------
    list of list of int
        ``result[s]`` holds ``n`` distinct indexes into ``candidates``, regions round-robin
        first, then by weighted random key.

    Raises
    ------
    InvalidInputError
        ``n`` or ``segments`` below 1, ``shard_bytes`` negative, or duplicate ids.
    UnavailableError
        Fewer than ``n`` candidates have room for a segment's shards.
    """
    if n < 1 or segments < 1 or shard_bytes < 0:
        raise InvalidInputError("n and segments must be at least 1 and shard_bytes >= 0")
    if len({c.id for c in candidates}) != len(candidates):
        raise InvalidInputError("candidate ids must be distinct")
    free = np.array([c.free_bytes for c in candidates], dtype=np.int64)
    weights = np.array([weight(c) for c in candidates], dtype=np.float64)
    if len(candidates) and not (np.isfinite(weights).all() and (weights > 0).all()):
        raise InvalidInputError("every weight must be finite and greater than 0")
    _, region = np.unique([c.region for c in candidates], return_inverse=True)
    inverse_w = 1.0 / weights if len(candidates) else weights
    out: list[list[int]] = []
    for s in range(segments):
        eligible = np.flatnonzero(free >= shard_bytes)
        if len(eligible) < n:
            raise UnavailableError(
                f"only {len(eligible)} online storage nodes have {shard_bytes} bytes free "
                f"for segment {s} (after the segments before it), and {n} distinct nodes are "
                "needed: lower n, put a smaller object, or wait for more nodes"
            )
        chosen = eligible[_pick(region[eligible], inverse_w[eligible], n, rng)]
        free[chosen] -= shard_bytes
        out.append([int(i) for i in chosen])
    return out


def _pick(
    region: np.ndarray, inverse_w: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Positions of the n winners: round-robin over regions, weighted keys within a round."""
    keys = rng.random(len(region)) ** inverse_w  # Efraimidis-Spirakis: larger key wins
    by_key = np.argsort(-keys, kind="stable")
    reg = region[by_key]
    # round = how many better-keyed nodes of the same region come before this one
    group = np.argsort(reg, kind="stable")
    sorted_reg = reg[group]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_reg)) + 1]
    first_of_group = np.repeat(starts, np.diff(np.r_[starts, len(sorted_reg)]))
    rounds = np.empty(len(reg), dtype=np.int64)
    rounds[group] = np.arange(len(reg)) - first_of_group
    order = np.lexsort((np.arange(len(reg)), rounds))  # by round, then by key rank
    return by_key[order[:n]]
