"""JobEscrow disputes: a committed single-replica result re-run by two matcher-drawn verifiers.

The renter disputes during the challenge window with a `2 * price` bond and the two
verifiers the matcher signed for this job. The contract sets the verifiers' deadline
(the original's run time after a fresh acceptance window). Then all three reveal, the
original too. The original's result stands unless both verifiers revealed the same
other hash; a verifier whose dissent nobody backs is Released (unpaid, not slashed).
"""

import pytest
from conftest import (
    CANCELLED,
    COLLATERAL,
    COMMITTED,
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
    commitment,
    plain,
    result_hash,
    salt_for,
    sleep_past,
    verifiers_for,
)


@pytest.fixture
def committed_job(jobs, renter, providers):
    """A single-replica job whose provider (providers[0]) committed "a"."""
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    return job_id


@pytest.fixture
def disputed(jobs, renter, providers, committed_job):
    """`committed_job` disputed with verifiers providers[1] and providers[2]."""
    jobs.dispute(committed_job, renter, providers[1:3])
    return committed_job


def verify(jobs, job_id, results, original=None, original_label="a"):
    """Verifiers accept and commit, then everyone reveals (the original last, if given).

    `results` is (provider, label) per verifier; a label of None accepts but stays silent.
    """
    jobs.accept(job_id, *(p for p, _ in results))
    for provider, label in results:
        if label is not None:
            jobs.commit(job_id, provider, label)
    if any(label is None for _, label in results):
        sleep_past(jobs.job(job_id)["deadline"])
    for provider, label in results:
        if label is not None:
            jobs.reveal(job_id, provider, label)
    if original is not None:
        jobs.reveal(job_id, original, original_label)


# ------------------------------------------------------------------- the dispute


def test_dispute_takes_bond_and_opens_two_verifier_slots(
    escrow, token, jobs, renter, providers, committed_job
):
    before = token.balanceOf(renter)
    tx = jobs.dispute(committed_job, renter, providers[1:3])
    assert before - token.balanceOf(renter) == 2 * PRICE
    job = jobs.job(committed_job)
    assert job["status"] == DISPUTED
    assert (job["replicas"], job["accepted"], job["committed"], job["revealed"]) == (3, 1, 1, 0)
    assert job["challengeEnds"] == 0
    assert job["open"] is False
    assert plain(escrow.getReplica(committed_job, 1))[:2] == (providers[1], 0)
    assert plain(escrow.getReplica(committed_job, 2))[:2] == (providers[2], 0)
    assert tx.events["JobDisputed"]["bond"] == 2 * PRICE


def test_dispute_deadline_is_the_contracts(escrow, jobs, renter, providers, committed_job):
    """acceptBy = now + acceptWindow; deadline = acceptBy + the original's run time."""
    original = jobs.job(committed_job)
    run_time = original["deadline"] - original["acceptBy"]
    sleep_past(original["challengeEnds"] - 50, margin=0)  # a late dispute changes nothing
    tx = jobs.dispute(committed_job, renter, providers[1:3])
    job = jobs.job(committed_job)
    assert job["acceptBy"] == tx.timestamp + PARAMS.accept_window
    assert job["deadline"] == job["acceptBy"] + run_time
    assert tx.events["JobDisputed"]["deadline"] == job["deadline"]
    assert escrow.finalizableAt(committed_job) == (
        job["deadline"] + PARAMS.reveal_window + PARAMS.challenge_window
    )


def test_dispute_keeps_the_original_commitment_hidden(
    escrow, jobs, providers, committed_job, disputed
):
    digest = commitment(result_hash("a"), salt_for(providers[0]), providers[0])
    assert plain(escrow.getReplica(disputed, 0)) == (providers[0], COMMITTED, digest)


# -------------------------------------------------------------------- outcomes


def test_honest_original_is_paid_and_verifiers_are_paid_from_bond(
    escrow, token, jobs, renter, providers, treasury, committed_job
):
    before = token.balanceOf(renter)
    jobs.dispute(committed_job, renter, providers[1:3])
    verify(jobs, committed_job, [(providers[1], "a"), (providers[2], "a")], providers[0])
    tx = escrow.confirm(committed_job, {"from": renter})
    assert [escrow.creditOf(p) for p in providers[:3]] == [PRICE - FEE] * 3
    assert escrow.creditOf(treasury) == 3 * FEE
    assert escrow.creditOf(renter) == 0
    assert before - token.balanceOf(renter) == 2 * PRICE
    assert jobs.states(committed_job) == [PAID] * 3
    assert bytes(tx.events["JobSettled"]["resultHash"]) == result_hash("a")


