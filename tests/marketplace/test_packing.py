"""Packing: exact solver vs exhaustive search, invariants of every method, bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.errors import InvalidPackingError
from marketplace.packing import (
    Packing,
    PackJob,
    PackProvider,
    lp_upper_bound,
    pack,
    pooled_upper_bound,
)
from marketplace.packing.model import TOL

METHODS = ("exact", "heuristic", "first-fit-decreasing", "auto")


def random_instance(rng, n, m, d=3, *, integer_values=True, candidates=None):
    providers = [
        PackProvider(f"p{i}", tuple(float(x) for x in rng.integers(0, 9, d))) for i in range(m)
    ]
    jobs = []
    for i in range(n):
        c = int(rng.integers(0, m + 1)) if candidates is None else min(candidates, m)
        jobs.append(
            PackJob(
                f"j{i}",
                tuple(float(x) for x in rng.integers(0, 5, d)),
                float(rng.integers(1, 10)) if integer_values else float(rng.uniform(0, 10)),
                tuple(f"p{k}" for k in rng.choice(m, size=c, replace=False)),
            )
        )
    return jobs, providers


def waste_of(assignment, jobs, providers):
    cap = {p.id: np.array(p.capacity) for p in providers}
    load = {p.id: np.zeros(len(p.capacity)) for p in providers}
    demand = {j.id: np.array(j.demand) for j in jobs}
    for j, p in assignment.items():
        load[p] += demand[j]
    total = 0.0
    for p in {p for p in assignment.values()}:
        c = cap[p]
        total += float(sum((c[k] - load[p][k]) / c[k] for k in range(len(c)) if c[k] > 0))
    return total


def exhaustive(jobs, providers):
    """Best (value, -waste) over every assignment, by brute force."""
    cap = {p.id: np.array(p.capacity) for p in providers}
    options = [[None, *j.candidates] for j in jobs]
    best = (-1.0, 0.0)
    for choice in itertools.product(*options):
        load = {p: np.zeros(len(c)) for p, c in cap.items()}
        for j, p in zip(jobs, choice, strict=True):
            if p is not None:
                load[p] += np.array(j.demand)
        if any((load[p] > cap[p] + 1e-9).any() for p in cap):
            continue
        value = sum(j.value for j, p in zip(jobs, choice, strict=True) if p is not None)
        assignment = {j.id: p for j, p in zip(jobs, choice, strict=True) if p is not None}
        key = (value, -waste_of(assignment, jobs, providers))
        if key[0] > best[0] + 1e-9 or (abs(key[0] - best[0]) <= 1e-9 and key[1] > best[1] + 1e-9):
            best = key
    return best[0], -best[1]


def check_invariants(result: Packing, jobs, providers):
    by_id = {j.id: j for j in jobs}
    cap = {p.id: np.array(p.capacity) for p in providers}
    load = {p.id: np.zeros(len(p.capacity)) for p in providers}
    for j, p in result.assignment.items():
        assert p in by_id[j].candidates  # every job on one of its candidates
        load[p] += np.array(by_id[j].demand)
    for p in cap:  # no provider over capacity in any dimension
        assert (load[p] <= cap[p] * (1 + TOL) + 1e-9).all()
    assert set(result.assignment) | set(result.unassigned) == set(by_id)
    assert not set(result.assignment) & set(result.unassigned)
    assert result.value == pytest.approx(sum(by_id[j].value for j in result.assignment))
    assert result.waste == pytest.approx(waste_of(result.assignment, jobs, providers))
    if result.upper_bound is not None:
        assert result.value <= result.upper_bound * (1 + 1e-9) + 1e-9


@pytest.mark.parametrize("seed", range(40))
def test_exact_matches_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    jobs, providers = random_instance(
        rng, int(rng.integers(1, 8)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    )
    result = pack(jobs, providers, method="exact", time_limit_s=10)
    value, waste = exhaustive(jobs, providers)
    check_invariants(result, jobs, providers)
    assert result.optimal
    assert result.value == pytest.approx(value, abs=1e-9)
    assert result.waste == pytest.approx(waste, abs=1e-6)


@pytest.mark.parametrize("seed", range(15))
def test_heuristic_is_close_to_exhaustive_on_small_instances(seed):
    rng = np.random.default_rng(100 + seed)
    jobs, providers = random_instance(rng, 7, 3)
    value, _ = exhaustive(jobs, providers)
    result = pack(jobs, providers, method="heuristic")
    check_invariants(result, jobs, providers)
    assert result.value <= value + 1e-9
    assert result.value >= 0.8 * value


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 25),
    m=st.integers(1, 6),
    d=st.integers(1, 4),
    method=st.sampled_from(METHODS),
)
def test_every_output_respects_capacity_and_candidates(seed, n, m, d, method):
    rng = np.random.default_rng(seed)
    jobs, providers = random_instance(rng, n, m, d, integer_values=False)
    check_invariants(pack(jobs, providers, method=method, time_limit_s=2), jobs, providers)


@pytest.mark.parametrize("seed", range(8))
def test_heuristic_is_never_below_first_fit_decreasing(seed):
    rng = np.random.default_rng(200 + seed)
    jobs, providers = random_instance(rng, 120, 8, candidates=3, integer_values=False)
    ours = pack(jobs, providers, method="heuristic")
    ffd = pack(jobs, providers, method="first-fit-decreasing")
    check_invariants(ours, jobs, providers)
    check_invariants(ffd, jobs, providers)
    assert ours.value >= ffd.value - 1e-9


def test_bounds_are_above_the_optimum():
    rng = np.random.default_rng(7)
    jobs, providers = random_instance(rng, 7, 3)
    value, _ = exhaustive(jobs, providers)
    lp = lp_upper_bound(jobs, providers)
    assert lp is not None and lp >= value - 1e-9
    assert pooled_upper_bound(jobs, providers) >= lp - 1e-9
    heuristic = pack(jobs, providers, method="heuristic")
    assert heuristic.upper_bound is not None and heuristic.upper_bound >= value - 1e-6


def test_equal_value_prefers_consolidating_on_one_provider():
    providers = [PackProvider("p0", (2.0,)), PackProvider("p1", (2.0,))]
    jobs = [PackJob(f"j{i}", (1.0,), 1.0, ("p0", "p1")) for i in range(2)]
    for method in ("exact", "heuristic"):
        result = pack(jobs, providers, method=method)
        assert result.value == 2.0
        assert len(set(result.assignment.values())) == 1
        assert result.waste == 0.0


def test_value_comes_before_waste():
    # One big valuable job or two small ones that fill the provider exactly.
    providers = [PackProvider("p", (4.0,))]
    jobs = [
        PackJob("big", (3.0,), 10.0, ("p",)),
        PackJob("s1", (2.0,), 4.0, ("p",)),
        PackJob("s2", (2.0,), 4.0, ("p",)),
    ]
    result = pack(jobs, providers, method="exact")
    assert set(result.assignment) == {"big"}


def test_jobs_without_fitting_candidates_stay_unassigned():
    providers = [PackProvider("small", (1.0, 1.0))]
    jobs = [
        PackJob("too-big", (2.0, 1.0), 5.0, ("small",)),
        PackJob("no-candidates", (0.5, 0.5), 5.0, ()),
    ]
    for method in METHODS:
        result = pack(jobs, providers, method=method)
        assert result.assignment == {}
        assert result.unassigned == ("too-big", "no-candidates")


def test_empty_input_packs_nothing():
    result = pack([], [])
    assert result.assignment == {} and result.value == 0.0 and result.waste == 0.0


@pytest.mark.parametrize(
    ("jobs", "providers", "message"),
    [
        ([PackJob("j", (1.0,), 1.0, ("x",))], [PackProvider("p", (1.0,))], "not among"),
        ([PackJob("j", (1.0, 1.0), 1.0, ("p",))], [PackProvider("p", (1.0,))], "lengths"),
        ([PackJob("j", (1.0,), -1.0, ("p",))], [PackProvider("p", (1.0,))], "value"),
        ([PackJob("j", (-1.0,), 1.0, ("p",))], [PackProvider("p", (1.0,))], "demand"),
        (
            [PackJob("j", (1.0,), 1.0, ("p",)), PackJob("j", (1.0,), 1.0, ("p",))],
            [PackProvider("p", (1.0,))],
            "twice",
        ),
        ([], [PackProvider("p", (1.0,)), PackProvider("p", (2.0,))], "twice"),
    ],
)
def test_inconsistent_input_is_refused_with_a_hint(jobs, providers, message):
    with pytest.raises(InvalidPackingError, match=message):
        pack(jobs, providers)


def test_unknown_method_is_refused():
    with pytest.raises(InvalidPackingError, match="unknown method"):
        pack([], [], method="magic")  # type: ignore[arg-type]
