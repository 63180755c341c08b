"""The security review's attack recipes, tried as the attacker would on today's JobEscrow.

Deployment defaults (conftest): price 10 DCT, collateral 100% of price, fee 2%, 20% of
a slash to the treasury. P is an honest provider, S / S1 / S2 stakes the renter
controls (sybils), X a provider that never shows up.

1. Sybil verifiers. The renter disputes P's result naming its own sybils S1, S2 as
   verifiers; they would reveal junk and outvote P (P slashed to the renter, the
   renter refunded). Now a dispute's verifiers need the matcher's `Verifiers`
   signature for this job: unsigned or self-signed verifiers revert
   EscrowNotMatcherSigned, and the renter naming itself reverts EscrowBadProvider even
   with a matcher signature. P is paid when the challenge window ends.
2. Free work by a forced tie. The renter disputes with [S, X]; X never accepts, S
   reveals junk after the deadline; with no majority the old rule refunded the renter
   everything and left P unpaid. Now the verifiers must be matcher-drawn, and even if
   the matcher drew S and X, a dispute without a majority keeps the original's result:
   P is paid, S is Released (unpaid, its price refunded), X's slot is refunded. The
   renter paid exactly P's price.
3. Renter-chosen co-replicas. The renter funds a replicated job naming [S1, S2, P];
   the sybils outvote P. Now a replicated job needs the matcher's `Assignment`
   signature (self-signed or unsigned reverts EscrowNotMatcherSigned). And with a
   matcher-drawn pair [P, S], S cannot void P's pay: a silent S is slashed and P paid;
   a junk S makes a tie, and a tie pays every revealer.
4. Collateral locked for decades. The old `dispute` took the renter's deadline
   (2**32 - 1), locking P's collateral until 2106. Now the contract sets the dispute
   deadline (now + acceptWindow + the original's run time), `fund` refuses a run time
   beyond MAX_RUN_TIME (EscrowDeadlineTooLate), and P is paid and its collateral
   released within that bound.
5. Copying into an open dispute. A cheater read P's revealed hash on chain, took an
   open verifier slot, committed the same hash and was paid for no work. Now open
   disputes are gone (EscrowBadProviders), a single replica's result is never on chain
   before a dispute (getReplica shows only the commitment, reveal reverts
   EscrowResultHidden), and in a dispute the original cannot reveal before the
   verifiers commit (EscrowRevealTooEarly); a copied commitment cannot be revealed
   (EscrowCommitmentMismatch) and a verifier that commits something else is outvoted.
6. Owner and role holders. The owner raised the fee on a live job and took more of
   P's pay; now the fee is fixed at funding. An outsider granted SLASHER_ROLE unlocked
   collateral another escrow had locked, so that escrow's settlement reverted (and a
   finalizeMany batch holding that job with it); now a slasher may release only its own
   locks (RegistryInsufficientLocked) and the job, alone or in a batch, settles.
"""

import pytest
from brownie import chain, web3
from conftest import (
    COLLATERAL,
    FEE,
    MATCHER,
    PAID,
    PARAMS,
    PRICE,
    RELEASED,
    SLASH_TO_TREASURY,
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
    sleep_past,
    verifiers_for,
)
from eth_account import Account

# The key a renter would sign its own choice of voters with.
RENTER_KEY = web3.keccak(text="the renter's own key").hex().removeprefix("0x")
RENTER_SIGNER = Account.from_key(RENTER_KEY).address


@pytest.fixture(scope="module")
def cast(renter, providers):
    """P honest; S1, S2 the renter's sybils; X never shows up."""
    p, s1, s2, x = providers[:4]
    return {"renter": renter, "P": p, "S1": s1, "S2": s2, "S": s1, "X": x}


@pytest.fixture
def delivered(jobs, cast):
    """A single-replica job P accepted and committed its honest result "a" to."""
    job_id = jobs.fund(cast["renter"], providers=[cast["P"]])
    jobs.run(job_id, [(cast["P"], "a")])
    return job_id


def unsigned(named):
    return ([str(p) for p in named], chain.time() + 600, b"")


def spent(token, account, before):
    """Tokens `account`'s wallet is down since `before` (withdraw its credit first)."""
    return before - token.balanceOf(account)


# ------------------------------------------------------- 1. sybil verifiers