def test_wrong_original_is_slashed_and_its_price_refunded(
    escrow, registry, token, jobs, renter, providers, disputed
):
    verify(jobs, disputed, [(providers[1], "b"), (providers[2], "b")], providers[0])
    before = token.balanceOf(renter)
    escrow.confirm(disputed, {"from": renter})
    assert escrow.creditOf(providers[0]) == 0
    assert escrow.creditOf(providers[1]) == escrow.creditOf(providers[2]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert token.balanceOf(renter) - before == COLLATERAL - SLASH_TO_TREASURY
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)
    assert jobs.states(disputed) == [SLASHED, PAID, PAID]


def test_one_dissenting_verifier_against_two_is_slashed(
    escrow, registry, jobs, renter, providers, disputed
):
    verify(jobs, disputed, [(providers[1], "a"), (providers[2], "b")], providers[0])
    escrow.confirm(disputed, {"from": renter})
    assert jobs.states(disputed) == [PAID, PAID, SLASHED]
    assert escrow.creditOf(renter) == PRICE
    assert plain(registry.stakeOf(providers[2]))[:2] == (STAKE - COLLATERAL, 0)


def test_three_different_results_keep_the_original_and_release_the_verifiers(
    escrow, registry, jobs, renter, providers, treasury, disputed
):
    verify(jobs, disputed, [(providers[1], "b"), (providers[2], "c")], providers[0])
    tx = escrow.confirm(disputed, {"from": renter})
    assert jobs.states(disputed) == [PAID, RELEASED, RELEASED]
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(providers[1]) == escrow.creditOf(providers[2]) == 0
    assert escrow.creditOf(renter) == 2 * PRICE  # the bond comes back
    assert escrow.creditOf(treasury) == FEE
    assert [plain(registry.stakeOf(p))[:2] for p in providers[:3]] == [(STAKE, 0)] * 3
    assert "ReplicaSlashed" not in tx.events
    assert bytes(tx.events["JobSettled"]["resultHash"]) == result_hash("a")


def test_dissenting_verifier_with_a_silent_partner_is_released_and_the_silent_one_slashed(
    escrow, registry, jobs, renter, providers, outsider, disputed
):
    verify(jobs, disputed, [(providers[1], "b"), (providers[2], None)], providers[0])
    jobs.sleep_past_challenge(disputed)
    escrow.finalize(disputed, {"from": outsider})
    assert jobs.states(disputed) == [PAID, RELEASED, SLASHED]
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(providers[1]) == 0
    assert escrow.creditOf(renter) == 2 * PRICE
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE, 0)
    assert plain(registry.stakeOf(providers[2]))[:2] == (STAKE - COLLATERAL, 0)


def test_lone_dissenting_verifier_does_not_overturn_the_original(
    escrow, registry, jobs, renter, providers, outsider, disputed
):
    jobs.accept(disputed, providers[1])
    jobs.commit(disputed, providers[1], "b")
    sleep_past(jobs.job(disputed)["acceptBy"])  # providers[2] never accepted
    jobs.reveal(disputed, providers[1], "b")
    jobs.reveal(disputed, providers[0], "a")
    escrow.confirm(disputed, {"from": renter})
    assert jobs.states(disputed) == [PAID, RELEASED, 0]
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(providers[1]) == 0
    assert escrow.creditOf(renter) == 2 * PRICE
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE, 0)


