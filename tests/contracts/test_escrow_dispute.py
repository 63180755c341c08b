"""JobEscrow disputes: a single-replica result re-run by two verifiers."""

import pytest
from brownie import chain
from conftest import (
    CANCELLED,
    COLLATERAL,
    DISPUTED,
    FEE,
    PAID,
    PARAMS,
    PRICE,
    RELEASED,
    SETTLED,
    SLASH_TO_TREASURY,
    SLASHED,
    STAKE,
    ZERO_ADDRESS,
    plain,
    sleep_past,
)


def new_deadline():
    return chain.time() + PARAMS.accept_window + 200


@pytest.fixture
def revealed_job(jobs, renter, providers):
    """A single-replica job whose provider (providers[0]) revealed "a"."""
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    return job_id


def verify(jobs, job_id, results):
    """Verifiers accept, commit and reveal; `results` is (provider, label) per verifier."""
    jobs.run(job_id, results)


def test_dispute_takes_bond_and_opens_two_verifier_slots(
    escrow, token, jobs, renter, providers, revealed_job
):
    before = token.balanceOf(renter)
    deadline = new_deadline()
    tx = escrow.dispute(revealed_job, deadline, providers[1:3], {"from": renter})
    assert before - token.balanceOf(renter) == 2 * PRICE
    job = jobs.job(revealed_job)
    assert job["status"] == DISPUTED
    assert (job["replicas"], job["accepted"], job["revealed"]) == (3, 1, 1)
    assert job["acceptBy"] == tx.timestamp + PARAMS.accept_window
    assert job["deadline"] == deadline
    assert job["challengeEnds"] == 0
    assert job["open"] is False
    assert plain(escrow.getReplica(revealed_job, 1))[:2] == (providers[1], 0)
    assert plain(escrow.getReplica(revealed_job, 2))[:2] == (providers[2], 0)
    assert tx.events["JobDisputed"]["bond"] == 2 * PRICE


def test_honest_original_is_paid_and_verifiers_are_paid_from_bond(
    escrow, token, jobs, renter, providers, treasury, revealed_job
):
    before = token.balanceOf(renter)
    escrow.dispute(revealed_job, new_deadline(), providers[1:3], {"from": renter})
    verify(jobs, revealed_job, [(providers[1], "a"), (providers[2], "a")])
    escrow.confirm(revealed_job, {"from": renter})
    assert [escrow.creditOf(p) for p in providers[:3]] == [PRICE - FEE] * 3
    assert escrow.creditOf(treasury) == 3 * FEE
    assert escrow.creditOf(renter) == 0
    assert before - token.balanceOf(renter) == 2 * PRICE
    assert jobs.states(revealed_job) == [PAID] * 3


def test_wrong_original_is_slashed_and_its_price_refunded(
    escrow, registry, token, jobs, renter, providers, revealed_job
):
    escrow.dispute(revealed_job, new_deadline(), providers[1:3], {"from": renter})
    verify(jobs, revealed_job, [(providers[1], "b"), (providers[2], "b")])
    before = token.balanceOf(renter)
    escrow.confirm(revealed_job, {"from": renter})
    assert escrow.creditOf(providers[0]) == 0
    assert escrow.creditOf(providers[1]) == escrow.creditOf(providers[2]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert token.balanceOf(renter) - before == COLLATERAL - SLASH_TO_TREASURY
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)
    assert jobs.states(revealed_job) == [SLASHED, PAID, PAID]


def test_open_dispute_takes_any_active_verifier(escrow, jobs, renter, providers, revealed_job):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    assert jobs.job(revealed_job)["open"] is True
    verify(jobs, revealed_job, [(providers[4], "a"), (providers[3], "a")])
    escrow.confirm(revealed_job, {"from": renter})
    assert escrow.creditOf(providers[4]) == escrow.creditOf(providers[3]) == PRICE - FEE


def test_original_provider_cannot_verify_its_own_result(
    escrow, jobs, renter, providers, revealed_job, reverts
):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    with reverts("EscrowAlreadyAccepted", revealed_job, providers[0].address):
        escrow.accept(revealed_job, {"from": providers[0]})


def test_unnamed_provider_cannot_verify_named_dispute(
    escrow, renter, providers, revealed_job, reverts
):
    escrow.dispute(revealed_job, new_deadline(), providers[1:3], {"from": renter})
    with reverts("EscrowNoSlotFor", revealed_job, providers[3].address):
        escrow.accept(revealed_job, {"from": providers[3]})


def test_dispute_without_verifiers_pays_original_and_refunds_bond(
    escrow, jobs, renter, providers, outsider, revealed_job
):
    escrow.dispute(revealed_job, new_deadline(), providers[1:3], {"from": renter})
    jobs.sleep_past_challenge(revealed_job)
    escrow.finalize(revealed_job, {"from": outsider})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(renter) == 2 * PRICE
    assert jobs.states(revealed_job) == [PAID, 0, 0]


def test_one_disagreeing_verifier_alone_refunds_everything(
    escrow, registry, jobs, renter, providers, outsider, revealed_job
):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    jobs.accept(revealed_job, providers[1])
    jobs.commit(revealed_job, providers[1], "b")
    sleep_past(jobs.job(revealed_job)["deadline"])
    jobs.reveal(revealed_job, providers[1], "b")
    jobs.sleep_past_challenge(revealed_job)
    escrow.finalize(revealed_job, {"from": outsider})
    assert escrow.creditOf(renter) == 3 * PRICE
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == 0
    assert jobs.states(revealed_job) == [RELEASED, RELEASED, 0]
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)


