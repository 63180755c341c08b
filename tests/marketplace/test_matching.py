"""Matching: the k-d tree index against a brute-force oracle on seeded random sets."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.errors import (
    InvalidLocationError,
    InvalidProviderError,
    InvalidResourcesError,
    MarketplaceError,
    ScorerContractError,
)
from marketplace.geo import EARTH_DIAMETER_KM, haversine_km, to_xyz_km
from marketplace.matching import (
    DEFAULT_ENERGY_WEIGHT_KM,
    LEXICOGRAPHIC_ENERGY_WEIGHT_KM,
    JobRequest,
    Match,
    Provider,
    ProviderIndex,
    ProviderTable,
    ReputationPenalty,
    Resources,
    brute_force_match,
    distance_only,
    unit_budget_wei,
)
from marketplace.matching import index as index_module
from marketplace.matching.core import job_point, scan

IMAGES = ("a", "b", "c")
WEIGHTS = (0.0, 500.0, DEFAULT_ENERGY_WEIGHT_KM, LEXICOGRAPHIC_ENERGY_WEIGHT_KM)


def oracle(providers, job, *, k, weight_km, scorer):
    """Score every provider in plain Python, sort by (cost, id); a provider lacking the
    image a job prefers is charged the job's pull_km."""
    q = job_point(job.lat, job.lon)
    xyz = to_xyz_km([p.lat for p in providers], [p.lon for p in providers]).tolist()
    r = job.resources
    rows = []
    for p, (x, y, z) in zip(providers, xyz, strict=True):
        f = p.free
        if not (
            p.online
            and f.cpu >= r.cpu
            and f.memory_mb >= r.memory_mb
            and f.gpu >= r.gpu
            and f.disk_mb >= r.disk_mb
            and (job.max_price_wei is None or p.price_wei <= job.max_price_wei)
            and (job.image is None or job.image in p.images)
        ):
            continue
        dx, dy, dz = x - q[0], y - q[1], z - q[2]
        chord2 = dx * dx + dy * dy + dz * dz
        e = weight_km * p.energy_level
        s = math.sqrt(chord2 + e * e)
        cost = float(scorer(np.array([s]), np.array([p.reputation]))[0])
        if job.prefer_image is not None and job.prefer_image not in p.images:
            cost += job.pull_km  # it must pull the image first
        gc = EARTH_DIAMETER_KM * math.asin(min(1.0, math.sqrt(chord2) / EARTH_DIAMETER_KM))
        rows.append(Match(p.id, gc, p.energy_level, s, cost))
    rows.sort(key=lambda m: (m.score, m.provider_id))
    return rows[:k]


def random_providers(rng, n, *, dup=0.1):
    """Random providers, with poles, the antimeridian and exact duplicates (ties)."""
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.05:
            lat, lon = float(rng.choice([-90.0, 90.0])), float(rng.uniform(-180, 180))
        elif kind < 0.15:
            lat, lon = float(rng.uniform(-60, 60)), float(rng.choice([180.0, -180.0, 179.99]))
        else:
            lat, lon = float(rng.uniform(-90, 90)), float(rng.uniform(-180, 180))
        out.append(
            Provider(
                id=f"p{i:05d}",
                lat=lat,
                lon=lon,
                free=Resources(
                    cpu=float(rng.choice([0, 0.5, 1, 2, 4, 8])),
                    memory_mb=int(rng.choice([0, 512, 2048, 8192])),
                    gpu=int(rng.choice([0, 0, 0, 1, 2])),
                    disk_mb=int(rng.integers(0, 50_000)),
                ),
                price_wei=int(rng.integers(0, 1000)),
                images=frozenset(
                    rng.choice(IMAGES, size=int(rng.integers(0, 4)), replace=False).tolist()
                ),
                online=bool(rng.random() < 0.9),
                energy_level=int(rng.integers(0, 10)),
                reputation=float(rng.choice([0.0, 0.5, 0.9, 1.0, rng.random()])),
            )
        )
    for _ in range(int(n * dup)):  # exact copies of position, level and reputation: ties
        src, dst = int(rng.integers(0, n)), int(rng.integers(0, n))
        s, d = out[src], out[dst]
        out[dst] = Provider(
            d.id, s.lat, s.lon, d.free, d.price_wei, d.images, d.online,
            s.energy_level, s.reputation,
        )  # fmt: skip
    return out


