"""JobEscrow with several replicas: the strict-majority settlement rule."""

import pytest
from conftest import (
    COLLATERAL,
    FEE,
    PAID,
    PARAMS,
    PRICE,
    RELEASED,
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
    job_id = jobs.fund(renter, replicas=len(results))
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


def test_three_different_results_pay_and_slash_nobody(
    escrow, registry, jobs, renter, providers, treasury, balances, token
):
    results = [(providers[0], "a"), (providers[1], "b"), (providers[2], "c")]
    job_id, tx = settle_by_confirm(escrow, jobs, renter, results)
    assert escrow.creditOf(renter) == 3 * PRICE
    assert [escrow.creditOf(p) for p in providers[:3]] == [0, 0, 0]
    assert escrow.creditOf(treasury) == 0
    assert [plain(registry.stakeOf(p))[:2] for p in providers[:3]] == [(STAKE, 0)] * 3
    assert token.balanceOf(treasury) == balances["treasury"]
    assert jobs.states(job_id) == [RELEASED] * 3
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


def test_five_replicas_two_two_one_has_no_majority(escrow, jobs, renter, providers):
    labels = ["a", "a", "b", "b", "c"]
    job_id, _ = settle_by_confirm(escrow, jobs, renter, list(zip(providers, labels, strict=True)))
    assert escrow.creditOf(renter) == 5 * PRICE
    assert jobs.states(job_id) == [RELEASED] * 5


def test_two_disagreeing_replicas_have_no_majority(escrow, registry, jobs, renter, providers):
    job_id, _ = settle_by_confirm(escrow, jobs, renter, [(providers[0], "a"), (providers[1], "b")])
    assert escrow.creditOf(renter) == 2 * PRICE
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == 0
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)
    assert jobs.states(job_id) == [RELEASED, RELEASED]


def test_two_agreeing_replicas_are_both_paid(escrow, jobs, renter, providers):
    job_id, _ = settle_by_confirm(escrow, jobs, renter, [(providers[0], "a"), (providers[1], "a")])
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert jobs.states(job_id) == [PAID, PAID]


def test_reveal_before_all_replicas_committed_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2)
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    with reverts("EscrowRevealTooEarly", job_id, 1, 2):
        jobs.reveal(job_id, providers[0], "a")


def test_reveal_after_deadline_allowed_when_a_replica_never_committed(
    escrow, jobs, renter, providers
):
    job_id = jobs.fund(renter, replicas=2)
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    assert jobs.job(job_id)["revealed"] == 1
    assert jobs.job(job_id)["challengeEnds"] == 0


def test_confirm_needs_every_replica_revealed(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=3)
    jobs.accept(job_id, *providers[:3])
    for p in providers[:3]:
        jobs.commit(job_id, p, "a")
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "a")
    with reverts("EscrowNotAllRevealed", job_id, 2, 3):
        escrow.confirm(job_id, {"from": renter})


def test_silent_replica_is_slashed_at_finalize(escrow, registry, jobs, renter, providers, outsider):
    job_id = jobs.fund(renter, replicas=3)
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
    job_id = jobs.fund(renter, replicas=3)
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


def test_lone_revealer_among_three_accepted_has_no_majority(
    escrow, registry, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter, replicas=3)
    jobs.accept(job_id, *providers[:3])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [RELEASED, SLASHED, SLASHED]
    assert escrow.creditOf(providers[0]) == 0
    assert escrow.creditOf(renter) == 3 * PRICE
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)


def test_majority_counts_accepted_replicas_and_refunds_empty_slots(
    escrow, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter, replicas=3)
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, providers[0], "a")
    jobs.reveal(job_id, providers[1], "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert jobs.states(job_id) == [PAID, PAID, 0]