def test_one_agreeing_verifier_alone_makes_a_majority(
    escrow, jobs, renter, providers, outsider, revealed_job
):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    jobs.accept(revealed_job, providers[1])
    jobs.commit(revealed_job, providers[1], "a")
    sleep_past(jobs.job(revealed_job)["deadline"])
    jobs.reveal(revealed_job, providers[1], "a")
    jobs.sleep_past_challenge(revealed_job)
    escrow.finalize(revealed_job, {"from": outsider})
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert jobs.states(revealed_job) == [PAID, PAID, 0]


def test_three_different_results_in_dispute_refund_everything(
    escrow, jobs, renter, providers, revealed_job
):
    escrow.dispute(revealed_job, new_deadline(), providers[1:3], {"from": renter})
    verify(jobs, revealed_job, [(providers[1], "b"), (providers[2], "c")])
    escrow.confirm(revealed_job, {"from": renter})
    assert escrow.creditOf(renter) == 3 * PRICE
    assert jobs.states(revealed_job) == [RELEASED] * 3


def test_silent_verifier_is_slashed(escrow, registry, jobs, renter, providers, revealed_job):
    escrow.dispute(revealed_job, new_deadline(), providers[1:3], {"from": renter})
    jobs.accept(revealed_job, providers[1], providers[2])
    jobs.commit(revealed_job, providers[2], "a")
    sleep_past(jobs.job(revealed_job)["deadline"])
    jobs.reveal(revealed_job, providers[2], "a")
    jobs.sleep_past_challenge(revealed_job)
    escrow.finalize(revealed_job, {"from": renter})
    assert jobs.states(revealed_job) == [PAID, SLASHED, PAID]
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE - COLLATERAL, 0)
    assert escrow.creditOf(renter) == PRICE


def test_dispute_after_challenge_window_reverts(escrow, jobs, renter, revealed_job, reverts):
    challenge_ends = jobs.job(revealed_job)["challengeEnds"]
    sleep_past(challenge_ends)
    with reverts("EscrowWindowClosed", revealed_job, challenge_ends):
        escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})


def test_dispute_by_other_than_renter_reverts(escrow, outsider, revealed_job, reverts):
    with reverts("EscrowNotRenter", revealed_job, outsider.address):
        escrow.dispute(revealed_job, new_deadline(), [], {"from": outsider})


def test_dispute_of_replicated_job_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2)
    jobs.run(job_id, [(providers[0], "a"), (providers[1], "b")])
    with reverts("EscrowNotDisputable", job_id):
        escrow.dispute(job_id, new_deadline(), [], {"from": renter})


def test_dispute_before_reveal_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    with reverts("EscrowNotDisputable", job_id):
        escrow.dispute(job_id, new_deadline(), [], {"from": renter})


def test_dispute_with_deadline_inside_accept_window_reverts(escrow, renter, revealed_job, reverts):
    with reverts("EscrowDeadlineTooSoon"):
        escrow.dispute(revealed_job, chain.time() + 50, [], {"from": renter})


def test_dispute_naming_one_verifier_reverts(escrow, renter, providers, revealed_job, reverts):
    with reverts("EscrowBadProviders", 1, 2):
        escrow.dispute(revealed_job, new_deadline(), [providers[1]], {"from": renter})


@pytest.mark.parametrize(
    "pick",
    [lambda p: [p[0], p[1]], lambda p: [p[1], p[0]], lambda p: [p[1], p[1]]],
    ids=["original-first", "original-second", "duplicate"],
)
def test_dispute_naming_original_or_duplicate_verifier_reverts(
    escrow, renter, providers, revealed_job, reverts, pick
):
    verifiers = pick(providers)
    bad = verifiers[0] if verifiers[0] == providers[0] else verifiers[1]
    with reverts("EscrowBadProvider", bad.address):
        escrow.dispute(revealed_job, new_deadline(), verifiers, {"from": renter})


def test_dispute_naming_zero_address_reverts(escrow, renter, providers, revealed_job, reverts):
    with reverts("EscrowBadProvider", ZERO_ADDRESS):
        escrow.dispute(revealed_job, new_deadline(), [ZERO_ADDRESS, providers[1]], {"from": renter})


def test_dispute_without_bond_allowance_reverts(escrow, token, renter, revealed_job, reverts):
    token.approve(escrow, 0, {"from": renter})
    with reverts("ERC20InsufficientAllowance"):
        escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})


def test_disputed_job_cannot_be_disputed_again(escrow, renter, revealed_job, reverts):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    with reverts("EscrowNotDisputable", revealed_job):
        escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})


def test_disputed_job_cannot_be_cancelled(escrow, jobs, renter, revealed_job, reverts):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    sleep_past(jobs.job(revealed_job)["acceptBy"])
    with reverts("EscrowNotCancellable", revealed_job):
        escrow.cancel(revealed_job, {"from": renter})


def test_disputed_job_is_not_a_no_show(escrow, jobs, renter, providers, revealed_job, reverts):
    escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})
    jobs.accept(revealed_job, providers[1])
    sleep_past(jobs.job(revealed_job)["deadline"] + PARAMS.reveal_window)
    with reverts("EscrowNotNoShow", revealed_job):
        escrow.claimNoShow(revealed_job, {"from": renter})


def test_confirmed_job_cannot_be_disputed(escrow, renter, revealed_job, reverts):
    escrow.confirm(revealed_job, {"from": renter})
    with reverts("EscrowJobNotLive", revealed_job, SETTLED):
        escrow.dispute(revealed_job, new_deadline(), [], {"from": renter})


def test_cancelled_job_cannot_be_disputed(escrow, jobs, renter, reverts):
    job_id = jobs.fund(renter)
    escrow.cancel(job_id, {"from": renter})
    with reverts("EscrowJobNotLive", job_id, CANCELLED):
        escrow.dispute(job_id, new_deadline(), [], {"from": renter})
