"""JobEscrow with several replicas: the strict-majority settlement rule.

The matcher names (and signs) every co-replica. A hash revealed by a strict majority of
the accepted replicas wins: its revealers are paid, other revealers slashed. Without a
majority nobody is shown wrong and every revealer is paid. Accepted-but-silent replicas
are always slashed; empty slots are refunded.
"""

import pytest
from conftest import (
    COLLATERAL,
    FEE,
    PAID,
    PARAMS,
    PRICE,
    SLASH_TO_TREASURY,
    SLASHED,
    STAKE,
    plain,
    sleep_past,
)

SLASH_TO_RENTER = COLLATERAL - SLASH_TO_TREASURY


@pytest.fixture
def balances(token, renter, treasury):
    """Token balances of renter and treasury before the test's settlement."""
    return {"renter": token.balanceOf(renter), "treasury": token.balanceOf(treasury)}


def settle_by_confirm(escrow, jobs, renter, results):
    job_id = jobs.fund(renter, replicas=len(results), providers=[p for p, _ in results])
    jobs.run(job_id, results)
    tx = escrow.confirm(job_id, {"from": renter})
    return job_id, tx


def test_all_agreeing_replicas_are_paid(escrow, jobs, renter, providers, treasury):
    results = [(p, "a") for p in providers[:3]]
    job_id, _ = settle_by_confirm(escrow, jobs, renter, results)
    assert [escrow.creditOf(p) for p in providers[:3]] == [PRICE - FEE] * 3
    assert escrow.creditOf(treasury) == 3 * FEE
    assert escrow.creditOf(renter) == 0
    assert jobs.states(job_id) == [PAID] * 3


def test_majority_pays_honest_and_slashes_wrong_replica_to_renter(
    escrow, registry, token, jobs, renter, providers, treasury, balances
):
    results = [(providers[0], "a"), (providers[1], "a"), (providers[2], "b")]
    renter_before = balances["renter"]
    job_id, tx = settle_by_confirm(escrow, jobs, renter, results)
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(providers[2]) == 0
    assert escrow.creditOf(renter) == PRICE  # the wrong replica's price comes back
    assert escrow.creditOf(treasury) == 2 * FEE
    assert token.balanceOf(renter) - renter_before == SLASH_TO_RENTER - 3 * PRICE
    assert token.balanceOf(treasury) - balances["treasury"] == SLASH_TO_TREASURY
    assert plain(registry.stakeOf(providers[2]))[:2] == (STAKE - COLLATERAL, 0)
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)
    assert jobs.states(job_id) == [PAID, PAID, SLASHED]
    assert tx.events["ReplicaSlashed"]["provider"] == providers[2]
    assert tx.events["JobSettled"]["refund"] == PRICE


def test_three_different_results_pay_every_revealer_and_slash_nobody(
    escrow, registry, jobs, renter, providers, treasury, balances, token
):
    results = [(providers[0], "a"), (providers[1], "b"), (providers[2], "c")]
    job_id, tx = settle_by_confirm(escrow, jobs, renter, results)
    assert escrow.creditOf(renter) == 0
    assert [escrow.creditOf(p) for p in providers[:3]] == [PRICE - FEE] * 3
    assert escrow.creditOf(treasury) == 3 * FEE
    assert [plain(registry.stakeOf(p))[:2] for p in providers[:3]] == [(STAKE, 0)] * 3
    assert token.balanceOf(treasury) == balances["treasury"]
    assert jobs.states(job_id) == [PAID] * 3
    assert "ReplicaSlashed" not in tx.events
    assert bytes(tx.events["JobSettled"]["resultHash"]) == bytes(32)


def test_five_replicas_three_against_two_pays_three_and_slashes_two(
    escrow, registry, token, jobs, renter, providers, treasury, balances
):
    labels = ["a", "b", "a", "b", "a"]
    job_id, _ = settle_by_confirm(escrow, jobs, renter, list(zip(providers, labels, strict=True)))
    assert [escrow.creditOf(p) for p in providers] == [
        PRICE - FEE if label == "a" else 0 for label in labels
    ]
    assert escrow.creditOf(renter) == 2 * PRICE
    assert escrow.creditOf(treasury) == 3 * FEE
    assert token.balanceOf(treasury) - balances["treasury"] == 2 * SLASH_TO_TREASURY
    assert plain(registry.stakeOf(providers[1]))[0] == STAKE - COLLATERAL
    assert plain(registry.stakeOf(providers[3]))[0] == STAKE - COLLATERAL
    assert jobs.states(job_id) == [PAID, SLASHED, PAID, SLASHED, PAID]


def test_five_replicas_two_two_one_has_no_majority_and_pays_all(escrow, jobs, renter, providers):
    labels = ["a", "a", "b", "b", "c"]
    job_id, _ = settle_by_confirm(escrow, jobs, renter, list(zip(providers, labels, strict=True)))
    assert escrow.creditOf(renter) == 0
    assert [escrow.creditOf(p) for p in providers] == [PRICE - FEE] * 5
    assert jobs.states(job_id) == [PAID] * 5