def test_1_renter_cannot_name_its_sybils_as_verifiers(
    escrow, jobs, registry, cast, delivered, outsider, reverts
):
    renter, p = cast["renter"], cast["P"]
    sybils = [cast["S1"], cast["S2"]]
    with reverts("EscrowNotMatcherSigned", ZERO_ADDRESS, MATCHER):
        escrow.dispute(delivered, unsigned(sybils), {"from": renter})
    self_signed = verifiers_for(escrow, delivered, sybils, key=RENTER_KEY)
    with reverts("EscrowNotMatcherSigned", RENTER_SIGNER, MATCHER):
        escrow.dispute(delivered, self_signed, {"from": renter})
    # the attack failed; the challenge window ends and P is paid for its work
    jobs.sleep_past_challenge(delivered)
    escrow.finalize(delivered, {"from": outsider})
    assert escrow.creditOf(p) == PRICE - FEE
    assert escrow.creditOf(renter) == 0
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)


def test_1_renter_cannot_name_itself_as_verifier_even_with_a_matcher_signature(
    escrow, cast, delivered, reverts
):
    renter = cast["renter"]
    for named in ([renter, cast["S1"]], [cast["S1"], renter]):
        signed = verifiers_for(escrow, delivered, named)
        with reverts("EscrowBadProvider", renter.address):
            escrow.dispute(delivered, signed, {"from": renter})


# ------------------------------------------------- 2. free work by a forced tie


def test_2_forced_tie_needs_matcher_drawn_verifiers(escrow, cast, delivered, reverts):
    self_signed = verifiers_for(escrow, delivered, [cast["S"], cast["X"]], key=RENTER_KEY)
    with reverts("EscrowNotMatcherSigned", RENTER_SIGNER, MATCHER):
        escrow.dispute(delivered, self_signed, {"from": cast["renter"]})


def test_2_forced_tie_keeps_the_originals_result_and_the_renter_gains_nothing(
    escrow, jobs, token, registry, cast, providers, outsider
):
    renter, p, s, x = cast["renter"], cast["P"], cast["S"], cast["X"]
    before = token.balanceOf(renter)
    job_id = jobs.fund(renter, providers=[p])
    jobs.run(job_id, [(p, "a")])
    # even if the matcher happened to draw S and X
    jobs.dispute(job_id, renter, [s, x])
    jobs.accept(job_id, s)  # X never accepts
    jobs.commit(job_id, s, "junk")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, s, "junk")
    jobs.reveal(job_id, p, "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID, RELEASED, 0]
    assert escrow.creditOf(p) == PRICE - FEE
    assert escrow.creditOf(s) == 0
    assert escrow.creditOf(renter) == 2 * PRICE  # the bond, and nothing of P's price
    escrow.withdraw({"from": renter})
    assert spent(token, renter, before) == PRICE  # the renter paid for P's work
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)
    assert plain(registry.stakeOf(s))[:2] == (STAKE, 0)  # Released: unpaid, not slashed
    assert escrow.getReplica(job_id, 2)[0] == x  # X's slot stayed empty and was refunded


# ------------------------------------------------- 3. renter-chosen co-replicas


def fund_replicated(escrow, renter, named, assignment):
    deadline = chain.time() + PARAMS.accept_window + 200
    return escrow.fund(SPEC, 0, PRICE, deadline, len(named), assignment, {"from": renter})


def test_3_renter_cannot_choose_its_sybils_as_co_replicas(escrow, cast, reverts):
    renter = cast["renter"]
    named = [cast["S1"], cast["S2"], cast["P"]]
    with reverts("EscrowNotMatcherSigned", ZERO_ADDRESS, MATCHER):
        fund_replicated(escrow, renter, named, unsigned(named))
    self_signed = assign(escrow, renter, named, key=RENTER_KEY)
    with reverts("EscrowNotMatcherSigned", RENTER_SIGNER, MATCHER):
        fund_replicated(escrow, renter, named, self_signed)
    assert escrow.jobCount() == 0