def test_one_agreeing_verifier_alone_makes_a_majority(
    escrow, jobs, renter, providers, outsider, disputed
):
    jobs.accept(disputed, providers[1])
    jobs.commit(disputed, providers[1], "a")
    sleep_past(jobs.job(disputed)["acceptBy"])
    jobs.reveal(disputed, providers[1], "a")
    jobs.reveal(disputed, providers[0], "a")
    jobs.sleep_past_challenge(disputed)
    escrow.finalize(disputed, {"from": outsider})
    assert escrow.creditOf(providers[0]) == escrow.creditOf(providers[1]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert jobs.states(disputed) == [PAID, PAID, 0]


def test_dispute_without_verifiers_pays_original_and_refunds_bond(
    escrow, jobs, renter, providers, outsider, disputed
):
    sleep_past(jobs.job(disputed)["acceptBy"])
    jobs.reveal(disputed, providers[0], "a")
    jobs.sleep_past_challenge(disputed)
    escrow.finalize(disputed, {"from": outsider})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(renter) == 2 * PRICE
    assert jobs.states(disputed) == [PAID, 0, 0]


def test_silent_verifier_is_slashed(escrow, registry, jobs, renter, providers, disputed):
    verify(jobs, disputed, [(providers[1], None), (providers[2], "a")], providers[0])
    jobs.sleep_past_challenge(disputed)
    escrow.finalize(disputed, {"from": renter})
    assert jobs.states(disputed) == [PAID, SLASHED, PAID]
    assert plain(registry.stakeOf(providers[1]))[:2] == (STAKE - COLLATERAL, 0)
    assert escrow.creditOf(renter) == PRICE


def test_silent_original_is_slashed_when_the_verifiers_agree_with_it(
    escrow, registry, jobs, renter, providers, outsider, disputed
):
    verify(jobs, disputed, [(providers[1], "a"), (providers[2], "a")])
    jobs.sleep_past_challenge(disputed)
    escrow.finalize(disputed, {"from": outsider})
    assert jobs.states(disputed) == [SLASHED, PAID, PAID]
    assert escrow.creditOf(renter) == PRICE
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)


def test_silent_original_is_slashed_and_disagreeing_verifiers_paid(
    escrow, jobs, renter, providers, outsider, disputed
):
    verify(jobs, disputed, [(providers[1], "b"), (providers[2], "c")])
    jobs.sleep_past_challenge(disputed)
    escrow.finalize(disputed, {"from": outsider})
    assert jobs.states(disputed) == [SLASHED, PAID, PAID]
    assert escrow.creditOf(providers[1]) == escrow.creditOf(providers[2]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE


def test_dispute_where_nobody_reveals_is_a_no_show(
    escrow, registry, jobs, renter, providers, disputed
):
    jobs.accept(disputed, providers[1])
    sleep_past(jobs.job(disputed)["deadline"] + PARAMS.reveal_window)
    escrow.claimNoShow(disputed, {"from": renter})
    assert jobs.states(disputed) == [SLASHED, SLASHED, 0]
    assert escrow.creditOf(renter) == 3 * PRICE
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)


# ---------------------------------------------------------- reveals and confirm


def test_reveal_before_dispute_reverts_result_hidden(jobs, providers, committed_job, reverts):
    with reverts("EscrowResultHidden", committed_job):
        jobs.reveal(committed_job, providers[0], "a")


def test_original_cannot_reveal_before_verifiers_commit(jobs, providers, disputed, reverts):
    with reverts("EscrowRevealTooEarly", disputed, 1, 3):
        jobs.reveal(disputed, providers[0], "a")
    jobs.accept(disputed, providers[1], providers[2])
    jobs.commit(disputed, providers[1], "a")
    with reverts("EscrowRevealTooEarly", disputed, 2, 3):
        jobs.reveal(disputed, providers[0], "a")
    jobs.commit(disputed, providers[2], "a")
    jobs.reveal(disputed, providers[0], "a")


def test_confirm_of_disputed_job_needs_every_reveal(
    escrow, jobs, renter, providers, disputed, reverts
):
    verify(jobs, disputed, [(providers[1], "a"), (providers[2], "a")])
    with reverts("EscrowNotAllRevealed", disputed, 2, 3):
        escrow.confirm(disputed, {"from": renter})


def test_original_provider_cannot_take_a_verifier_slot(escrow, providers, disputed, reverts):
    with reverts("EscrowAlreadyAccepted", disputed, providers[0].address):
        escrow.accept(disputed, {"from": providers[0]})


def test_unnamed_provider_cannot_verify(escrow, providers, disputed, reverts):
    with reverts("EscrowNoSlotFor", disputed, providers[3].address):
        escrow.accept(disputed, {"from": providers[3]})


# ---------------------------------------------------------------------- reverts


