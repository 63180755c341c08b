"""JobEscrow exits other than settlement by result: cancel and claimNoShow.

Once a provider committed, a job is settled by its accepted replicas (no cancel), and a
committed single replica is a delivered result, never a no-show.
"""

from conftest import (
    CANCELLED,
    COLLATERAL,
    FEE,
    PAID,
    PARAMS,
    PRICE,
    RELEASED,
    SETTLED,
    SLASH_TO_TREASURY,
    SLASHED,
    STAKE,
    plain,
    sleep_past,
)


def test_cancel_before_acceptance_refunds_renter(escrow, jobs, renter, providers):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    tx = escrow.cancel(job_id, {"from": renter})
    assert escrow.creditOf(renter) == 2 * PRICE
    assert jobs.job(job_id)["status"] == CANCELLED
    assert tx.events["JobCancelled"]["refund"] == 2 * PRICE


def test_cancel_before_acceptance_by_other_than_renter_reverts(
    escrow, jobs, renter, outsider, reverts
):
    job_id = jobs.fund(renter)
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": outsider})


def test_renter_cannot_cancel_once_a_slot_is_accepted(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": renter})


def test_anyone_cancels_unaccepted_job_after_accept_window(escrow, jobs, renter, outsider):
    job_id = jobs.fund(renter)
    sleep_past(jobs.job(job_id)["acceptBy"])
    escrow.cancel(job_id, {"from": outsider})
    assert escrow.creditOf(renter) == PRICE
    assert escrow.creditOf(outsider) == 0


def test_cancel_after_accept_window_with_empty_slot_releases_collateral_without_slash(
    escrow, registry, token, jobs, renter, providers, outsider, treasury
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    sleep_past(jobs.job(job_id)["acceptBy"])
    treasury_before = token.balanceOf(treasury)
    tx = escrow.cancel(job_id, {"from": outsider})
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE, 0)
    assert escrow.creditOf(renter) == 2 * PRICE
    assert escrow.creditOf(providers[0]) == 0
    assert token.balanceOf(treasury) == treasury_before
    assert jobs.states(job_id) == [RELEASED, 0]
    assert "ReplicaSlashed" not in tx.events


def test_cancel_after_a_commit_reverts(escrow, jobs, renter, providers, outsider, reverts):
    """A committed provider delivered: the accepted replicas settle the job."""
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["acceptBy"])
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": outsider})
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": renter})


