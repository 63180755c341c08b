"""Shard placement (pure) against brute-force checks on seeded inputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from marketplace.errors import InvalidInputError, UnavailableError
from marketplace.storage.placement import Candidate, cold_weight, hot_weight, place


def nodes(spec: list[tuple[str, int, float]]) -> list[Candidate]:
    return [
        Candidate(id=f"n{i}", region=region, free_bytes=free, reputation=rep)
        for i, (region, free, rep) in enumerate(spec)
    ]


def random_nodes(rng: np.random.Generator, count: int, regions: int) -> list[Candidate]:
    return nodes(
        [
            (f"r{rng.integers(regions)}", int(rng.integers(0, 10_000)), float(rng.random()))
            for _ in range(count)
        ]
    )


@pytest.mark.parametrize("seed", range(20))
def test_each_segment_gets_n_distinct_nodes_with_room(seed):
    rng = np.random.default_rng(seed)
    cands = random_nodes(rng, 40, 7)
    shard = 500
    out = place(cands, n=6, segments=5, shard_bytes=shard, rng=rng)
    used: Counter[int] = Counter()
    for seg in out:
        assert len(seg) == 6 and len(set(seg)) == 6
        used.update(seg)
    for i, times in used.items():
        assert times * shard <= cands[i].free_bytes


@pytest.mark.parametrize("seed", range(20))
def test_regions_are_filled_round_robin(seed):
    """Brute-force oracle: no region gets a second shard while an eligible region has none."""
    rng = np.random.default_rng(seed)
    cands = random_nodes(rng, 30, 6)
    (seg,) = place(cands, n=9, segments=1, shard_bytes=100, rng=rng)
    eligible = [c for c in cands if c.free_bytes >= 100]
    per_region = Counter(cands[i].region for i in seg)
    available = Counter(c.region for c in eligible)
    for region, have in available.items():
        got = per_region.get(region, 0)
        # a region with spare eligible nodes is never more than one round behind another
        if got < have:
            assert max(per_region.values()) <= got + 1


def test_n_regions_get_one_shard_each_when_there_are_n_regions():
    cands = nodes([(f"r{i % 4}", 10**6, 0.5) for i in range(16)])
    (seg,) = place(cands, n=4, segments=1, shard_bytes=1, rng=np.random.default_rng(1))
    assert len({cands[i].region for i in seg}) == 4


def test_reliable_nodes_are_chosen_more_often_but_not_always():
    cands = nodes([("r0", 10**12, 0.95)] * 1 + [("r0", 10**12, 0.2)] * 1)
    rng = np.random.default_rng(7)
    wins = Counter(place(cands, n=1, segments=1, shard_bytes=1, rng=rng)[0][0] for _ in range(2000))
    assert wins[0] > 3 * wins[1] > 0


def test_cold_weight_spreads_evenly():
    cands = nodes([("r0", 10**12, 0.95), ("r0", 10**12, 0.2)])
    rng = np.random.default_rng(7)
    wins = Counter(
        place(cands, n=1, segments=1, shard_bytes=1, rng=rng, weight=cold_weight)[0][0]
        for _ in range(2000)
    )
    assert abs(wins[0] - wins[1]) < 200


def test_free_space_is_counted_across_segments():
    cands = nodes([("r0", 250, 1.0), ("r1", 1000, 1.0), ("r2", 1000, 1.0)])
    out = place(cands, n=2, segments=4, shard_bytes=100, rng=np.random.default_rng(0))
    assert sum(seg.count(0) for seg in out) <= 2


def test_too_few_nodes_with_room_is_unavailable_and_says_how_many():
    cands = nodes([("r0", 50, 1.0), ("r1", 1000, 1.0), ("r2", 1000, 1.0)])
    with pytest.raises(UnavailableError, match="only 2 online storage nodes"):
        place(cands, n=3, segments=1, shard_bytes=100, rng=np.random.default_rng(0))


def test_duplicate_candidates_are_refused():
    cands = nodes([("r0", 50, 1.0)]) * 2
    with pytest.raises(InvalidInputError, match="distinct"):
        place(cands, n=1, segments=1, shard_bytes=1, rng=np.random.default_rng(0))


def test_hot_weight_is_positive_and_increasing():
    low, high = (hot_weight(Candidate("a", "r", 1, r)) for r in (0.0, 1.0))
    assert 0 < low < high