def random_jobs(rng, m):
    jobs = []
    for _ in range(m):
        lat = float(rng.choice([90.0, -90.0, rng.uniform(-90, 90)], p=[0.05, 0.05, 0.9]))
        lon = float(rng.choice([180.0, -180.0, rng.uniform(-180, 180)], p=[0.1, 0.1, 0.8]))
        jobs.append(
            JobRequest(
                lat=lat,
                lon=lon,
                resources=Resources(
                    cpu=float(rng.choice([0.5, 1, 4])),
                    memory_mb=int(rng.choice([256, 2048])),
                    gpu=int(rng.choice([0, 0, 0, 1])),
                    disk_mb=int(rng.integers(0, 40_000)),
                ),
                image=rng.choice([None, "a", "b", "zz"], p=[0.4, 0.25, 0.25, 0.1]),
                max_price_wei=int(rng.integers(0, 1200)) if rng.random() < 0.6 else None,
            )
        )
    return jobs


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weight", WEIGHTS)
def test_index_matches_oracle_on_random_sets(seed, weight):
    rng = np.random.default_rng(seed * 31 + int(weight))
    providers = random_providers(rng, int(rng.integers(1, 1500)))
    scorer = ReputationPenalty(km=float(rng.choice([0, 100, 2000]))) if seed % 2 else distance_only
    index = ProviderIndex(providers, weight_km=weight, scorer=scorer)
    jobs = random_jobs(rng, 25)
    for k in (1, 3, 10):
        batch = index.query_batch(jobs, k=k)
        for job, got in zip(jobs, batch, strict=True):
            want = oracle(providers, job, k=k, weight_km=weight, scorer=scorer)
            assert got == want
            assert index.query(job, k=k) == want
            assert brute_force_match(index.snapshot.table, job, k=k, weight_km=weight,
                                     scorer=scorer) == want  # fmt: skip


def test_rare_eligible_providers_are_still_found():
    # Thousands of providers around the origin, only three eligible and far away:
    # the search must go deep (and switch to a scan) rather than hide them.
    rng = np.random.default_rng(5)
    near = [
        Provider(f"n{i:05d}", float(rng.normal(48, 1)), float(rng.normal(2, 1)),
                 Resources(cpu=8, memory_mb=8192, disk_mb=10_000), images=frozenset({"a"}))
        for i in range(6000)
    ]  # fmt: skip
    far = [
        Provider(f"f{i}", -33.9 + i, 151.2, Resources(cpu=8, memory_mb=8192, disk_mb=10_000),
                 images=frozenset({"a", "rare"}), energy_level=i)
        for i in range(3)
    ]  # fmt: skip
    index = ProviderIndex(near + far)
    job = JobRequest(48.0, 2.0, Resources(cpu=1, memory_mb=512), image="rare")
    got = index.query(job, k=5)
    assert [m.provider_id for m in got] == ["f0", "f1", "f2"]
    assert got == oracle(near + far, job, k=5, weight_km=DEFAULT_ENERGY_WEIGHT_KM,
                         scorer=ReputationPenalty())  # fmt: skip


