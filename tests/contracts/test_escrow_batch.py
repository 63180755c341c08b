"""Batched forms of the job lifecycle: fundMany, acceptMany, commitMany, revealMany.

Each is all or nothing: one refused job reverts the whole batch with that job's
error. fundMany pulls the summed deposits in one transfer; acceptMany locks the summed
collateral in one registry call, and the registry's ledger stays exact (each job's
settlement releases its own share). finalizeMany (skipping jobs not ready) gathers the
releases of consecutive jobs of one provider into one unlock.
"""

from __future__ import annotations

from typing import Any

import pytest
from brownie import chain
from conftest import (
    COLLATERAL,
    FEE,
    PARAMS,
    PERMIT_KEY,
    PRICE,
    SPEC,
    STAKE,
    assign,
    commitment,
    land_at,
    plain,
    result_hash,
    salt_for,
    sign_permit,
    sleep_past,
)

MAX_BATCH = 100


def request(
    escrow: Any,
    renter: Any,
    *,
    providers: tuple[Any, ...] = (),
    price: int = PRICE,
    start_at: int = 0,
    replicas: int = 1,
) -> tuple[Any, ...]:
    """A `JobRequest` tuple; a held job (start_at later) runs 200 s after its window."""
    start = max(start_at, chain.time())
    deadline = start + PARAMS.accept_window + 200
    return (SPEC, 0, price, start_at, deadline, replicas, assign(escrow, renter, providers))


def fund_many(escrow: Any, renter: Any, n: int, provider: Any = None, **kw: Any) -> list[int]:
    named = (provider,) if provider is not None else ()
    tx = escrow.fundMany([request(escrow, renter, providers=named, **kw)] * n, {"from": renter})
    return list(range(tx.return_value, tx.return_value + n))


def digests(ids: list[int], provider: Any, label: str = "r") -> list[bytes]:
    return [commitment(result_hash(f"{label}{i}"), salt_for(provider), provider) for i in ids]


# --------------------------------------------------------------------- fundMany


def test_fund_many_funds_consecutive_jobs_with_one_transfer(escrow, token, renter, providers):
    before = token.balanceOf(renter)
    single = request(escrow, renter)
    escrow.fund(*single[:3], single[4], 1, single[6], {"from": renter})
    jobs = [
        request(escrow, renter),
        request(escrow, renter, providers=(providers[0],), price=2 * PRICE),
        request(escrow, renter, providers=tuple(providers[:3]), replicas=3),
        request(escrow, renter, start_at=chain.time() + 600),
    ]
    tx = escrow.fundMany(jobs, {"from": renter})
    assert tx.return_value == 2
    assert escrow.jobCount() == 5
    assert [e["jobId"] for e in tx.events["JobFunded"]] == [2, 3, 4, 5]
    assert [e["deposit"] for e in tx.events["JobFunded"]] == [PRICE, 2 * PRICE, 3 * PRICE, PRICE]
    assert len(tx.events["Transfer"]) == 1
    assert tx.events["Transfer"]["value"] == 7 * PRICE
    assert tx.events["JobHeld"]["jobId"] == 5
    assert before - token.balanceOf(renter) == 8 * PRICE
    assert escrow.getReplica(3, 0)[0] == providers[0]
    assert escrow.getJob(4).dict()["replicas"] == 3


def test_fund_many_is_all_or_nothing(escrow, token, renter, reverts):
    before = token.balanceOf(renter)
    jobs = [request(escrow, renter), request(escrow, renter, price=0)]
    with reverts("EscrowZeroPrice"):
        escrow.fundMany(jobs, {"from": renter})
    assert escrow.jobCount() == 0
    assert token.balanceOf(renter) == before


def test_fund_many_checks_each_job_like_fund_at(escrow, renter, providers, reverts):
    too_late = chain.time() + 3 * 24 * 3600
    with reverts("EscrowStartTooLate"):
        escrow.fundMany(
            [request(escrow, renter), request(escrow, renter, start_at=too_late)], {"from": renter}
        )
    pair = ([str(providers[0]), str(providers[1])], chain.time() + 600, b"")  # unsigned
    unsigned_pair = (*request(escrow, renter, replicas=2)[:6], pair)
    with reverts("EscrowNotMatcherSigned"):
        escrow.fundMany([unsigned_pair], {"from": renter})


def test_fund_many_empty_and_oversize_batches_revert(escrow, renter, reverts):
    assert escrow.MAX_BATCH() == MAX_BATCH
    with reverts("EscrowEmptyBatch"):
        escrow.fundMany([], {"from": renter})
    with reverts("EscrowBatchTooLarge", MAX_BATCH + 1, MAX_BATCH):
        escrow.fundMany([request(escrow, renter)] * (MAX_BATCH + 1), {"from": renter})


