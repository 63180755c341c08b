"""JobEscrow lifecycle: fund, accept, commit, reveal, confirm / finalize, withdraw.

A single replica's result stays hidden: its commit starts the challenge window and is
its delivery. Reveals are tested on two-replica jobs, whose providers the matcher signed.
"""

import pytest
from brownie import JobEscrow, chain
from conftest import (
    ACCEPTED,
    CANCELLED,
    COLLATERAL,
    COMMITTED,
    FEE,
    FUNDED,
    MATCHER,
    PAID,
    PARAMS,
    PERMIT_KEY,
    PRICE,
    REVEALED,
    SETTLED,
    SLASHED,
    SPEC,
    STAKE,
    TOKEN,
    ZERO_ADDRESS,
    assign,
    commitment,
    plain,
    result_hash,
    salt_for,
    sign_permit,
    sleep_past,
)


def fund_args(escrow, renter, *, price=PRICE, replicas=1, providers=(), deadline_in=200):
    """`fund` arguments; a replicated job's providers come signed by the matcher."""
    deadline = chain.time() + PARAMS.accept_window + deadline_in
    return [SPEC, 7, price, deadline, replicas, assign(escrow, renter, providers)]


@pytest.fixture
def pair(jobs, renter, providers):
    """A two-replica job; providers[0] and [1] accepted and committed "a"."""
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "a")
    return job_id


# ------------------------------------------------------------------------- fund


def test_fund_deposits_price_times_replicas(escrow, token, renter, providers):
    before = token.balanceOf(renter)
    tx = escrow.fund(
        *fund_args(escrow, renter, replicas=3, providers=providers[:3]), {"from": renter}
    )
    assert before - token.balanceOf(renter) == 3 * PRICE
    assert token.balanceOf(escrow) == 3 * PRICE
    assert tx.events["JobFunded"]["deposit"] == 3 * PRICE
    assert list(tx.events["JobFunded"]["providers"]) == providers[:3]
    assert tx.return_value == escrow.jobCount() == 1


def test_fund_records_job_terms(escrow, jobs, renter, providers):
    args = fund_args(escrow, renter, replicas=2, providers=providers[:2])
    tx = escrow.fund(*args, {"from": renter})
    job = jobs.job(1)
    assert job["renter"] == renter
    assert job["price"] == PRICE
    assert job["acceptBy"] == tx.timestamp + PARAMS.accept_window
    assert job["deadline"] == args[3]
    assert job["challengeEnds"] == 0
    assert (job["replicas"], job["accepted"], job["committed"], job["revealed"]) == (2, 0, 0, 0)
    assert job["status"] == FUNDED
    assert job["open"] is False
    assert job["collateral"] == COLLATERAL
    assert job["feeBps"] == PARAMS.fee_bps


def test_fund_single_replica_without_provider_is_open(escrow, jobs, renter):
    escrow.fund(*fund_args(escrow, renter), {"from": renter})
    assert jobs.job(1)["open"] is True
    assert plain(escrow.getReplica(1, 0))[:2] == (ZERO_ADDRESS, 0)


def test_fund_with_named_providers_reserves_their_slots(escrow, jobs, renter, providers):
    escrow.fund(*fund_args(escrow, renter, replicas=2, providers=providers[:2]), {"from": renter})
    assert jobs.job(1)["open"] is False
    assert plain(escrow.getReplica(1, 0))[:2] == (providers[0], 0)
    assert plain(escrow.getReplica(1, 1))[:2] == (providers[1], 0)


def test_fund_with_zero_price_reverts(escrow, renter, reverts):
    with reverts("EscrowZeroPrice"):
        escrow.fund(*fund_args(escrow, renter, price=0), {"from": renter})


@pytest.mark.parametrize("replicas", [0, 6])
def test_fund_with_bad_replica_count_reverts(escrow, renter, reverts, replicas):
    with reverts("EscrowBadReplicas", replicas, 5):
        escrow.fund(*fund_args(escrow, renter, replicas=replicas), {"from": renter})


def test_fund_with_deadline_inside_accept_window_reverts(escrow, renter, reverts):
    with reverts("EscrowDeadlineTooSoon"):
        escrow.fund(*fund_args(escrow, renter, deadline_in=-20), {"from": renter})