def test_committed_lone_replica_is_paid_when_its_co_replica_never_accepted(
    escrow, jobs, renter, providers, outsider
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    sleep_past(jobs.job(job_id)["acceptBy"])
    jobs.reveal(job_id, providers[0], "a")
    escrow.confirm(job_id, {"from": renter})
    assert escrow.creditOf(providers[0]) == PRICE - FEE
    assert escrow.creditOf(renter) == PRICE
    assert jobs.states(job_id) == [PAID, 0]


def test_no_show_in_a_partly_accepted_job_cannot_escape_by_cancel_after_deadline(
    escrow, registry, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    sleep_past(jobs.job(job_id)["deadline"])
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": providers[0]})
    tx = escrow.claimNoShow(job_id, {"from": renter})
    assert "ReplicaSlashed" in tx.events
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)


def test_cancel_of_fully_accepted_job_reverts_after_accept_window(
    escrow, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    sleep_past(jobs.job(job_id)["acceptBy"])
    with reverts("EscrowNotCancellable", job_id):
        escrow.cancel(job_id, {"from": renter})


def test_cancel_twice_reverts(escrow, jobs, renter, reverts):
    job_id = jobs.fund(renter)
    escrow.cancel(job_id, {"from": renter})
    with reverts("EscrowJobNotLive", job_id, CANCELLED):
        escrow.cancel(job_id, {"from": renter})


def test_cancelled_job_cannot_be_accepted(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    escrow.cancel(job_id, {"from": renter})
    with reverts("EscrowJobNotLive", job_id, CANCELLED):
        escrow.accept(job_id, {"from": providers[0]})


def test_no_show_slashes_collateral_to_renter(
    escrow, registry, token, jobs, renter, providers, treasury, outsider
):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    sleep_past(jobs.job(job_id)["deadline"])
    renter_before, treasury_before = token.balanceOf(renter), token.balanceOf(treasury)
    tx = escrow.claimNoShow(job_id, {"from": outsider})
    assert token.balanceOf(renter) - renter_before == COLLATERAL - SLASH_TO_TREASURY
    assert token.balanceOf(treasury) - treasury_before == SLASH_TO_TREASURY
    assert escrow.creditOf(renter) == PRICE  # the deposit is refunded
    assert escrow.creditOf(outsider) == 0
    assert plain(registry.stakeOf(providers[0]))[:2] == (STAKE - COLLATERAL, 0)
    assert jobs.states(job_id) == [SLASHED]
    assert jobs.job(job_id)["status"] == SETTLED
    assert tx.events["ReplicaSlashed"]["collateral"] == COLLATERAL


def test_no_show_before_deadline_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    sleep_past(jobs.job(job_id)["acceptBy"])
    with reverts("EscrowNotNoShow", job_id):
        escrow.claimNoShow(job_id, {"from": renter})


def test_no_show_without_acceptance_reverts(escrow, jobs, renter, reverts):
    job_id = jobs.fund(renter)
    sleep_past(jobs.job(job_id)["deadline"])
    with reverts("EscrowNotNoShow", job_id):
        escrow.claimNoShow(job_id, {"from": renter})


def test_committed_single_replica_is_never_a_no_show(
    escrow, jobs, renter, providers, outsider, reverts
):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    jobs.commit(job_id, providers[0], "a")
    deadline = jobs.job(job_id)["deadline"]
    sleep_past(deadline + PARAMS.reveal_window)
    with reverts("EscrowNotNoShow", job_id):
        escrow.claimNoShow(job_id, {"from": renter})
    escrow.finalize(job_id, {"from": outsider})
    assert jobs.states(job_id) == [PAID]
    assert escrow.creditOf(providers[0]) == PRICE - FEE


def test_committed_no_show_of_replicated_job_waits_for_reveal_window(
    escrow, jobs, renter, providers, reverts
):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    deadline = jobs.job(job_id)["deadline"]
    sleep_past(deadline)
    with reverts("EscrowNotNoShow", job_id):
        escrow.claimNoShow(job_id, {"from": renter})
    sleep_past(deadline + PARAMS.reveal_window)
    escrow.claimNoShow(job_id, {"from": renter})
    assert jobs.states(job_id) == [SLASHED, SLASHED]
    assert escrow.creditOf(renter) == 2 * PRICE


def test_no_show_after_a_reveal_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.run(job_id, [(providers[0], "a"), (providers[1], "a")])
    sleep_past(jobs.job(job_id)["deadline"] + PARAMS.reveal_window)
    with reverts("EscrowNotNoShow", job_id):
        escrow.claimNoShow(job_id, {"from": renter})


def test_no_show_of_replicated_job_slashes_every_accepted_replica(
    escrow, registry, jobs, renter, providers
):
    job_id = jobs.fund(renter, replicas=3, providers=providers[:3])
    jobs.accept(job_id, providers[0], providers[1])
    sleep_past(jobs.job(job_id)["deadline"])
    escrow.claimNoShow(job_id, {"from": renter})
    assert jobs.states(job_id) == [SLASHED, SLASHED, 0]
    assert escrow.creditOf(renter) == 3 * PRICE
    for p in providers[:2]:
        assert plain(registry.stakeOf(p))[:2] == (STAKE - COLLATERAL, 0)


def test_no_show_twice_reverts(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    sleep_past(jobs.job(job_id)["deadline"])
    escrow.claimNoShow(job_id, {"from": renter})
    with reverts("EscrowJobNotLive", job_id, SETTLED):
        escrow.claimNoShow(job_id, {"from": renter})
