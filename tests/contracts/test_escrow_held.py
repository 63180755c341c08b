"""Held starts: `fundAt` funds a job now that providers may accept only from a planned hour.

The acceptance window opens at `startAt` (at most MAX_HOLD ahead); the deadline counts
from its end, so the deposit is never locked longer than a `fund` at that hour would
lock it. Until someone accepts, the renter alone may cancel for a full refund.
"""

from __future__ import annotations

from typing import Any

from brownie import chain
from conftest import (
    COLLATERAL,
    FEE,
    PARAMS,
    PERMIT_KEY,
    PRICE,
    SPEC,
    assign,
    commitment,
    land_at,
    result_hash,
    salt_for,
    sign_permit,
    sleep_past,
)

HOLD = 3_600  # an hour ahead
MAX_HOLD = 2 * 24 * 3600


def held_args(
    escrow: Any,
    renter: Any,
    *,
    start_at: int,
    providers: tuple[Any, ...] = (),
    run: int = 200,
    replicas: int = 1,
) -> list[Any]:
    """`fundAt` arguments for a job starting at `start_at` with `run` s after its window."""
    deadline = start_at + PARAMS.accept_window + run
    return [SPEC, 0, PRICE, start_at, deadline, replicas, assign(escrow, renter, providers)]


def fund_held(escrow: Any, renter: Any, start_at: int, **kw: Any) -> Any:
    return escrow.fundAt(*held_args(escrow, renter, start_at=start_at, **kw), {"from": renter})


def test_held_job_opens_its_window_at_the_start(escrow, token, renter, providers):
    start = chain.time() + HOLD
    before = token.balanceOf(renter)
    tx = fund_held(escrow, renter, start, providers=(providers[0],))
    job_id = tx.return_value
    names = list(tx.events.keys())
    assert names.index("JobHeld") == names.index("JobFunded") + 1
    assert tx.events["JobHeld"]["jobId"] == job_id
    assert tx.events["JobHeld"]["startAt"] == start
    assert escrow.startsAt(job_id) == start
    assert escrow.getJob(job_id).dict()["acceptBy"] == start + PARAMS.accept_window
    assert before - token.balanceOf(renter) == PRICE


def test_start_in_the_past_means_now(escrow, renter):
    tx = fund_held(escrow, renter, chain.time() - 50)
    now = chain[tx.block_number].timestamp
    assert "JobHeld" not in tx.events
    assert escrow.startsAt(tx.return_value) == now
    assert escrow.getJob(tx.return_value).dict()["acceptBy"] == now + PARAMS.accept_window


def test_start_zero_is_fund(escrow, renter):
    deadline = chain.time() + PARAMS.accept_window + 200
    tx = escrow.fundAt(SPEC, 0, PRICE, 0, deadline, 1, assign(escrow, renter, ()), {"from": renter})
    assert "JobHeld" not in tx.events
    assert escrow.startsAt(tx.return_value) == chain[tx.block_number].timestamp


def test_fund_starts_now(escrow, jobs, renter):
    job_id = jobs.fund(renter)
    assert escrow.startsAt(job_id) == chain[-1].timestamp


def test_start_at_most_max_hold_ahead(escrow, renter, reverts):
    assert escrow.MAX_HOLD() == MAX_HOLD
    now = chain.time() + 5
    land_at(now)
    fund_held(escrow, renter, now + MAX_HOLD)  # the latest start is allowed
    land_at(now + 10)
    with reverts("EscrowStartTooLate", now + 10 + MAX_HOLD + 1, now + 10 + MAX_HOLD):
        fund_held(escrow, renter, now + 10 + MAX_HOLD + 1)


def test_deadline_counts_from_the_held_window(escrow, renter, reverts):
    start = chain.time() + HOLD
    accept_by = start + PARAMS.accept_window
    args = held_args(escrow, renter, start_at=start)
    args[4] = accept_by  # no run time after the window
    with reverts("EscrowDeadlineTooSoon", accept_by, accept_by):
        escrow.fundAt(*args, {"from": renter})
    max_run = escrow.MAX_RUN_TIME()
    args[4] = accept_by + max_run + 1
    with reverts("EscrowDeadlineTooLate", accept_by + max_run + 1, accept_by + max_run):
        escrow.fundAt(*args, {"from": renter})
    args[4] = accept_by + max_run  # the longest run is allowed
    escrow.fundAt(*args, {"from": renter})


def test_accept_before_the_start_reverts(escrow, renter, providers, reverts):
    start = chain.time() + HOLD
    job_id = fund_held(escrow, renter, start, providers=(providers[0],)).return_value
    land_at(start - 1)
    with reverts("EscrowNotStarted", job_id, start):
        escrow.accept(job_id, {"from": providers[0]})