def test_fund_with_deadline_beyond_max_run_time_reverts(escrow, renter, reverts):
    max_run = escrow.MAX_RUN_TIME()
    assert max_run == 7 * 24 * 3600
    with reverts("EscrowDeadlineTooLate"):
        escrow.fund(*fund_args(escrow, renter, deadline_in=max_run + 60), {"from": renter})


def test_fund_with_deadline_of_2_32_minus_1_reverts(escrow, renter, reverts):
    args = fund_args(escrow, renter)
    args[3] = 2**32 - 1
    with reverts("EscrowDeadlineTooLate"):
        escrow.fund(*args, {"from": renter})


def test_fund_with_deadline_inside_max_run_time_funds(escrow, jobs, renter):
    max_run = escrow.MAX_RUN_TIME()
    tx = escrow.fund(*fund_args(escrow, renter, deadline_in=max_run - 60), {"from": renter})
    job = jobs.job(tx.return_value)
    assert 0 < job["deadline"] - job["acceptBy"] <= max_run


def test_fund_with_wrong_number_of_providers_reverts(escrow, renter, providers, reverts):
    with reverts("EscrowBadProviders", 2, 3):
        escrow.fund(
            *fund_args(escrow, renter, replicas=3, providers=providers[:2]), {"from": renter}
        )


def test_fund_single_replica_with_two_providers_reverts(escrow, renter, providers, reverts):
    args = fund_args(escrow, renter)
    args[5] = assign(escrow, renter, providers[:2])  # signed, but one replica takes one provider
    with reverts("EscrowBadProviders", 2, 1):
        escrow.fund(*args, {"from": renter})


def test_fund_open_replicated_job_reverts(escrow, renter, reverts):
    """Open replicated jobs are gone: the matcher names every co-replica."""
    with reverts("EscrowBadProviders", 0, 2):
        escrow.fund(*fund_args(escrow, renter, replicas=2), {"from": renter})


def test_fund_with_zero_address_provider_reverts(escrow, renter, providers, reverts):
    args = fund_args(escrow, renter, replicas=2, providers=[providers[0], ZERO_ADDRESS])
    with reverts("EscrowBadProvider", ZERO_ADDRESS):
        escrow.fund(*args, {"from": renter})


def test_fund_single_replica_naming_zero_address_reverts(escrow, renter, reverts):
    with reverts("EscrowBadProvider", ZERO_ADDRESS):
        escrow.fund(*fund_args(escrow, renter, providers=[ZERO_ADDRESS]), {"from": renter})


def test_fund_with_duplicate_provider_reverts(escrow, renter, providers, reverts):
    named = [providers[0], providers[1], providers[0]]
    with reverts("EscrowBadProvider", providers[0].address):
        escrow.fund(*fund_args(escrow, renter, replicas=3, providers=named), {"from": renter})


def test_fund_replicated_naming_the_renter_reverts_even_when_signed(
    escrow, renter, providers, reverts
):
    named = [providers[0], renter]
    with reverts("EscrowBadProvider", renter.address):
        escrow.fund(*fund_args(escrow, renter, replicas=2, providers=named), {"from": renter})


def test_fund_with_price_whose_collateral_overflows_reverts(
    token, registry, deployer, treasury, renter, reverts
):
    windows = [PARAMS.accept_window, PARAMS.reveal_window, PARAMS.challenge_window]
    double = JobEscrow.deploy(
        token, registry, treasury, 200, windows, 20_000, MATCHER, {"from": deployer}
    )
    price = 2**95  # collateral 200% of price = 2**96: one more than uint96 holds
    with reverts("EscrowPriceTooHigh", price):
        double.fund(*fund_args(double, renter, price=price), {"from": renter})


def test_fund_without_allowance_reverts(escrow, permit_signer, reverts):
    with reverts("ERC20InsufficientAllowance"):
        escrow.fund(*fund_args(escrow, permit_signer), {"from": permit_signer})


# ------------------------------------------------------------------------ permits


def test_fund_with_permit_needs_no_prior_approval(escrow, token, permit_signer, providers):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 2 * PRICE, permit_deadline)
    before = token.balanceOf(permit_signer)
    args = fund_args(escrow, permit_signer, replicas=2, providers=providers[:2])
    escrow.fundWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})
    assert before - token.balanceOf(permit_signer) == 2 * PRICE
    assert escrow.getJob(1)[0] == permit_signer
    assert token.allowance(permit_signer, escrow) == 0