def test_fund_many_with_permit_for_the_sum(escrow, token, permit_signer):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 3 * PRICE, permit_deadline)
    jobs = [request(escrow, permit_signer)] * 3
    tx = escrow.fundManyWithPermit(jobs, permit_deadline, v, r, s, {"from": permit_signer})
    assert tx.return_value == 1
    assert token.balanceOf(escrow) == 3 * PRICE
    assert token.allowance(permit_signer, escrow) == 0


def test_fund_many_with_front_run_permit_still_funds(escrow, token, permit_signer, outsider):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 2 * PRICE, permit_deadline)
    token.permit(permit_signer, escrow, 2 * PRICE, permit_deadline, v, r, s, {"from": outsider})
    jobs = [request(escrow, permit_signer)] * 2
    escrow.fundManyWithPermit(jobs, permit_deadline, v, r, s, {"from": permit_signer})
    assert escrow.jobCount() == 2


def test_fund_many_with_a_short_permit_reverts(escrow, token, permit_signer, reverts):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, PRICE, permit_deadline)  # one job's worth
    jobs = [request(escrow, permit_signer)] * 2
    with reverts("ERC20InsufficientAllowance"):
        escrow.fundManyWithPermit(jobs, permit_deadline, v, r, s, {"from": permit_signer})


# ------------------------------------------------------------------- acceptMany


def test_accept_many_locks_the_summed_collateral_once(escrow, registry, renter, providers):
    provider = providers[0]
    ids = fund_many(escrow, renter, 3, provider) + fund_many(escrow, renter, 2)
    tx = escrow.acceptMany(ids, {"from": provider})
    assert [e["jobId"] for e in tx.events["JobAccepted"]] == ids
    assert len(tx.events["CollateralLocked"]) == 1
    assert tx.events["CollateralLocked"]["amount"] == 5 * COLLATERAL
    assert registry.lockedBy(escrow, provider) == 5 * COLLATERAL
    assert registry.stakeOf(provider)[1] == 5 * COLLATERAL
    for job_id in ids:
        assert plain(escrow.getReplica(job_id, 0)[:2]) == (provider, 1)


def test_accept_many_same_job_twice_reverts(escrow, registry, renter, providers, reverts):
    ids = fund_many(escrow, renter, 2)
    with reverts("EscrowAlreadyAccepted", ids[0], providers[0]):
        escrow.acceptMany([ids[0], ids[1], ids[0]], {"from": providers[0]})
    assert registry.lockedBy(escrow, providers[0]) == 0
    assert escrow.getJob(ids[0]).dict()["accepted"] == 0


def test_accept_many_after_single_accept_reverts(escrow, renter, providers, reverts):
    ids = fund_many(escrow, renter, 2, providers[0])
    escrow.accept(ids[1], {"from": providers[0]})
    with reverts("EscrowAlreadyAccepted", ids[1], providers[0]):
        escrow.acceptMany(ids, {"from": providers[0]})


def test_accept_many_only_named_or_open_jobs(escrow, registry, renter, providers, reverts):
    mine = fund_many(escrow, renter, 1, providers[0])
    theirs = fund_many(escrow, renter, 1, providers[1])
    with reverts("EscrowNoSlotFor", theirs[0], providers[0]):
        escrow.acceptMany(mine + theirs, {"from": providers[0]})
    assert registry.lockedBy(escrow, providers[0]) == 0


def test_accept_many_needs_an_active_provider_with_stake_for_the_sum(
    escrow, registry, renter, providers, outsider, reverts
):
    ids = fund_many(escrow, renter, 2)
    with reverts("RegistryProviderInactive"):
        escrow.acceptMany(ids, {"from": outsider})
    price = STAKE * 6 // 10  # two jobs' collateral is more than the stake
    collateral = price * PARAMS.collateral_bps // 10_000
    big = fund_many(escrow, renter, 2, price=price)
    with reverts("RegistryInsufficientFreeStake", providers[0], 2 * collateral, STAKE):
        escrow.acceptMany(big, {"from": providers[0]})
    escrow.acceptMany(big[:1], {"from": providers[0]})  # one fits


def test_accept_many_held_jobs_from_their_start(escrow, renter, providers, reverts):
    start = chain.time() + PARAMS.accept_window // 2  # the unheld job's window still open
    ids = fund_many(escrow, renter, 2, start_at=start)
    now = fund_many(escrow, renter, 1)
    land_at(start - 1)
    with reverts("EscrowNotStarted", ids[0], start):
        escrow.acceptMany(now + ids, {"from": providers[0]})
    land_at(start)
    escrow.acceptMany(now + ids, {"from": providers[0]})


def test_accept_many_after_accept_by_reverts(escrow, renter, providers, reverts):
    ids = fund_many(escrow, renter, 2)
    accept_by = escrow.getJob(ids[0]).dict()["acceptBy"]
    sleep_past(accept_by)
    with reverts("EscrowWindowClosed", ids[0], accept_by):
        escrow.acceptMany(ids, {"from": providers[0]})


