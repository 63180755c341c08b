"""Token buckets on an injected clock, and the signer a rate limiter reads from a body."""

from __future__ import annotations

import pytest

from protocol.ratelimit import TokenBuckets, retry_after_s, signer_in_envelope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_burst_is_spent_then_refused_with_the_wait(clock: Clock) -> None:
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token at 2 a second


def test_tokens_come_back_at_the_rate(clock: Clock) -> None:
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        buckets.take("a")
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_refill_stops_at_the_burst(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_keys_have_separate_buckets(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0


def test_a_refused_take_spends_nothing(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    buckets.take("a")
    for _ in range(10):
        buckets.take("a")
    clock.now += 1.0
    assert buckets.take("a") == 0.0


def test_wait_s_spends_nothing(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    assert buckets.wait_s("a") == 0.0
    assert buckets.wait_s("a") == 0.0
    assert len(buckets) == 0
    assert buckets.take("a") == 0.0


def test_charge_overdraws_and_the_debt_is_repaid_before_the_next_request(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    for _ in range(4):
        buckets.charge("a")  # two requests already in flight beyond the burst
    assert buckets.wait_s("a") == pytest.approx(3.0)
    clock.now += 3.0
    assert buckets.wait_s("a") == 0.0


def test_debt_is_at_most_one_burst(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    for _ in range(100):
        buckets.charge("a")
    assert buckets.wait_s("a") == pytest.approx(3.0)


def test_refilled_buckets_are_dropped(clock: Clock) -> None:
    buckets = TokenBuckets(rate=10.0, burst=5, clock=clock)
    for i in range(100):
        buckets.take(f"key{i}")
    assert len(buckets) == 100
    clock.now += 1.0  # every bucket has refilled
    buckets.take("fresh")
    assert len(buckets) == 1


def test_the_table_never_holds_more_than_max_keys(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=5, max_keys=50, clock=clock)
    for i in range(10_000):
        buckets.take(f"key{i}")
        buckets.charge(f"other{i}")
        assert len(buckets) <= 50
    # the most recent keys are the ones remembered: other9999 has 4 of its 5 tokens left
    assert [buckets.take("other9999") for _ in range(4)] == [0.0] * 4
    assert buckets.take("other9999") > 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_s(0.01) == 1
    assert retry_after_s(1.0) == 1
    assert retry_after_s(1.2) == 2


@pytest.mark.parametrize(
    ("body", "signer"),
    [
        (b'{"payload": {"a": 1}, "signer": "0xAbC", "timestamp_ms": 1}', "0xAbC"),
        (b'{"payload": {"signer": "0xInner"}, "signer": "0xOuter"}', "0xOuter"),
        (b'{"payload": ["signer", "x"], "note": "signer", "signer": "0xS"}', "0xS"),
        (b'{"payload": {"signer": "0xInner"}}', None),
        (b'{"signer": 5}', None),
        (b"[" * 100_000 + b"]" * 100_000, None),
        (b"not json", None),
    ],
)
def test_signer_in_envelope_reads_the_top_level_signer_only(body: bytes, signer: str | None):
    assert signer_in_envelope(body) == signer