def test_nearest_across_the_antimeridian():
    providers = [
        Provider("west", 0.0, -179.9, Resources(cpu=1, memory_mb=1024)),
        Provider("east", 0.0, 170.0, Resources(cpu=1, memory_mb=1024)),
    ]
    index = ProviderIndex(providers, weight_km=0.0, scorer=distance_only)
    (best, second) = index.query(JobRequest(0.0, 179.9, Resources(cpu=1, memory_mb=1)), k=2)
    assert best.provider_id == "west"
    assert best.distance_km == pytest.approx(haversine_km(0, 179.9, 0, -179.9), rel=1e-9)
    assert second.provider_id == "east"


def test_providers_at_the_pole_tie_and_break_by_id():
    providers = [
        Provider(name, 90.0, lon, Resources(cpu=1, memory_mb=1024))
        for name, lon in (("c", 0.0), ("a", 120.0), ("b", -60.0))
    ]
    index = ProviderIndex(providers, weight_km=0.0, scorer=distance_only)
    got = index.query(JobRequest(89.0, 10.0, Resources(cpu=1, memory_mb=1)), k=3)
    assert [m.provider_id for m in got] == ["a", "b", "c"]
    assert len({m.score for m in got}) == 1


def test_duplicated_points_are_ordered_by_provider_id():
    providers = [
        Provider(f"p{i}", 10.0, 10.0, Resources(cpu=1, memory_mb=1024), energy_level=2)
        for i in (3, 1, 2)
    ]
    got = ProviderIndex(providers).query(JobRequest(0.0, 0.0, Resources(1, 1)), k=2)
    assert [m.provider_id for m in got] == ["p1", "p2"]


def test_weight_zero_ranks_by_distance_only():
    providers = [
        Provider("near-dear", 0.0, 1.0, Resources(cpu=1, memory_mb=1024), energy_level=9),
        Provider("far-cheap", 0.0, 40.0, Resources(cpu=1, memory_mb=1024), energy_level=0),
    ]
    job = JobRequest(0.0, 0.0, Resources(cpu=1, memory_mb=1))
    assert ProviderIndex(providers, weight_km=0).query(job, k=1)[0].provider_id == "near-dear"
    assert ProviderIndex(providers).query(job, k=1)[0].provider_id == "far-cheap"


def test_lexicographic_weight_lets_one_level_outweigh_any_distance():
    providers = [
        Provider("next-door", 0.0, 0.1, Resources(cpu=1, memory_mb=1024), energy_level=1),
        Provider("antipode", 0.0, 180.0, Resources(cpu=1, memory_mb=1024), energy_level=0),
    ]
    index = ProviderIndex(providers, weight_km=LEXICOGRAPHIC_ENERGY_WEIGHT_KM)
    best = index.query(JobRequest(0.0, 0.0, Resources(cpu=1, memory_mb=1)), k=1)[0]
    assert best.provider_id == "antipode"
    assert best.distance_km == pytest.approx(EARTH_DIAMETER_KM * math.pi / 2)


def test_reputation_penalty_prefers_reliable_providers_at_equal_distance():
    providers = [
        Provider("flaky", 0.0, 1.0, Resources(cpu=1, memory_mb=1024), reputation=0.1),
        Provider("solid", 0.0, -1.0, Resources(cpu=1, memory_mb=1024), reputation=1.0),
    ]
    got = ProviderIndex(providers).query(JobRequest(0.0, 0.0, Resources(1, 1)), k=2)
    assert [m.provider_id for m in got] == ["solid", "flaky"]
    assert got[1].score == pytest.approx(got[1].augmented_km + 0.9 * 20.0)


@pytest.mark.parametrize(
    "job",
    [
        JobRequest(0, 0, Resources(cpu=64, memory_mb=1)),  # nobody has 64 cores
        JobRequest(0, 0, Resources(cpu=1, memory_mb=1), image="unknown"),
        JobRequest(0, 0, Resources(cpu=1, memory_mb=1), max_price_wei=0),
        JobRequest(0, 0, Resources(cpu=1, memory_mb=1, gpu=8)),
    ],
)
def test_no_eligible_provider_gives_an_empty_answer(job):
    providers = [
        Provider(f"p{i}", 0.0, float(i), Resources(cpu=4, memory_mb=4096, gpu=1),
                 price_wei=10, images=frozenset({"a"}))
        for i in range(50)
    ]  # fmt: skip
    index = ProviderIndex(providers)
    assert index.query(job, k=3) == []
    assert index.query_batch([job, job], k=3) == [[], []]


