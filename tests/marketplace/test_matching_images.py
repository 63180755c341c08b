"""A renter's own image in matching: holding it is a preference, not a filter.

The index searches a job that prefers an image as two halves (holders; providers that
must pull it, charged ``pull_km``); its answers must stay equal to the brute-force
oracle, which simply adds ``pull_km`` to every provider without the image.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.compute.images import DEFAULT_IMAGE_BYTES, is_renter_image, pull_of
from marketplace.compute.jobs import request_of
from marketplace.errors import InvalidResourcesError
from marketplace.matching import (
    DEFAULT_ENERGY_WEIGHT_KM,
    LEXICOGRAPHIC_ENERGY_WEIGHT_KM,
    JobRequest,
    Provider,
    ProviderIndex,
    ProviderTable,
    ReputationPenalty,
    Resources,
    brute_force_match,
    distance_only,
)
from marketplace.settings import Settings
from protocol.schemas import JobSpec
from tests.marketplace.test_matching import WEIGHTS, oracle, random_providers

DIGEST = "sha256:" + "4f" * 32
PINNED = f"myapp:1@{DIGEST}"
PULLS = (0.0, 5.0, 300.0, 3000.0, 20_000.0)


def with_images(rng, providers, shares):
    """The providers, each holding each image of `shares` with its probability."""
    out = []
    for p in providers:
        held = {image for image, share in shares.items() if rng.random() < share}
        out.append(dataclasses.replace(p, images=p.images | held))
    return out


def preferring_jobs(rng, m, images):
    jobs = []
    for _ in range(m):
        image = str(rng.choice(images))
        jobs.append(
            JobRequest(
                lat=float(rng.uniform(-90, 90)),
                lon=float(rng.uniform(-180, 180)),
                resources=Resources(
                    cpu=float(rng.choice([0.5, 1, 4])),
                    memory_mb=int(rng.choice([256, 2048])),
                    gpu=int(rng.choice([0, 0, 0, 1])),
                    disk_mb=int(rng.integers(0, 40_000)),
                ),
                max_price_wei=int(rng.integers(0, 1200)) if rng.random() < 0.5 else None,
                prefer_image=image,
                pull_km=float(rng.choice(PULLS)),
            )
        )
    return jobs


SHARES = {"common": 0.9, "half": 0.5, "rare": 0.02}
PREFERRED = ("common", "half", "rare", "nobody")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weight", WEIGHTS)
def test_preferring_jobs_match_the_oracle_on_random_sets(seed, weight):
    rng = np.random.default_rng(seed * 17 + int(weight) + 1)
    providers = with_images(rng, random_providers(rng, int(rng.integers(1, 1500))), SHARES)
    scorer = ReputationPenalty(km=float(rng.choice([0, 100, 2000]))) if seed % 2 else distance_only
    index = ProviderIndex(providers, weight_km=weight, scorer=scorer)
    jobs = preferring_jobs(rng, 25, PREFERRED)
    for k in (1, 3, 10):
        batch = index.query_batch(jobs, k=k)
        for job, got in zip(jobs, batch, strict=True):
            want = oracle(providers, job, k=k, weight_km=weight, scorer=scorer)
            assert got == want
            assert index.query(job, k=k) == want
            table = index.snapshot.table
            brute = brute_force_match(table, job, k=k, weight_km=weight, scorer=scorer)
            assert brute == want


@pytest.mark.parametrize("rep_km", [20.0, 3000.0])
@pytest.mark.parametrize("pull_km", [50.0, 1500.0, 12_700.0])
def test_deep_searches_with_preferences_equal_brute_force(pull_km, rep_km):
    # Enough providers that the tree is asked in rounds (not all at once): clustered in
    # Europe and elsewhere, jobs from the same places, images from common to unheld. A
    # large reputation penalty makes the searches go deeper than the k-th distance.
    rng = np.random.default_rng(int(pull_km + rep_km))
    n = 30_000
    lat = np.where(rng.random(n) < 0.7, rng.normal(50, 4, n), rng.uniform(-80, 80, n))
    lon = np.where(rng.random(n) < 0.7, rng.normal(10, 6, n), rng.uniform(-180, 180, n))
    holders = {
        image: np.flatnonzero(rng.random(n) < share)
        for image, share in {"common": 0.9, "half": 0.5, "few": 0.01, "three": 0.0}.items()
    }
    holders["three"] = np.array([5, 500, 25_000])
    table = ProviderTable.from_arrays(
        ids=[f"p{i:06d}" for i in range(n)],
        lat=np.clip(lat, -90, 90),
        lon=(lon + 180) % 360 - 180,
        cpu=rng.choice([0.0, 1.0, 4.0, 8.0], n),
        memory_mb=rng.choice([0, 4096, 16384], n),
        gpu=np.where(rng.random(n) < 0.1, 1, 0),
        disk_mb=rng.integers(1000, 100_000, n),
        price_wei=rng.integers(0, 1000, n),
        level=rng.integers(0, 10, n),
        reputation=rng.beta(5, 2, n),
        online=rng.random(n) > 0.03,
        holders=holders,
    )
    scorer = ReputationPenalty(km=rep_km)
    index = ProviderIndex(table, scorer=scorer)
    jobs = [
        JobRequest(
            lat=float(np.clip(rng.normal(50, 5), -90, 90)),
            lon=float(rng.normal(10, 8)),
            resources=Resources(cpu=1, memory_mb=1024, gpu=int(rng.random() < 0.1)),
            max_price_wei=int(rng.integers(100, 1000)) if rng.random() < 0.5 else None,
            prefer_image=str(rng.choice(["common", "half", "few", "three", "nobody"])),
            pull_km=pull_km,
        )
        for _ in range(40)
    ]
    # Required images too: the tree's filtered path (an image held by at most 1024 of a
    # class is scored over its holders alone, without the tree).
    jobs += [dataclasses.replace(j, image=j.prefer_image, prefer_image=None) for j in jobs[:20]]
    masks: dict = {}
    for k in (1, 10):
        batch = index.query_batch(jobs, k=k)
        for job, got in zip(jobs, batch, strict=True):
            assert got == brute_force_match(table, job, k=k, scorer=scorer, image_masks=masks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    k=st.integers(1, 8),
    weight=st.sampled_from(WEIGHTS),
)
def test_property_preferences_equal_oracle(seed, n, k, weight):
    rng = np.random.default_rng(seed)
    providers = with_images(rng, random_providers(rng, n, dup=0.3), SHARES)
    scorer = ReputationPenalty(km=300.0)
    index = ProviderIndex(providers, weight_km=weight, scorer=scorer)
    for job in preferring_jobs(rng, 5, PREFERRED):
        assert index.query(job, k=k) == oracle(providers, job, k=k, weight_km=weight,
                                               scorer=scorer)  # fmt: skip


def test_a_preference_is_not_a_filter_and_charges_only_those_without_it():
    near = Provider("near", 0.0, 1.0, Resources(cpu=1, memory_mb=1024))
    far = Provider("far", 0.0, 5.0, Resources(cpu=1, memory_mb=1024), images=frozenset({"d"}))
    index = ProviderIndex([near, far], weight_km=0.0, scorer=distance_only)
    base = JobRequest(0.0, 0.0, Resources(cpu=1, memory_mb=1))
    plain = index.query(base, k=2)
    job = JobRequest(0.0, 0.0, Resources(cpu=1, memory_mb=1), prefer_image="d", pull_km=100.0)
    got = {m.provider_id: m for m in index.query(job, k=2)}
    assert set(got) == {"near", "far"}
    by_id = {m.provider_id: m for m in plain}
    assert got["near"].score == by_id["near"].score + 100.0
    assert got["far"].score == by_id["far"].score


def test_preferring_and_requiring_an_image_at_once_is_refused():
    with pytest.raises(InvalidResourcesError, match="not both"):
        JobRequest(0, 0, Resources(cpu=1, memory_mb=1), image="a", prefer_image="b")
    with pytest.raises(InvalidResourcesError, match="pull_km"):
        JobRequest(0, 0, Resources(cpu=1, memory_mb=1), prefer_image="b", pull_km=-1.0)
    with pytest.raises(InvalidResourcesError, match="pull_km"):
        JobRequest(0, 0, Resources(cpu=1, memory_mb=1), prefer_image="b", pull_km=float("nan"))


# ----------------------------------------------------- the conversion, end to end


def _spec(image: str, image_bytes: int | None, lat: float = 48.14, lon: float = 11.58):
    return JobSpec.model_validate(
        {
            "image": image,
            "image_bytes": image_bytes,
            "resources": {"cpu": 1, "memory_mb": 512},
            "time_limit_s": 60,
            "max_price_wei": 10**15,
            "origin": {"lat": lat, "lon": lon},
        }
    )


def _best(providers, spec, settings=None, **index_kw):
    s = settings or Settings()
    request = request_of("j", spec, pull_of(spec.image, spec.image_bytes, s))
    return ProviderIndex(providers, **index_kw).query(request, k=len(providers))


# Munich; Frankfurt 300 km away has never seen the image, Oslo 1 300 km away holds it.
# Same energy level and reputation, so only distance and the pull differ.
FRANKFURT = Provider("frankfurt", 50.11, 8.68, Resources(cpu=8, memory_mb=8192), energy_level=2)
OSLO = Provider(
    "oslo", 59.91, 10.75, Resources(cpu=8, memory_mb=8192),
    images=frozenset({"dcloud/busybox:1", DIGEST}), energy_level=2,
)  # fmt: skip


def test_a_small_image_goes_to_the_near_provider_that_must_pull_it():
    got = _best([FRANKFURT, OSLO], _spec(PINNED, 5 * 10**6))  # 5 MB: 0.1 s, 7 km
    assert [m.provider_id for m in got] == ["frankfurt", "oslo"]


def test_a_large_image_goes_to_the_far_provider_holding_it():
    got = _best([FRANKFURT, OSLO], _spec(PINNED, 2 * 10**9))  # 2 GB: 40 s, 2 960 km
    assert [m.provider_id for m in got] == ["oslo", "frankfurt"]


def test_a_cheaper_level_outweighs_the_pull_of_a_large_image():
    # One level cheaper is worth 2000 km at equal distance: more than a 1 GB pull.
    cheap = Provider("cheap", 50.11, 8.68, Resources(cpu=8, memory_mb=8192), energy_level=1)
    got = _best([cheap, OSLO], _spec(PINNED, 10**9))
    assert got[0].provider_id == "cheap"


def test_no_size_given_is_charged_as_a_large_image():
    pull = pull_of(PINNED, None, Settings())
    assert pull is not None and pull.size_assumed and pull.bytes == DEFAULT_IMAGE_BYTES
    got = _best([FRANKFURT, OSLO], _spec(PINNED, None))
    assert got[0].provider_id == "oslo"


def test_a_pinned_image_nobody_holds_still_matches_by_distance_and_energy():
    got = _best([FRANKFURT, OSLO], _spec(f"other:2@sha256:{'0' * 64}", 10**9))
    assert [m.provider_id for m in got] == ["frankfurt", "oslo"]


def test_a_zero_km_per_second_makes_holding_the_image_irrelevant():
    settings = Settings(image_pull_km_per_s=0.0)
    got = _best([FRANKFURT, OSLO], _spec(PINNED, 8 * 2**30), settings)
    assert got[0].provider_id == "frankfurt"


def test_offered_images_stay_a_filter():
    got = _best([FRANKFURT, OSLO], _spec("dcloud/busybox:1", None))
    assert [m.provider_id for m in got] == ["oslo"]
    assert pull_of("dcloud/busybox:1", None, Settings()) is None
    assert pull_of("broken@sha256:xyz", 10, Settings()) is None  # not well formed


def test_the_pull_is_size_over_rate_times_km_per_second():
    pull = pull_of(PINNED, 100 * 10**6, Settings(image_pull_mb_per_s=25, image_pull_km_per_s=10))
    assert pull is not None and not pull.size_assumed
    assert pull.digest == DIGEST
    assert pull.seconds == pytest.approx(4.0)
    assert pull.km == pytest.approx(40.0)


def test_the_largest_image_weighs_about_the_planet_at_the_defaults():
    pull = pull_of(PINNED, 8 * 2**30, Settings())
    assert pull is not None
    assert 12_000 < pull.km < LEXICOGRAPHIC_ENERGY_WEIGHT_KM
    assert pull.km / DEFAULT_ENERGY_WEIGHT_KM > 6  # about six levels at the default weight


def test_renter_images_are_told_from_offered_ones():
    assert is_renter_image(DIGEST)
    assert not is_renter_image("dcloud/python:3.11")
    assert not is_renter_image(PINNED)
    assert not is_renter_image("sha256:abc")