def test_accept_from_the_start_until_accept_by(escrow, registry, renter, providers, reverts):
    start = chain.time() + HOLD
    first = fund_held(escrow, renter, start).return_value
    second = fund_held(escrow, renter, start).return_value
    land_at(start)
    escrow.accept(first, {"from": providers[0]})
    assert registry.lockedBy(escrow, providers[0]) == COLLATERAL
    sleep_past(start + PARAMS.accept_window)
    with reverts("EscrowWindowClosed", second, start + PARAMS.accept_window):
        escrow.accept(second, {"from": providers[1]})


def test_held_job_runs_and_pays(escrow, renter, providers):
    provider = providers[0]
    start = chain.time() + HOLD
    job_id = fund_held(escrow, renter, start, providers=(provider,)).return_value
    land_at(start)
    escrow.accept(job_id, {"from": provider})
    digest = commitment(result_hash("held"), salt_for(provider), provider)
    escrow.commit(job_id, digest, {"from": provider})
    sleep_past(escrow.finalizableAt(job_id))
    escrow.finalize(job_id, {"from": renter})
    assert escrow.creditOf(provider) == PRICE - FEE


def test_renter_cancels_held_job_for_full_refund(escrow, token, renter, providers):
    before = token.balanceOf(renter)
    job_id = fund_held(escrow, renter, chain.time() + HOLD, providers=(providers[0],)).return_value
    tx = escrow.cancel(job_id, {"from": renter})
    assert tx.events["JobCancelled"]["refund"] == PRICE
    escrow.withdraw({"from": renter})
    assert token.balanceOf(renter) == before


def test_renter_cancels_held_job_after_its_start_while_nobody_accepted(escrow, renter):
    start = chain.time() + HOLD
    job_id = fund_held(escrow, renter, start).return_value
    sleep_past(start)
    escrow.cancel(job_id, {"from": renter})
    assert escrow.creditOf(renter) == PRICE


def test_nobody_else_cancels_held_job_before_accept_by(
    escrow, renter, outsider, providers, reverts
):
    start = chain.time() + HOLD
    job_id = fund_held(escrow, renter, start).return_value
    for who in (outsider, providers[0]):
        with reverts("EscrowNotCancellable", job_id):
            escrow.cancel(job_id, {"from": who})
    land_at(start + PARAMS.accept_window)  # the window's last second: still open
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": outsider})
    sleep_past(start + PARAMS.accept_window, margin=1)
    escrow.cancel(job_id, {"from": outsider})  # once the window closed, it lapsed
    assert escrow.creditOf(renter) == PRICE


def test_renter_cannot_cancel_once_accepted(escrow, renter, providers, reverts):
    start = chain.time() + HOLD
    job_id = fund_held(escrow, renter, start).return_value
    land_at(start)
    escrow.accept(job_id, {"from": providers[0]})
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": renter})


def test_dispute_restarts_the_window(escrow, jobs, renter, providers):
    provider = providers[0]
    start = chain.time() + HOLD
    job_id = fund_held(escrow, renter, start, providers=(provider,)).return_value
    land_at(start)
    jobs.accept(job_id, provider)
    jobs.commit(job_id, provider, "x")
    tx = jobs.dispute(job_id, renter, providers[1:3])
    assert escrow.startsAt(job_id) == chain[tx.block_number].timestamp
    jobs.accept(job_id, providers[1], providers[2])  # verifiers accept right away


def test_held_replicated_job_checks_the_matcher(escrow, renter, providers):
    start = chain.time() + HOLD
    tx = fund_held(escrow, renter, start, providers=tuple(providers[:3]), replicas=3)
    assert tx.events["JobFunded"]["deposit"] == 3 * PRICE
    assert escrow.startsAt(tx.return_value) == start


def test_fund_at_with_permit(escrow, token, permit_signer):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, PRICE, permit_deadline)
    start = chain.time() + HOLD
    args = held_args(escrow, permit_signer, start_at=start)
    tx = escrow.fundAtWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})
    assert tx.events["JobHeld"]["startAt"] == start
    assert token.balanceOf(escrow) == PRICE
    assert token.allowance(permit_signer, escrow) == 0


def test_fund_at_with_front_run_permit_still_funds(escrow, token, permit_signer, outsider):
    permit_deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, PRICE, permit_deadline)
    token.permit(permit_signer, escrow, PRICE, permit_deadline, v, r, s, {"from": outsider})
    args = held_args(escrow, permit_signer, start_at=chain.time() + HOLD)
    escrow.fundAtWithPermit(*args, permit_deadline, v, r, s, {"from": permit_signer})
    assert token.balanceOf(escrow) == PRICE