def test_fund_with_permit_checks_the_matcher_signature(
    escrow, token, permit_signer, providers, reverts
):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 2 * PRICE, permit_deadline)
    args = fund_args(escrow, permit_signer, replicas=2, providers=providers[:2])
    args[5] = (args[5][0], args[5][1], b"")  # signature stripped
    with reverts("EscrowNotMatcherSigned", ZERO_ADDRESS, MATCHER):
        escrow.fundWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})


def test_fund_with_front_run_permit_still_funds(escrow, token, permit_signer, outsider):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, PRICE, permit_deadline)
    # someone copies the permit from the mempool and submits it first
    token.permit(permit_signer, escrow, PRICE, permit_deadline, v, r, s, {"from": outsider})
    args = fund_args(escrow, permit_signer)
    escrow.fundWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})
    assert escrow.jobCount() == 1
    assert token.balanceOf(escrow) == PRICE


def test_fund_with_used_permit_and_no_allowance_reverts(
    escrow, token, permit_signer, outsider, reverts
):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, PRICE, permit_deadline)
    token.permit(permit_signer, escrow, PRICE, permit_deadline, v, r, s, {"from": outsider})
    token.approve(escrow, 0, {"from": permit_signer})
    args = fund_args(escrow, permit_signer)
    with reverts("ERC20InsufficientAllowance"):
        escrow.fundWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})


def test_fund_with_permit_for_less_than_deposit_reverts(
    escrow, token, permit_signer, providers, reverts
):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, PRICE, permit_deadline)  # 1 replica
    args = fund_args(escrow, permit_signer, replicas=2, providers=providers[:2])
    with reverts("ERC20InsufficientAllowance"):
        escrow.fundWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})


# ----------------------------------------------------------------------- accept


def test_accept_locks_collateral_and_fills_slot(escrow, registry, jobs, renter, providers):
    job_id = jobs.fund(renter)
    tx = escrow.accept(job_id, {"from": providers[0]})
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, COLLATERAL)
    assert plain(escrow.getReplica(job_id, 0))[:2] == (providers[0], ACCEPTED)
    assert jobs.job(job_id)["accepted"] == 1
    assert tx.events["JobAccepted"]["slot"] == 0


def test_accept_after_accept_window_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    accept_by = jobs.job(job_id)["acceptBy"]
    sleep_past(accept_by)
    with reverts("EscrowWindowClosed", job_id, accept_by):
        escrow.accept(job_id, {"from": providers[0]})


def test_accept_by_inactive_provider_reverts(escrow, registry, jobs, renter, providers, reverts):
    registry.requestUnstake(STAKE, {"from": providers[0]})
    job_id = jobs.fund(renter)
    with reverts("RegistryProviderInactive"):
        escrow.accept(job_id, {"from": providers[0]})


def test_accept_without_enough_free_stake_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, price=STAKE + TOKEN)
    with reverts("RegistryInsufficientFreeStake", providers[0].address, STAKE + TOKEN, STAKE):
        escrow.accept(job_id, {"from": providers[0]})


def test_named_job_refuses_unnamed_provider(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, providers=[providers[0]])
    with reverts("EscrowNoSlotFor", job_id, providers[1].address):
        escrow.accept(job_id, {"from": providers[1]})