def test_accept_many_empty_and_oversize_batches_revert(escrow, providers, reverts):
    with reverts("EscrowEmptyBatch"):
        escrow.acceptMany([], {"from": providers[0]})
    with reverts("EscrowBatchTooLarge", MAX_BATCH + 1, MAX_BATCH):
        escrow.acceptMany(list(range(1, MAX_BATCH + 2)), {"from": providers[0]})


# ------------------------------------------------------------------- commitMany


@pytest.fixture
def accepted(escrow, renter, providers) -> list[int]:
    """Three single-replica jobs providers[0] accepted."""
    ids = fund_many(escrow, renter, 3, providers[0])
    escrow.acceptMany(ids, {"from": providers[0]})
    return ids


def test_commit_many_commits_each_job(escrow, accepted, providers):
    provider = providers[0]
    tx = escrow.commitMany(accepted, digests(accepted, provider), {"from": provider})
    expected = [bytes(d) for d in digests(accepted, provider)]
    assert [bytes(e["commitment"]) for e in tx.events["ResultCommitted"]] == expected
    now = chain[tx.block_number].timestamp
    for job_id, digest in zip(accepted, expected, strict=True):
        assert plain(escrow.getReplica(job_id, 0)[1:]) == (2, digest)
        assert escrow.getJob(job_id).dict()["challengeEnds"] == now + PARAMS.challenge_window


def test_commit_many_length_mismatch_reverts(escrow, accepted, providers, reverts):
    with reverts("EscrowBatchLengthMismatch", 3, 2):
        escrow.commitMany(accepted, digests(accepted, providers[0])[:2], {"from": providers[0]})


def test_commit_many_twice_or_same_job_twice_reverts(escrow, accepted, providers, reverts):
    provider = providers[0]
    twice = [accepted[0], accepted[0]]
    with reverts("EscrowWrongReplicaState", accepted[0], provider, 2):
        escrow.commitMany(twice, digests(twice, provider), {"from": provider})
    assert escrow.getJob(accepted[0]).dict()["committed"] == 0
    escrow.commitMany(accepted, digests(accepted, provider), {"from": provider})
    with reverts("EscrowWrongReplicaState", accepted[0], provider, 2):
        escrow.commitMany(accepted, digests(accepted, provider), {"from": provider})


def test_commit_many_only_by_the_provider(escrow, accepted, providers, reverts):
    with reverts("EscrowNotProvider", accepted[0], providers[1]):
        escrow.commitMany(accepted, digests(accepted, providers[1]), {"from": providers[1]})


def test_commit_many_after_a_deadline_reverts(escrow, accepted, providers, reverts):
    deadline = escrow.getJob(accepted[0]).dict()["deadline"]
    sleep_past(deadline)
    with reverts("EscrowWindowClosed", accepted[0], deadline):
        escrow.commitMany(accepted, digests(accepted, providers[0]), {"from": providers[0]})


def test_commit_many_empty_and_oversize_batches_revert(escrow, providers, reverts):
    with reverts("EscrowEmptyBatch"):
        escrow.commitMany([], [], {"from": providers[0]})
    ids = list(range(1, MAX_BATCH + 2))
    with reverts("EscrowBatchTooLarge", MAX_BATCH + 1, MAX_BATCH):
        escrow.commitMany(ids, [b"\x01" * 32] * len(ids), {"from": providers[0]})


# ------------------------------------------------------------------- revealMany


@pytest.fixture
def replicated(escrow, renter, providers) -> list[int]:
    """Two 3-replica jobs on providers[0..2], every replica accepted and committed."""
    trio = tuple(providers[:3])
    tx = escrow.fundMany(
        [request(escrow, renter, providers=trio, replicas=3)] * 2, {"from": renter}
    )
    ids = [tx.return_value, tx.return_value + 1]
    for provider in trio:
        escrow.acceptMany(ids, {"from": provider})
        escrow.commitMany(ids, digests(ids, provider), {"from": provider})
    return ids


def reveal_args(ids: list[int], provider: Any) -> tuple[list[int], list[bytes], list[bytes]]:
    return ids, [result_hash(f"r{i}") for i in ids], [salt_for(provider)] * len(ids)


def test_reveal_many_then_finalize_many_pays_everyone(escrow, registry, replicated, providers):
    for provider in providers[:3]:
        tx = escrow.revealMany(*reveal_args(replicated, provider), {"from": provider})
        assert len(tx.events["ResultRevealed"]) == 2
    revealed = plain(escrow.getReplica(replicated[1], 2)[1:])
    assert revealed == (3, bytes(result_hash(f"r{replicated[1]}")))
    sleep_past(escrow.finalizableAt(replicated[1]))
    tx = escrow.finalizeMany(replicated, {"from": providers[4]})
    assert tx.return_value == 2
    for provider in providers[:3]:
        assert escrow.creditOf(provider) == 2 * (PRICE - FEE)
        assert registry.lockedBy(escrow, provider) == 0