def test_3_silent_co_replica_is_slashed_and_the_honest_one_paid(
    escrow, jobs, token, registry, cast, outsider
):
    renter, p, s = cast["renter"], cast["P"], cast["S"]
    before = token.balanceOf(renter)
    job_id = jobs.fund(renter, replicas=2, providers=[p, s])
    jobs.accept(job_id, p, s)
    jobs.commit(job_id, p, "a")
    sleep_past(jobs.job(job_id)["deadline"])
    jobs.reveal(job_id, p, "a")
    jobs.sleep_past_challenge(job_id)
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID, SLASHED]
    assert escrow.creditOf(p) == PRICE - FEE
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)
    assert plain(registry.stakeOf(s))[:2] == (STAKE - COLLATERAL, 0)
    escrow.withdraw({"from": renter})
    # the renter paid P's price and received the silent S's collateral less the treasury's
    assert spent(token, renter, before) == PRICE - (COLLATERAL - SLASH_TO_TREASURY)


def test_3_junk_co_replica_makes_a_tie_that_pays_the_honest_one(escrow, jobs, registry, cast):
    renter, p, s = cast["renter"], cast["P"], cast["S"]
    job_id = jobs.fund(renter, replicas=2, providers=[p, s])
    jobs.run(job_id, [(p, "a"), (s, "junk")])
    escrow.confirm(job_id, {"from": renter})
    assert jobs.states(job_id) == [PAID, PAID]
    assert escrow.creditOf(p) == PRICE - FEE
    assert escrow.creditOf(renter) == 0
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)


# ------------------------------------------- 4. collateral locked for decades


def test_4_fund_refuses_a_deadline_beyond_max_run_time(escrow, cast, reverts):
    renter, p = cast["renter"], cast["P"]
    accept_by = chain.time() + PARAMS.accept_window
    for deadline in (2**32 - 1, accept_by + escrow.MAX_RUN_TIME() + 60):
        with reverts("EscrowDeadlineTooLate"):
            escrow.fund(SPEC, 0, PRICE, deadline, 1, assign(escrow, renter, [p]), {"from": renter})


def test_4_dispute_deadline_is_bounded_and_the_original_is_paid_in_time(
    escrow, jobs, registry, cast, delivered, outsider
):
    renter, p = cast["renter"], cast["P"]
    original = jobs.job(delivered)
    run_time = original["deadline"] - original["acceptBy"]
    tx = jobs.dispute(delivered, renter, [cast["S"], cast["X"]])  # nobody ever verifies
    disputed_at = tx.timestamp
    job = jobs.job(delivered)
    assert job["deadline"] == disputed_at + PARAMS.accept_window + run_time
    bound = disputed_at + PARAMS.accept_window + escrow.MAX_RUN_TIME()
    bound += PARAMS.reveal_window + PARAMS.challenge_window
    assert escrow.finalizableAt(delivered) <= bound
    assert plain(registry.stakeOf(p))[1] == COLLATERAL
    sleep_past(job["acceptBy"])
    jobs.reveal(delivered, p, "a")  # no verifier accepted: P may reveal at once
    jobs.sleep_past_challenge(delivered)
    escrow.finalize(delivered, {"from": outsider})
    assert chain[-1].timestamp <= bound
    assert escrow.creditOf(p) == PRICE - FEE
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)  # collateral released


def test_4_silent_verifiers_cannot_hold_the_collateral_past_the_bound(
    escrow, jobs, registry, cast, delivered, outsider
):
    renter, p, s1, s2 = cast["renter"], cast["P"], cast["S1"], cast["S2"]
    tx = jobs.dispute(delivered, renter, [s1, s2])
    jobs.accept(delivered, s1, s2)  # they accept and stall
    job = jobs.job(delivered)
    sleep_past(job["deadline"])
    jobs.reveal(delivered, p, "a")
    bound = tx.timestamp + PARAMS.accept_window + escrow.MAX_RUN_TIME()
    bound += PARAMS.reveal_window + PARAMS.challenge_window
    jobs.sleep_past_challenge(delivered)
    escrow.finalize(delivered, {"from": outsider})
    assert chain[-1].timestamp <= bound
    assert jobs.states(delivered) == [PAID, SLASHED, SLASHED]
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)


# --------------------------------------------- 5. copying into an open dispute


def test_5_open_dispute_is_gone(escrow, cast, delivered, reverts):
    with reverts("EscrowBadProviders", 0, 2):
        escrow.dispute(delivered, verifiers_for(escrow, delivered, []), {"from": cast["renter"]})


