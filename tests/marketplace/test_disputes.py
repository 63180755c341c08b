"""Dispute verifiers: a uniform draw the renter cannot steer, signed as the escrow checks."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from eth_account import Account

from marketplace.chain.matcher import MatcherSigner
from marketplace.compute.disputes import draw_verifiers, eligible
from marketplace.errors import ConfigurationError, ConflictError
from marketplace.matching.records import Match, Provider, Resources
from protocol.assignments import assignment_signer
from protocol.schemas import JobSpec

ESCROW = "0x" + "ab" * 20
PROVIDERS = [Account.create().address for _ in range(6)]


def matches(ids):
    return [Match(p, float(i), 1, float(i), float(i)) for i, p in enumerate(ids)]


def test_draw_excludes_the_original_the_renter_and_providers_asking_more():
    cost = {p: 10 for p in PROVIDERS} | {PROVIDERS[2]: 11}
    for seed in range(50):
        rng = random.Random(seed)
        drawn = draw_verifiers(
            matches(PROVIDERS),
            cost_of=cost.get,
            job_price=10,
            exclude={PROVIDERS[0].lower(), PROVIDERS[1]},
            choice=rng.choice,
        )
        assert len(set(drawn)) == 2
        assert not set(drawn) & {PROVIDERS[0], PROVIDERS[1], PROVIDERS[2]}


def test_draw_is_uniform_not_the_best_scored():
    """The best-scored candidate is no likelier than the worst: origin cannot steer it."""
    counts: Counter[str] = Counter()
    rng = random.Random(7)
    for _ in range(3000):
        counts.update(
            draw_verifiers(
                matches(PROVIDERS),
                cost_of=lambda _: 1,
                job_price=1,
                exclude=set(),
                choice=rng.choice,
            )
        )
    expected = 3000 * 2 / len(PROVIDERS)
    assert all(abs(counts[p] - expected) < 0.1 * expected for p in PROVIDERS)


def test_too_few_eligible_providers_is_a_conflict_that_says_why():
    with pytest.raises(ConflictError, match="only 1 provider"):
        draw_verifiers(
            matches(PROVIDERS[:2]), cost_of=lambda _: 1, job_price=1, exclude={PROVIDERS[0]}
        )
    with pytest.raises(ConflictError, match="only 0 provider"):
        draw_verifiers(matches(PROVIDERS), cost_of=lambda _: None, job_price=1, exclude=set())


def test_matcher_signs_assignments_the_escrow_can_attribute_to_it():
    key = Account.create().key.hex()
    signer = MatcherSigner(key, chain_id=31337, escrow=ESCROW, on_chain_matcher=ESCROW)
    renter, spec = PROVIDERS[5], "0x" + "11" * 32
    a = signer.assignment(renter=renter, spec_hash=spec, providers=PROVIDERS[:3])
    recovered = assignment_signer(
        a, chain_id=31337, escrow=ESCROW, renter=renter, spec_hash=bytes.fromhex(spec[2:])
    )
    assert recovered == signer.address
    # the same signature names another renter's job: it recovers to someone else
    other = assignment_signer(
        a, chain_id=31337, escrow=ESCROW, renter=PROVIDERS[4], spec_hash=bytes.fromhex(spec[2:])
    )
    assert other != signer.address


def test_a_bad_matcher_key_is_a_configuration_error_that_says_how_to_fix_it():
    with pytest.raises(ConfigurationError, match="64 hex digits"):
        MatcherSigner("not a key", chain_id=1, escrow=ESCROW, on_chain_matcher=ESCROW)


def test_every_provider_that_can_run_the_job_is_eligible_wherever_it_is():
    """The pool is the whole network, not the best scores near the renter's origin."""
    from marketplace.compute.disputes import eligible
    from marketplace.matching.records import Provider, Resources
    from protocol.schemas import JobSpec

    spec = JobSpec.model_validate(
        {
            "image": "dcloud/busybox:1",
            "command": ["true"],
            "resources": {"cpu": 1, "memory_mb": 64},
            "time_limit_s": 10,
            "max_price_wei": 10**18,
            "origin": {"lat": 52.5, "lon": 13.4},
        }
    )
    room = Resources(cpu=2, memory_mb=128)
    image = frozenset({"dcloud/busybox:1"})
    providers = {
        "near": Provider("near", 52.5, 13.4, room, images=image),
        "antipode": Provider("antipode", -52.5, -166.6, room, images=image),
        "offline": Provider("offline", 52.5, 13.4, room, images=image, online=False),
        "no-image": Provider("no-image", 52.5, 13.4, room),
        "full": Provider("full", 52.5, 13.4, Resources(cpu=0.5, memory_mb=128), images=image),
    }
    found = {m.provider_id: m for m in eligible(providers, spec)}
    assert set(found) == {"near", "antipode"}
    assert found["antipode"].distance_km > 19_000 and found["near"].distance_km < 1


def test_any_provider_with_room_may_verify_a_job_in_a_renters_image():
    def spec(image):
        return JobSpec.model_validate(
            {
                "image": image,
                "resources": {"cpu": 1, "memory_mb": 512},
                "time_limit_s": 60,
                "max_price_wei": 10**15,
                "origin": {"lat": 48.1, "lon": 11.6},
            }
        )

    room = Resources(cpu=2, memory_mb=1024)
    providers = {
        "holds": Provider("holds", 50, 8, room, images=frozenset({f"sha256:{'ab' * 32}"})),
        "pulls": Provider("pulls", 52, 13, room, images=frozenset({"busybox"})),
        "small": Provider("small", 52, 13, Resources(cpu=0.5, memory_mb=1024)),
    }
    pinned = eligible(providers, spec(f"app:1@sha256:{'ab' * 32}"))
    assert sorted(m.provider_id for m in pinned) == ["holds", "pulls"]
    assert [m.provider_id for m in eligible(providers, spec("busybox"))] == ["pulls"]