def test_reveal_many_length_mismatch_reverts(escrow, replicated, providers, reverts):
    ids, hashes, salts = reveal_args(replicated, providers[0])
    with reverts("EscrowBatchLengthMismatch", 2, 1):
        escrow.revealMany(ids, hashes[:1], salts, {"from": providers[0]})
    with reverts("EscrowBatchLengthMismatch", 2, 3):
        escrow.revealMany(ids, hashes, salts + salts[:1], {"from": providers[0]})


def test_reveal_many_twice_or_same_job_twice_reverts(escrow, replicated, providers, reverts):
    provider = providers[0]
    ids, hashes, salts = reveal_args(replicated, provider)
    with reverts("EscrowWrongReplicaState", ids[0], provider, 3):
        escrow.revealMany([ids[0], ids[0]], [hashes[0]] * 2, salts, {"from": provider})
    escrow.revealMany(ids, hashes, salts, {"from": provider})
    with reverts("EscrowWrongReplicaState", ids[0], provider, 3):
        escrow.revealMany(ids, hashes, salts, {"from": provider})


def test_reveal_many_mismatched_commitment_reverts_the_batch(
    escrow, replicated, providers, reverts
):
    provider = providers[0]
    ids, hashes, salts = reveal_args(replicated, provider)
    with reverts("EscrowCommitmentMismatch", ids[1], provider):
        escrow.revealMany(ids, [hashes[0], hashes[0]], salts, {"from": provider})
    assert escrow.getJob(ids[0]).dict()["revealed"] == 0


def test_reveal_many_of_hidden_single_replica_jobs_reverts(escrow, accepted, providers, reverts):
    provider = providers[0]
    escrow.commitMany(accepted, digests(accepted, provider), {"from": provider})
    with reverts("EscrowResultHidden", accepted[0]):
        escrow.revealMany(*reveal_args(accepted, provider), {"from": provider})


def test_reveal_many_empty_batch_reverts(escrow, providers, reverts):
    with reverts("EscrowEmptyBatch"):
        escrow.revealMany([], [], [], {"from": providers[0]})


# ----------------------------------------------------------------- finalizeMany


def test_finalize_many_unlocks_each_providers_collateral_exactly(
    escrow, registry, renter, providers
):
    """Runs of one provider's jobs unlock together; another escrow-wide lock is untouched."""
    a, b = providers[0], providers[1]
    ids_a = fund_many(escrow, renter, 3, a)
    ids_b = fund_many(escrow, renter, 2, b)
    pending = fund_many(escrow, renter, 1, a)  # accepted, never finalized here
    escrow.acceptMany(ids_a + pending, {"from": a})
    escrow.acceptMany(ids_b, {"from": b})
    escrow.commitMany(ids_a, digests(ids_a, a), {"from": a})
    escrow.commitMany(ids_b, digests(ids_b, b), {"from": b})
    sleep_past(escrow.finalizableAt(ids_b[-1]))
    order = [ids_a[0], ids_a[1], ids_b[0], ids_b[1], ids_a[2], pending[0]]
    tx = escrow.finalizeMany(order, {"from": renter})
    assert tx.return_value == 5  # the pending job is not ready: skipped
    unlocked = [(e["provider"], e["amount"]) for e in tx.events["CollateralUnlocked"]]
    assert unlocked == [(a, 2 * COLLATERAL), (b, 2 * COLLATERAL), (a, COLLATERAL)]
    assert registry.lockedBy(escrow, a) == COLLATERAL
    assert registry.lockedBy(escrow, b) == 0
    assert registry.stakeOf(a)[1] == COLLATERAL
    assert escrow.creditOf(a) == 3 * (PRICE - FEE)


def test_finalize_many_with_a_slash_in_the_run(escrow, registry, renter, providers):
    """A provider slashed in one job and paid in the next: both land on its ledger."""
    a = providers[0]
    silent, paid = fund_many(escrow, renter, 2, a)
    escrow.acceptMany([silent, paid], {"from": a})
    escrow.commit(paid, digests([paid], a)[0], {"from": a})
    sleep_past(max(escrow.finalizableAt(silent), escrow.finalizableAt(paid)))
    tx = escrow.finalizeMany([silent, paid], {"from": renter})
    assert tx.events["ReplicaSlashed"]["jobId"] == silent
    assert tx.events["CollateralUnlocked"]["amount"] == COLLATERAL
    assert registry.lockedBy(escrow, a) == 0
    assert plain(registry.stakeOf(a)[:2]) == (STAKE - COLLATERAL, 0)