def test_dispute_after_challenge_window_reverts(
    escrow, jobs, renter, providers, committed_job, reverts
):
    challenge_ends = jobs.job(committed_job)["challengeEnds"]
    sleep_past(challenge_ends)
    with reverts("EscrowWindowClosed", committed_job, challenge_ends):
        jobs.dispute(committed_job, renter, providers[1:3])


def test_dispute_by_other_than_renter_reverts(
    escrow, jobs, outsider, providers, committed_job, reverts
):
    with reverts("EscrowNotRenter", committed_job, outsider.address):
        jobs.dispute(committed_job, outsider, providers[1:3])


def test_dispute_of_replicated_job_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.run(job_id, [(providers[0], "a"), (providers[1], "b")])
    with reverts("EscrowNotDisputable", job_id):
        jobs.dispute(job_id, renter, providers[2:4])


def test_dispute_before_commit_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    with reverts("EscrowNotDisputable", job_id):
        jobs.dispute(job_id, renter, providers[1:3])
    jobs.accept(job_id, providers[0])
    with reverts("EscrowNotDisputable", job_id):
        jobs.dispute(job_id, renter, providers[1:3])


@pytest.mark.parametrize("count", [0, 1, 3])
def test_dispute_naming_other_than_two_verifiers_reverts(
    escrow, renter, providers, committed_job, reverts, count
):
    """Open disputes (no verifiers) are gone, and a dispute takes exactly two."""
    named = providers[1 : 1 + count]
    with reverts("EscrowBadProviders", count, 2):
        escrow.dispute(committed_job, verifiers_for(escrow, committed_job, named), {"from": renter})


@pytest.mark.parametrize(
    "pick",
    [
        lambda p, r: [p[0], p[1]],
        lambda p, r: [p[1], p[0]],
        lambda p, r: [p[1], p[1]],
        lambda p, r: [r, p[1]],
        lambda p, r: [p[1], r],
        lambda p, r: [ZERO_ADDRESS, p[1]],
    ],
    ids=["original-first", "original-second", "duplicate", "renter-first", "renter-second", "zero"],
)
def test_dispute_naming_a_bad_verifier_reverts_even_when_signed(
    escrow, renter, providers, committed_job, reverts, pick
):
    verifiers = pick(providers, renter)
    bad = next(
        v for i, v in enumerate(verifiers) if v in (providers[0], renter, ZERO_ADDRESS) or i == 1
    )
    with reverts("EscrowBadProvider", str(bad)):
        escrow.dispute(
            committed_job, verifiers_for(escrow, committed_job, verifiers), {"from": renter}
        )


def test_dispute_without_bond_allowance_reverts(
    escrow, token, jobs, renter, providers, committed_job, reverts
):
    token.approve(escrow, 0, {"from": renter})
    with reverts("ERC20InsufficientAllowance"):
        jobs.dispute(committed_job, renter, providers[1:3])


def test_disputed_job_cannot_be_disputed_again(jobs, renter, providers, disputed, reverts):
    with reverts("EscrowNotDisputable", disputed):
        jobs.dispute(disputed, renter, providers[3:5])


def test_disputed_job_cannot_be_cancelled(escrow, jobs, renter, disputed, reverts):
    sleep_past(jobs.job(disputed)["acceptBy"])
    with reverts("EscrowNotCancellable", disputed):
        escrow.cancel(disputed, {"from": renter})


def test_disputed_job_with_a_reveal_is_not_a_no_show(
    escrow, jobs, renter, providers, disputed, reverts
):
    jobs.accept(disputed, providers[1])
    sleep_past(jobs.job(disputed)["deadline"])
    jobs.reveal(disputed, providers[0], "a")
    sleep_past(jobs.job(disputed)["deadline"] + PARAMS.reveal_window)
    with reverts("EscrowNotNoShow", disputed):
        escrow.claimNoShow(disputed, {"from": renter})


def test_confirmed_job_cannot_be_disputed(escrow, jobs, renter, providers, committed_job, reverts):
    escrow.confirm(committed_job, {"from": renter})
    with reverts("EscrowJobNotLive", committed_job, SETTLED):
        jobs.dispute(committed_job, renter, providers[1:3])


def test_cancelled_job_cannot_be_disputed(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    escrow.cancel(job_id, {"from": renter})
    with reverts("EscrowJobNotLive", job_id, CANCELLED):
        jobs.dispute(job_id, renter, providers[1:3])