def test_empty_and_all_offline_indexes_answer_nothing():
    job = JobRequest(0, 0, Resources(cpu=1, memory_mb=1))
    assert ProviderIndex().query(job) == []
    offline = [Provider("x", 0, 0, Resources(cpu=1, memory_mb=1024), online=False)]
    assert ProviderIndex(offline).query(job) == []


def test_scorer_that_lowers_costs_is_refused():
    providers = [Provider("x", 0, 0, Resources(cpu=1, memory_mb=1024))]
    index = ProviderIndex(providers, scorer=lambda s, r: s * 0.5)
    with pytest.raises(ScorerContractError, match="only add penalties"):
        index.query(JobRequest(1, 1, Resources(cpu=1, memory_mb=1)))


def test_refresh_swaps_in_a_new_snapshot_and_leaves_the_old_one_intact():
    rng = np.random.default_rng(11)
    providers = random_providers(rng, 800, dup=0)
    index = ProviderIndex(providers)
    old = index.snapshot
    jobs = random_jobs(rng, 20)
    before = [old.query(j, k=5) for j in jobs]
    changed = [
        Provider(p.id, p.lat, p.lon, Resources(cpu=8, memory_mb=8192, gpu=1, disk_mb=40_000),
                 p.price_wei, frozenset(IMAGES), True, 0, 1.0)
        for p in providers[:100]
    ]  # fmt: skip
    added = [Provider("new", 0.0, 0.0, Resources(cpu=2, memory_mb=4096), energy_level=0)]
    removed = [p.id for p in providers[100:300]]
    new = index.refresh(changed=changed + added, removed=removed)
    assert index.snapshot is new and new.version == old.version + 1
    assert [old.query(j, k=5) for j in jobs] == before  # old snapshot unchanged
    now = changed + added + providers[300:]
    for job in jobs:
        assert new.query(job, k=5) == oracle(now, job, k=5, weight_km=new.weight_km,
                                             scorer=new.scorer)  # fmt: skip


def test_table_changes_equal_a_fresh_build():
    rng = np.random.default_rng(3)
    providers = random_providers(rng, 300, dup=0)
    table = ProviderTable.from_providers(providers)
    changed = random_providers(np.random.default_rng(4), 120, dup=0)[50:]  # p00050.. updated
    removed = ["p00001", "p00002", "p00200"]
    updated = table.with_changes(changed, removed)
    expected = {p.id: p for p in providers if p.id not in removed}
    expected.update({p.id: p for p in changed})
    assert set(updated.row_of) == set(expected)
    for pid, p in expected.items():
        assert updated.provider(pid) == p


