"""assign.choose: the invariants every batch assignment keeps, on random batches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.compute.assign import Item, choose
from marketplace.matching.records import Match, Provider, Resources
from protocol.schemas import JobSpec


def _spec(cpu: int, mem: int, replicas: int, budget: int) -> JobSpec:
    return JobSpec.model_validate(
        {
            "image": "busybox",
            "resources": {"cpu": cpu, "memory_mb": mem},
            "time_limit_s": 60,
            "max_price_wei": budget,
            "replicas": replicas,
            "origin": {"lat": 0, "lon": 0},
        }
    )


def _match(pid: str, rank: int) -> Match:
    return Match(
        provider_id=pid,
        distance_km=float(rank),
        energy_level=0,
        augmented_km=float(rank),
        score=float(rank),
    )


batches = st.integers(min_value=1, max_value=6).flatmap(
    lambda n_prov: st.tuples(
        st.lists(
            st.tuples(st.integers(1, 8), st.integers(256, 8192)), min_size=n_prov, max_size=n_prov
        ),
        st.lists(
            st.tuples(
                st.integers(1, 4),
                st.integers(64, 4096),
                st.integers(1, 3),
                st.integers(1, 10**6),
                st.lists(st.integers(0, n_prov - 1), min_size=1, max_size=n_prov, unique=True),
            ),
            min_size=1,
            max_size=12,
        ),
    )
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(batches)
def test_choices_keep_capacity_distinctness_and_all_or_nothing(batch):
    prov_caps, jobs = batch
    providers = {
        f"p{i}": Provider(id=f"p{i}", lat=0, lon=0, free=Resources(cpu=c, memory_mb=m))
        for i, (c, m) in enumerate(prov_caps)
    }
    items = [
        Item(
            f"j{k}",
            _spec(cpu, mem, reps, budget),
            [_match(f"p{i}", rank) for rank, i in enumerate(cands)],
        )
        for k, (cpu, mem, reps, budget, cands) in enumerate(jobs)
    ]
    out = choose(items, providers)
    used = {pid: [0.0, 0.0] for pid in providers}
    for item in items:
        chosen = [c.match.provider_id for c in out[item.job_id]]
        assert len(chosen) in (0, item.spec.replicas)
        assert len(set(chosen)) == len(chosen)
        assert set(chosen) <= {m.provider_id for m in item.matches}
        for pid in chosen:
            used[pid][0] += item.spec.resources.cpu
            used[pid][1] += item.spec.resources.memory_mb
    for pid, (cpu, mem) in used.items():
        assert cpu <= providers[pid].free.cpu + 1e-9
        assert mem <= providers[pid].free.memory_mb + 1e-9


def test_a_lone_job_that_fits_is_always_placed():
    providers = {"a": Provider(id="a", lat=0, lon=0, free=Resources(cpu=4, memory_mb=4096))}
    item = Item("j", _spec(2, 1024, 1, 100), [_match("a", 0)])
    assert [c.match.provider_id for c in choose([item], providers)["j"]] == ["a"]


def test_replicas_never_share_a_provider_even_when_one_has_room_for_both():
    providers = {
        "big": Provider(id="big", lat=0, lon=0, free=Resources(cpu=16, memory_mb=16384)),
        "small": Provider(id="small", lat=0, lon=0, free=Resources(cpu=1, memory_mb=512)),
    }
    item = Item("j", _spec(2, 1024, 2, 100), [_match("big", 0), _match("small", 1)])
    assert choose([item], providers)["j"] == []