def test_5_the_originals_result_is_not_on_chain_before_the_verifiers_commit(
    escrow, jobs, cast, delivered, reverts
):
    p, s1, s2 = cast["P"], cast["S1"], cast["S2"]
    digest = commitment(result_hash("a"), salt_for(p), p)
    assert bytes(escrow.getReplica(delivered, 0)[2]) == bytes(digest) != result_hash("a")
    with reverts("EscrowResultHidden", delivered):
        jobs.reveal(delivered, p, "a")
    jobs.dispute(delivered, cast["renter"], [s1, s2])
    jobs.accept(delivered, s1, s2)
    with reverts("EscrowRevealTooEarly", delivered, 1, 3):
        jobs.reveal(delivered, p, "a")
    jobs.commit(delivered, s1, "a")
    with reverts("EscrowRevealTooEarly", delivered, 2, 3):
        jobs.reveal(delivered, p, "a")
    assert bytes(escrow.getReplica(delivered, 0)[2]) == bytes(digest)


def test_5_copier_gains_nothing_from_the_commitment(
    escrow, jobs, registry, cast, delivered, reverts
):
    """A drawn verifier that copies P's commitment cannot reveal it; committing the
    commitment itself as its "result" is outvoted and slashed."""
    renter, p, copier, honest = cast["renter"], cast["P"], cast["S1"], cast["S2"]
    jobs.dispute(delivered, renter, [copier, honest])
    jobs.accept(delivered, copier, honest)
    copied = escrow.getReplica(delivered, 0)[2]
    escrow.commit(delivered, copied, {"from": copier})
    jobs.commit(delivered, honest, "a")
    jobs.reveal(delivered, p, "a")
    jobs.reveal(delivered, honest, "a")
    with reverts("EscrowCommitmentMismatch", delivered, copier.address):
        jobs.reveal(delivered, copier, "a")
    jobs.sleep_past_challenge(delivered)
    escrow.finalize(delivered, {"from": renter})
    assert jobs.states(delivered) == [PAID, SLASHED, PAID]
    assert escrow.creditOf(copier) == 0
    assert plain(registry.stakeOf(copier))[:2] == (STAKE - COLLATERAL, 0)


# ----------------------------------------------------- 6. owner and role holders


def test_6_fee_raised_on_a_live_job_does_not_apply_to_it(escrow, jobs, deployer, treasury, cast):
    renter, p = cast["renter"], cast["P"]
    job_id = jobs.fund(renter, providers=[p])
    jobs.run(job_id, [(p, "a")])
    escrow.setFee(treasury, escrow.MAX_FEE_BPS(), {"from": deployer})
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(p) == PRICE - FEE
    assert escrow.creditOf(treasury) == FEE


def test_6_slasher_role_holder_cannot_unlock_the_escrows_lock(
    escrow, jobs, registry, deployer, outsider, cast, reverts
):
    renter, p = cast["renter"], cast["P"]
    registry.grantRole(registry.SLASHER_ROLE(), outsider, {"from": deployer})
    job_id = jobs.fund(renter, providers=[p])
    jobs.run(job_id, [(p, "a")])
    with reverts("RegistryInsufficientLocked", p.address, COLLATERAL, 0):
        registry.unlock(p, COLLATERAL, {"from": outsider})
    with reverts("RegistryInsufficientLocked", p.address, COLLATERAL, 0):
        registry.slash(p, COLLATERAL, outsider, {"from": outsider})
    assert registry.lockedBy(escrow, p) == COLLATERAL
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(p) == PRICE - FEE
    assert plain(registry.stakeOf(p))[:2] == (STAKE, 0)


def test_6_finalize_many_settles_a_batch_after_the_unlock_attempt(
    escrow, jobs, registry, deployer, outsider, cast, providers, reverts
):
    renter = cast["renter"]
    registry.grantRole(registry.SLASHER_ROLE(), outsider, {"from": deployer})
    batch = []
    for provider in providers[:3]:
        job_id = jobs.fund(renter, providers=[provider])
        jobs.run(job_id, [(provider, "a")])
        batch.append(job_id)
    target = providers[1]
    with reverts("RegistryInsufficientLocked", target.address, TOKEN, 0):
        registry.unlock(target, TOKEN, {"from": outsider})
    jobs.sleep_past_challenge(batch[-1])
    tx = escrow.finalizeMany(batch, {"from": outsider})
    assert tx.return_value == 3
    assert [jobs.states(j) for j in batch] == [[PAID]] * 3
    assert [escrow.creditOf(p) for p in providers[:3]] == [PRICE - FEE] * 3