def test_named_provider_takes_its_own_slot(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    tx = escrow.accept(job_id, {"from": providers[1]})
    assert tx.events["JobAccepted"]["slot"] == 1


def test_open_job_takes_any_active_provider(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter)
    escrow.accept(job_id, {"from": providers[4]})
    assert escrow.getReplica(job_id, 0)[0] == providers[4]


def test_provider_cannot_take_two_slots(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    escrow.accept(job_id, {"from": providers[0]})
    with reverts("EscrowAlreadyAccepted", job_id, providers[0].address):
        escrow.accept(job_id, {"from": providers[0]})


def test_accept_of_full_job_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    escrow.accept(job_id, {"from": providers[0]})
    with reverts("EscrowNoSlotFor", job_id, providers[1].address):
        escrow.accept(job_id, {"from": providers[1]})


def test_accept_of_unknown_job_reverts(escrow, providers, reverts):
    with reverts("EscrowJobNotLive", 42, 0):
        escrow.accept(42, {"from": providers[0]})


# ----------------------------------------------------------------- commit, reveal


def test_commit_records_commitment(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    digest = commitment(result_hash("a"), salt_for(providers[0]), providers[0])
    escrow.commit(job_id, digest, {"from": providers[0]})
    assert plain(escrow.getReplica(job_id, 0)) == (providers[0], COMMITTED, digest)
    assert jobs.job(job_id)["committed"] == 1


def test_commit_twice_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    with reverts("EscrowWrongReplicaState", job_id, providers[0].address, COMMITTED):
        jobs.commit(job_id, providers[0], "b")


def test_commit_without_accepting_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, providers=[providers[0]])
    with reverts("EscrowNotProvider", job_id, providers[0].address):
        jobs.commit(job_id, providers[0], "a")


def test_commit_after_deadline_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    deadline = jobs.job(job_id)["deadline"]
    sleep_past(deadline)
    with reverts("EscrowWindowClosed", job_id, deadline):
        jobs.commit(job_id, providers[0], "a")


def test_commit_of_single_replica_starts_challenge_window(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    digest = commitment(result_hash("a"), salt_for(providers[0]), providers[0])
    tx = escrow.commit(job_id, digest, {"from": providers[0]})
    job = jobs.job(job_id)
    assert job["challengeEnds"] == tx.timestamp + PARAMS.challenge_window
    assert escrow.finalizableAt(job_id) == job["challengeEnds"]


def test_commit_of_replicated_job_leaves_challenge_window_closed(escrow, jobs, pair):
    assert jobs.job(pair)["challengeEnds"] == 0


def test_reveal_of_single_replica_reverts_result_hidden(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    with reverts("EscrowResultHidden", job_id):
        jobs.reveal(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["deadline"])  # stays hidden after the deadline too
    with reverts("EscrowResultHidden", job_id):
        jobs.reveal(job_id, providers[0], "a")


def test_committed_single_replica_shows_only_the_commitment(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    digest = commitment(result_hash("a"), salt_for(providers[0]), providers[0])
    assert plain(escrow.getReplica(job_id, 0)) == (providers[0], COMMITTED, digest)
    assert digest != result_hash("a")


def test_reveal_records_result_and_opens_challenge_window_after_the_last(
    escrow, jobs, providers, pair
):
    jobs.reveal(pair, providers[0], "a")
    assert plain(escrow.getReplica(pair, 0)) == (providers[0], REVEALED, result_hash("a"))
    assert jobs.job(pair)["challengeEnds"] == 0
    tx = escrow.reveal(pair, result_hash("a"), salt_for(providers[1]), {"from": providers[1]})
    job = jobs.job(pair)
    assert job["revealed"] == 2
    assert job["challengeEnds"] == tx.timestamp + PARAMS.challenge_window
    assert escrow.finalizableAt(pair) == job["challengeEnds"]
    assert bytes(tx.events["ResultRevealed"]["resultHash"]) == result_hash("a")


def test_reveal_with_bad_commitment_reverts(jobs, providers, pair, reverts):
    with reverts("EscrowCommitmentMismatch", pair, providers[0].address):
        jobs.reveal(pair, providers[0], "b")


def test_reveal_with_wrong_salt_reverts(escrow, providers, pair, reverts):
    with reverts("EscrowCommitmentMismatch", pair, providers[0].address):
        escrow.reveal(pair, result_hash("a"), salt_for(providers[1]), {"from": providers[0]})


def test_reveal_twice_reverts(jobs, providers, pair, reverts):
    jobs.reveal(pair, providers[0], "a")
    with reverts("EscrowWrongReplicaState", pair, providers[0].address, REVEALED):
        jobs.reveal(pair, providers[0], "a")


def test_reveal_without_commit_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[1], "a")
    sleep_past(jobs.job(job_id)["deadline"])
    with reverts("EscrowWrongReplicaState", job_id, providers[0].address, ACCEPTED):
        jobs.reveal(job_id, providers[0], "a")


def test_reveal_by_other_provider_reverts(jobs, providers, pair, reverts):
    with reverts("EscrowNotProvider", pair, providers[2].address):
        jobs.reveal(pair, providers[2], "a")


def test_reveal_after_reveal_window_reverts(jobs, providers, pair, reverts):
    reveal_ends = jobs.job(pair)["deadline"] + PARAMS.reveal_window
    sleep_past(reveal_ends)
    with reverts("EscrowWindowClosed", pair, reveal_ends):
        jobs.reveal(pair, providers[0], "a")


# ------------------------------------------------------------------- settlement


def test_confirm_pays_provider_price_less_fee(escrow, registry, jobs, renter, providers, treasury):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    tx = escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(treasury) == FEE
    assert escrow.creditOf(renter) == 0
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)
    assert jobs.job(job_id)["status"] == SETTLED
    assert jobs.states(job_id) == [PAID]
    assert tx.events["ReplicaPaid"]["amount"] == PRICE - FEE
    assert bytes(tx.events["JobSettled"]["resultHash"]) == bytes(32)  # the result stays hidden
    assert tx.events["JobSettled"]["refund"] == 0


def test_confirm_of_replicated_job_settles_on_the_revealed_hash(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.run(job_id, [(providers[0], "a"), (providers[1], "a")])
    tx = escrow.confirm(job_id, {"from": renter})
    assert bytes(tx.events["JobSettled"]["resultHash"]) == result_hash("a")
    assert jobs.states(job_id) == [PAID, PAID]


def test_withdraw_pulls_credit_to_wallet(escrow, token, jobs, renter, providers, treasury):
    renter_before = token.balanceOf(renter)
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    escrow.confirm(job_id, {"from": renter})
    provider_before = token.balanceOf(providers[0])
    tx = escrow.withdraw({"from": providers[0]})
    escrow.withdraw({"from": treasury})
    assert token.balanceOf(providers[0]) - provider_before == PRICE - FEE
    assert token.balanceOf(treasury) == FEE
    assert renter_before - token.balanceOf(renter) == PRICE
    assert token.balanceOf(escrow) == 0
    assert tx.events["Withdrawn"]["amount"] == PRICE - FEE
    assert escrow.creditOf(providers[0]) == 0


def test_second_withdraw_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    escrow.confirm(job_id, {"from": renter})
    escrow.withdraw({"from": providers[0]})
    with reverts("EscrowNothingToWithdraw", providers[0].address):
        escrow.withdraw({"from": providers[0]})


def test_withdraw_after_second_payment_pays_only_new_credit(escrow, token, jobs, renter, providers):
    for _ in range(2):
        job_id = jobs.fund(renter)
        jobs.run(job_id, [(providers[0], "a")])
        escrow.confirm(job_id, {"from": renter})
        before = token.balanceOf(providers[0])
        escrow.withdraw({"from": providers[0]})
        assert token.balanceOf(providers[0]) - before == PRICE - FEE


def test_withdraw_with_no_credit_reverts(escrow, outsider, reverts):
    with reverts("EscrowNothingToWithdraw", outsider.address):
        escrow.withdraw({"from": outsider})


def test_confirm_before_commit_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    with reverts("EscrowNotCommitted", job_id):
        escrow.confirm(job_id, {"from": renter})
    jobs.accept(job_id, providers[0])
    with reverts("EscrowNotCommitted", job_id):
        escrow.confirm(job_id, {"from": renter})


def test_confirm_of_replicated_job_before_reveal_reverts(escrow, renter, pair, reverts):
    with reverts("EscrowNotAllRevealed", pair, 0, 2):
        escrow.confirm(pair, {"from": renter})


def test_finalize_by_third_party_after_challenge_window_pays_provider(
    escrow, jobs, renter, providers, treasury, outsider
):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(treasury) == FEE
    assert escrow.creditOf(renter) == 0
    assert escrow.creditOf(outsider) == 0
    assert jobs.states(job_id) == [PAID]


def test_finalize_inside_challenge_window_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    ready_at = escrow.finalizableAt(job_id)
    with reverts("EscrowNotFinalizable", job_id, ready_at):
        escrow.finalize(job_id, {"from": renter})


def test_finalize_of_committed_single_replica_pays_it_without_a_reveal(
    escrow, registry, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    assert escrow.finalizableAt(job_id) < jobs.job(job_id)["deadline"] + PARAMS.reveal_window
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID]
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)


def test_finalize_of_accepted_but_uncommitted_single_replica_slashes_it(
    escrow, registry, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [SLASHED]
    assert escrow.creditOf(renter) == PRICE
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)


def test_finalize_unrevealed_job_waits_for_deadline_reveal_and_challenge(
    escrow, jobs, renter, providers
):
    job_id = jobs.fund(renter)
    job = jobs.job(job_id)
    expected = job["deadline"] + PARAMS.reveal_window + PARAMS.challenge_window
    assert escrow.finalizableAt(job_id) == expected


def test_finalize_of_never_accepted_job_refunds_renter(escrow, jobs, renter, providers, outsider):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.sleep_past_challenge(job_id)
    tx = escrow.finalize(job_id, {"from": outsider})
    assert escrow.creditOf(renter) == 2 * PRICE
    assert tx.events["JobSettled"]["refund"] == 2 * PRICE
    assert "ReplicaSlashed" not in tx.events


def test_confirmed_job_cannot_be_settled_again(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    escrow.confirm(job_id, {"from": renter})
    with reverts("EscrowJobNotLive", job_id, SETTLED):
        escrow.confirm(job_id, {"from": renter})
    jobs.sleep_past_challenge(job_id)
    with reverts("EscrowJobNotLive", job_id, SETTLED):
        escrow.finalize(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - FEE


def test_finalize_many_settles_ready_jobs_and_skips_others(
    escrow, jobs, renter, renter2, providers, treasury, outsider
):
    ready = jobs.fund(renter)
    jobs.run(ready, [(providers[0], "a")])
    confirmed = jobs.fund(renter2)
    jobs.run(confirmed, [(providers[1], "b")])
    escrow.confirm(confirmed, {"from": renter2})
    jobs.sleep_past_challenge(ready)
    late = jobs.fund(renter)  # funded after the sleep: not ready
    jobs.run(late, [(providers[2], "c")])
    ids = [ready, confirmed, late, 99]
    assert escrow.finalizeMany.call(ids, {"from": outsider}) == 1
    tx = escrow.finalizeMany(ids, {"from": outsider})
    assert jobs.job(ready)["status"] == SETTLED
    assert jobs.job(late)["status"] == FUNDED
    assert len(tx.events["JobSettled"]) == 1
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(providers[2]) == 0
    assert escrow.creditOf(treasury) == 2 * FEE


def test_finalize_many_twice_settles_nothing_the_second_time(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    jobs.sleep_past_challenge(job_id)
    escrow.finalizeMany([job_id, job_id], {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.finalizeMany.call([job_id], {"from": renter}) == 0


def test_job_count_and_unknown_job_is_not_live(escrow, jobs, renter, reverts):
    assert escrow.jobCount() == 0
    jobs.fund(renter)
    jobs.fund(renter)
    assert escrow.jobCount() == 2
    assert jobs.job(3)["status"] == 0
    with reverts("EscrowJobNotLive", 3, 0):
        escrow.finalize(3, {"from": renter})


def test_parameters_match_deployment(escrow, token, registry, treasury):
    assert plain(escrow.parameters()) == (
        token,
        registry,
        treasury,
        PARAMS.fee_bps,
        PARAMS.accept_window,
        PARAMS.reveal_window,
        PARAMS.challenge_window,
        PARAMS.collateral_bps,
    )


def test_fee_is_fixed_at_funding(escrow, jobs, deployer, renter, providers, treasury):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    escrow.setFee(deployer, 1000, {"from": deployer})
    assert jobs.job(job_id)["feeBps"] == PARAMS.fee_bps
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(deployer) == FEE  # the fee goes to the treasury of settlement time
    assert escrow.creditOf(treasury) == 0


def test_fee_change_applies_to_jobs_funded_later(escrow, jobs, deployer, renter, providers):
    escrow.setFee(deployer, 1000, {"from": deployer})
    job_id = jobs.fund(renter)
    assert jobs.job(job_id)["feeBps"] == 1000
    jobs.run(job_id, [(providers[0], "a")])
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - PRICE // 10
    assert escrow.creditOf(deployer) == PRICE // 10


def test_fee_lowered_after_funding_does_not_lower_the_treasury_share(
    escrow, jobs, deployer, renter, providers, treasury
):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    escrow.setFee(treasury, 0, {"from": deployer})
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(treasury) == FEE


def test_cancelled_job_status_is_cancelled(escrow, jobs, renter):
    job_id = jobs.fund(renter)
    escrow.cancel(job_id, {"from": renter})
    assert jobs.job(job_id)["status"] == CANCELLED