@pytest.mark.parametrize("scan_below", (0, 10**9))
def test_refreshes_by_side_trees_then_a_rebuild_answer_as_the_oracle(monkeypatch, scan_below):
    # Small change sets go to the side trees (the big ones masked); once the side holds
    # more than 5% of the rows the trees are rebuilt from the updated memory order. New
    # providers, removals, offline ones and an image first seen in a change all pass.
    monkeypatch.setattr(index_module, "SCAN_BELOW", scan_below)
    rng = np.random.default_rng(31)
    current = {p.id: p for p in random_providers(rng, 1500, dup=0)}
    index = ProviderIndex(list(current.values()), scorer=ReputationPenalty(km=300.0))
    sides = []
    for step in range(6):
        fresh = random_providers(np.random.default_rng(100 + step), 1700, dup=0)
        changed = [fresh[int(i)] for i in rng.choice(1700, size=40, replace=False)]
        changed = [
            Provider(p.id, p.lat, p.lon, p.free, p.price_wei, p.images | {f"new{step}"},
                     p.online, p.energy_level, p.reputation) if i % 3 == 0 else p
            for i, p in enumerate(changed)
        ]  # fmt: skip
        ids = {p.id for p in changed}
        removed = [pid for pid in list(current)[:: 97 + step] if pid not in ids][:5]
        snap = index.refresh(changed=changed, removed=removed)
        sides.append(snap._state.side.shape[0])
        for pid in removed:
            del current[pid]
        current.update({p.id: p for p in changed})
        providers = list(current.values())
        new_image = JobRequest(10.0, 10.0, Resources(cpu=0.5, memory_mb=256), image=f"new{step}")
        for job in [*random_jobs(rng, 15), new_image]:
            assert snap.query(job, k=5) == oracle(providers, job, k=5, weight_km=snap.weight_km,
                                                  scorer=snap.scorer)  # fmt: skip
    assert max(sides) > 0 and min(sides[1:]) < max(sides)  # the side filled, then emptied


def test_many_removals_compact_the_table():
    providers = random_providers(np.random.default_rng(8), 200, dup=0)
    table = ProviderTable.from_providers(providers).with_changes(
        removed=[p.id for p in providers[:120]]
    )
    assert len(table) == 80 and table.present.all()
    for p in providers[120:]:
        assert table.provider(p.id) == p


def test_hourly_level_update_changes_the_ranking():
    providers = [
        Provider("a", 0.0, 1.0, Resources(cpu=1, memory_mb=1024), energy_level=0),
        Provider("b", 0.0, 2.0, Resources(cpu=1, memory_mb=1024), energy_level=5),
    ]
    index = ProviderIndex(providers)
    job = JobRequest(0.0, 0.0, Resources(cpu=1, memory_mb=1))
    assert index.query(job, k=1)[0].provider_id == "a"
    index.refresh(levels=[5, 0])
    assert index.query(job, k=1)[0].provider_id == "b"


def test_queries_keep_answering_during_a_background_refresh():
    rng = np.random.default_rng(21)
    providers = random_providers(rng, 3000, dup=0)
    jobs = random_jobs(rng, 10)
    index = ProviderIndex(providers)
    expected = [index.query(j, k=3) for j in jobs]
    changed = [
        Provider(p.id, p.lat, p.lon, p.free, p.price_wei, p.images, p.online, 9, p.reputation)
        for p in providers[:1000]
    ]
    future = index.refresh_in_background(changed=changed)
    seen_old = 0
    while not future.done():
        snap = index.snapshot
        if snap.version == 1:
            assert [snap.query(j, k=3) for j in jobs] == expected
            seen_old += 1
    snap = future.result()
    index.close()
    now = changed + providers[1000:]
    for job in jobs:
        assert snap.query(job, k=3) == oracle(now, job, k=3, weight_km=snap.weight_km,
                                              scorer=snap.scorer)  # fmt: skip
    assert threading.active_count() >= 1


@pytest.mark.parametrize("weight", (DEFAULT_ENERGY_WEIGHT_KM, LEXICOGRAPHIC_ENERGY_WEIGHT_KM))
def test_levels_searched_one_tree_each_give_the_oracles_answers(monkeypatch, weight):
    # Every level in a tree of its own (no small class scanned whole), batch and single.
    monkeypatch.setattr(index_module, "SCAN_BELOW", 0)
    rng = np.random.default_rng(9)
    providers = random_providers(rng, 3000)
    jobs = random_jobs(rng, 40)
    scorer = ReputationPenalty(km=300.0)
    index = ProviderIndex(providers, weight_km=weight, scorer=scorer)
    want = [oracle(providers, j, k=7, weight_km=weight, scorer=scorer) for j in jobs]
    assert index.query_batch(jobs, k=7) == want
    assert [index.query(j, k=7) for j in jobs] == want