def test_two_disagreeing_replicas_have_no_majority_and_both_are_paid(
    escrow, registry, jobs, renter, providers
):
    job_id, _ = settle_by_confirm(escrow, jobs, renter, [(providers[0], "a"), (providers[1], "b")])
    assert escrow.creditOf(renter) == 0
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE, 0)
    assert jobs.states(job_id) == [PAID, PAID]


def test_two_agreeing_replicas_are_both_paid(escrow, jobs, renter, providers):
    job_id, _ = settle_by_confirm(escrow, jobs, renter, [(providers[0], "a"), (providers[1], "a")])
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert jobs.states(job_id) == [PAID, PAID]


def test_reveal_before_all_replicas_committed_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    with reverts("EscrowRevealTooEarly", job_id, 1, 2):
        jobs.reveal(job_id, providers[0], "a")


def test_reveal_after_deadline_allowed_when_a_replica_never_committed(
    escrow, jobs, renter, providers
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    assert jobs.job(job_id)["revealed"] == 1
    assert jobs.job(job_id)["challengeEnds"] == 0


def test_confirm_needs_every_replica_revealed(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, *providers[:3])
    for p in providers[:3]:
        jobs.commit(job_id, p, "a")
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "a")
    with reverts("EscrowNotAllRevealed", job_id, 2, 3):
        escrow.confirm(job_id, {"from": renter})


def test_silent_replica_is_slashed_at_finalize(escrow, registry, jobs, renter, providers, outsider):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, *providers[:3])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert plain(registry.stakeOf(providers[2]))[:2] == (STAKE - COLLATERAL, 0)
    assert jobs.states(job_id) == [PAID, PAID, SLASHED]


def test_committed_but_unrevealed_replica_is_slashed_at_finalize(
    escrow, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, *providers[:3])
    for p in providers[:3]:
        jobs.commit(job_id, p, "a")
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "a")
    finalizable = jobs.job(job_id)["deadline"] + PARAMS.reveal_window + PARAMS.challenge_window
    assert escrow.finalizableAt(job_id) == finalizable
    sleep_past(finalizable)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID, PAID, SLASHED]


def test_lone_revealer_among_three_accepted_is_paid_and_silent_ones_slashed(
    escrow, registry, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, *providers[:3])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID, SLASHED, SLASHED]
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(renter) == 2 * PRICE
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE - COLLATERAL, 0)


def test_silent_co_replica_does_not_void_honest_pay(
    escrow, registry, token, jobs, renter, providers, outsider, balances
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID, SLASHED]
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert token.balanceOf(renter) - balances["renter"] == SLASH_TO_RENTER - 2 * PRICE
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE - COLLATERAL, 0)


def test_reveal_with_an_empty_slot_waits_for_the_accept_window(
    escrow, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "a")
    with reverts("EscrowRevealTooEarly", job_id, 2, 3):
        jobs.reveal(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["acceptBy"])
    jobs.reveal(job_id, providers[0], "a")  # every accepted slot committed; none can join
    assert jobs.job(job_id)["revealed"] == 1


def test_reveal_after_accept_window_waits_for_every_accepted_commit(
    escrow, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["acceptBy"])
    with reverts("EscrowRevealTooEarly", job_id, 1, 3):
        jobs.reveal(job_id, providers[0], "a")


def test_confirm_after_accept_window_with_every_accepted_replica_revealed(
    escrow, jobs, renter, providers, treasury
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "a")
    sleep_past(jobs.job(job_id)["acceptBy"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "a")
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert escrow.creditOf(treasury) == 2 * FEE
    assert jobs.states(job_id) == [PAID, PAID, 0]


def test_confirm_with_nobody_revealed_after_accept_window_reverts(
    escrow, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    sleep_past(jobs.job(job_id)["acceptBy"])
    with reverts("EscrowNotAllRevealed", job_id, 0, 2):
        escrow.confirm(job_id, {"from": renter})


def test_majority_counts_accepted_replicas_and_refunds_empty_slots(
    escrow, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "b")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "b")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    # one against one of two accepted: no majority, both paid; the empty slot is refunded
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert jobs.states(job_id) == [PAID, PAID, 0]


def test_two_of_three_accepted_agreeing_slash_the_third(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.run(job_id, [(providers[0], "a"), (providers[1], "b"), (providers[2], "b")])
    escrow.confirm(job_id, {"from": renter})
    assert jobs.states(job_id) == [SLASHED, PAID, PAID]


def test_named_co_replica_cannot_be_replaced_by_another_provider(
    escrow, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    with reverts("EscrowNoSlotFor", job_id, providers[2].address):
        escrow.accept(job_id, {"from": providers[2]})