def test_a_deep_search_scans_only_the_holders_of_the_jobs_image(monkeypatch):
    # 6000 providers on one level, half holding "a" (too many to score them up front),
    # only two of those cheap enough: the tree rounds run dry and the class's holders of
    # "a" are scanned, not the whole class.
    scanned = []

    def recording_scan(cols, idx, spec, **kw):
        scanned.append(len(cols) if idx is None else len(idx))
        return scan(cols, idx, spec, **kw)

    monkeypatch.setattr(index_module, "scan", recording_scan)
    rng = np.random.default_rng(12)
    providers = [
        Provider(
            f"p{i:05d}",
            float(rng.uniform(-60, 60)),
            float(rng.uniform(-180, 180)),
            Resources(cpu=4, memory_mb=4096, disk_mb=1000),
            price_wei=10 if i in (7, 1500, 4001) else 1000,
            images=frozenset({"a"}) if i % 2 else frozenset(),
            energy_level=1,
        )
        for i in range(6000)
    ]
    index = ProviderIndex(providers)
    s = index.snapshot
    job = JobRequest(0.0, 0.0, Resources(cpu=1, memory_mb=512), image="a", max_price_wei=10)
    got = index.query(job, k=5)
    assert got == oracle(providers, job, k=5, weight_km=s.weight_km, scorer=s.scorer)
    assert {m.provider_id for m in got} == {"p00007", "p04001"}  # 1500 lacks "a"
    assert scanned == [3000]


def test_small_classes_scanned_whole_give_the_oracles_answers(monkeypatch):
    monkeypatch.setattr(index_module, "SCAN_BELOW", 10**9)
    rng = np.random.default_rng(10)
    providers = random_providers(rng, 800)
    jobs = random_jobs(rng, 30)
    index = ProviderIndex(providers)
    s = index.snapshot
    want = [oracle(providers, j, k=5, weight_km=s.weight_km, scorer=s.scorer) for j in jobs]
    assert index.query_batch(jobs, k=5) == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    k=st.integers(1, 8),
    weight=st.sampled_from(WEIGHTS),
)
def test_property_index_equals_oracle(seed, n, k, weight):
    rng = np.random.default_rng(seed)
    providers = random_providers(rng, n, dup=0.3)
    scorer = ReputationPenalty(km=300.0)
    index = ProviderIndex(providers, weight_km=weight, scorer=scorer)
    for job in random_jobs(rng, 5):
        assert index.query(job, k=k) == oracle(providers, job, k=k, weight_km=weight,
                                               scorer=scorer)  # fmt: skip


def test_bad_input_is_refused_with_a_hint():
    with pytest.raises(InvalidLocationError, match="latitude"):
        JobRequest(91.0, 0.0, Resources(cpu=1, memory_mb=1))
    with pytest.raises(InvalidLocationError, match="longitude"):
        Provider("x", 0.0, 181.0, Resources())
    with pytest.raises(InvalidResourcesError, match="cpu > 0"):
        JobRequest(0.0, 0.0, Resources(memory_mb=1))
    with pytest.raises(InvalidResourcesError, match="cpu"):
        Resources(cpu=-1.0)
    with pytest.raises(InvalidProviderError, match="reputation"):
        Provider("x", 0.0, 0.0, Resources(), reputation=2.0)
    with pytest.raises(InvalidProviderError, match="not unique"):
        ProviderIndex([Provider("x", 0, 0, Resources()), Provider("x", 1, 1, Resources())])
    with pytest.raises(MarketplaceError, match="k >= 1"):
        ProviderIndex().query(JobRequest(0, 0, Resources(cpu=1, memory_mb=1)), k=0)


def test_unit_budget_rounds_down():
    assert unit_budget_wei(1000, cpu=2.0, duration_s=3) == 166
    assert unit_budget_wei(10**18, cpu=0.5, duration_s=3600) == 555555555555555
