"""LeaseEscrow: a service paid by the second, from opening to every way a lease ends.

Each lease ends exactly once, with its `EndReason` and `LeaseEnded`; pay, fee and
refund are checked to the wei against the seconds the chain stamped.
"""

import pytest
from brownie import chain
from conftest import (
    CANCELLED_BEFORE_ACCEPT,
    CLOSED_BY_PROVIDER,
    CLOSED_BY_RENTER,
    LEASE_COLLATERAL,
    LEASE_DEPOSIT,
    LEASE_ENDED,
    LEASE_OFFERED,
    LEASE_RUNNING,
    LEASE_SPEC,
    NEVER_SERVED,
    NOT_ACCEPTED,
    OUT_OF_FUNDS,
    PARAMS,
    PERMIT_KEY,
    RATE,
    plain,
    sign_permit,
)

FEE_BPS = PARAMS.fee_bps
SLASH_SHARE = PARAMS.slash_treasury_bps


def fee_of(amount, bps=FEE_BPS):
    return amount * bps // 10_000


def ended(tx):
    event = tx.events["LeaseEnded"]
    return int(event["reason"]), int(event["paidToProvider"]), int(event["refundedToRenter"])


# ---------------------------------------------------------------------- opening


def test_open_takes_the_deposit_and_records_the_terms(leases, token, renter, providers):
    before = token.balanceOf(renter)
    tx = leases.open(providers[0], RATE, LEASE_DEPOSIT, LEASE_SPEC, {"from": renter})
    lease_id = tx.return_value
    assert lease_id == 1 and leases.leaseCount() == 1
    assert token.balanceOf(renter) == before - LEASE_DEPOSIT
    assert token.balanceOf(leases) == LEASE_DEPOSIT
    lease = leases.getLease(lease_id).dict()
    assert lease["renter"] == renter and lease["provider"] == providers[0]
    assert (lease["deposit"], lease["ratePerSecond"], lease["paid"]) == (LEASE_DEPOSIT, RATE, 0)
    assert lease["collateral"] == LEASE_COLLATERAL
    assert lease["acceptBy"] == tx.timestamp + PARAMS.lease_accept_window
    assert (lease["status"], lease["reason"], lease["feeBps"]) == (LEASE_OFFERED, 0, FEE_BPS)
    event = tx.events["LeaseOpened"]
    assert bytes(event["specHash"]) == bytes(LEASE_SPEC) and event["deposit"] == LEASE_DEPOSIT
    assert leases.runsOutAt(lease_id) == 0 and leases.accruedOf(lease_id) == 0


def test_open_accepts_exactly_the_minimum_prepaid_seconds(leases, renter, providers):
    minimum = RATE * leases.MIN_PREPAID_SECONDS()
    assert leases.open(providers[0], RATE, minimum, LEASE_SPEC, {"from": renter}).return_value


def test_open_with_permit_needs_no_approval(leases, token, permit_signer, providers):
    deadline = chain.time() + 3_600
    v, r, s = sign_permit(token, PERMIT_KEY, leases, LEASE_DEPOSIT, deadline)
    tx = leases.openWithPermit(
        providers[0], RATE, LEASE_DEPOSIT, LEASE_SPEC, deadline, v, r, s, {"from": permit_signer}
    )
    assert leases.getLease(tx.return_value).dict()["renter"] == permit_signer
    assert token.balanceOf(leases) == LEASE_DEPOSIT


def test_top_up_with_permit_needs_no_approval(leases, token, permit_signer, providers):
    deadline = chain.time() + 3_600
    v, r, s = sign_permit(token, PERMIT_KEY, leases, LEASE_DEPOSIT, deadline)
    lease_id = leases.openWithPermit(
        providers[0], RATE, LEASE_DEPOSIT, LEASE_SPEC, deadline, v, r, s, {"from": permit_signer}
    ).return_value
    v, r, s = sign_permit(token, PERMIT_KEY, leases, RATE * 100, deadline)
    leases.topUpWithPermit(lease_id, RATE * 100, deadline, v, r, s, {"from": permit_signer})
    assert leases.getLease(lease_id).dict()["deposit"] == LEASE_DEPOSIT + RATE * 100


# ------------------------------------------------------------------ accept, serve


def test_accept_locks_collateral_and_starts_accrual(
    leases, lease_driver, registry, renter, providers
):
    lease_id = lease_driver.open(renter, providers[0])
    tx = leases.accept(lease_id, {"from": providers[0]})
    lease = lease_driver.lease(lease_id)
    assert (lease["status"], lease["acceptedAt"]) == (LEASE_RUNNING, tx.timestamp)
    assert registry.lockedBy(leases, providers[0]) == LEASE_COLLATERAL
    assert registry.stakeOf(providers[0])[1] == LEASE_COLLATERAL
    assert leases.runsOutAt(lease_id) == tx.timestamp + LEASE_DEPOSIT // RATE
    lease_driver.sleep_to(tx.timestamp + 7)
    chain.mine()
    assert leases.accruedOf(lease_id) == 7 * RATE


def test_accept_at_the_last_second_of_the_window(leases, lease_driver, renter, providers):
    lease_id = lease_driver.open(renter, providers[0])
    accept_by = lease_driver.lease(lease_id)["acceptBy"]
    lease_driver.sleep_to(accept_by)
    assert leases.accept(lease_id, {"from": providers[0]}).timestamp == accept_by


def test_prober_and_renter_may_report_serving(leases, lease_driver, deployer, renter, providers):
    by_prober = lease_driver.open_running(renter, providers[0])
    by_renter = lease_driver.open_running(renter, providers[1])
    tx = leases.reportServing(by_prober, {"from": deployer})
    assert tx.events["LeaseServing"]["by"] == deployer
    assert lease_driver.lease(by_prober)["servingAt"] == tx.timestamp
    leases.reportServing(by_renter, {"from": renter})
    assert lease_driver.lease(by_renter)["servingAt"] != 0


def test_serving_report_at_the_last_second_of_the_serve_window(
    leases, lease_driver, deployer, renter, providers
):
    lease_id = lease_driver.open_running(renter, providers[0])
    serve_by = lease_driver.lease(lease_id)["acceptedAt"] + PARAMS.lease_serve_window
    lease_driver.sleep_to(serve_by)
    assert leases.reportServing(lease_id, {"from": deployer}).timestamp == serve_by


# ----------------------------------------------------------------------- accrual


def test_settle_credits_exactly_the_seconds_since_the_last_settle(
    leases, lease_driver, renter, providers, treasury
):
    lease_id = lease_driver.open_serving(renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    lease_driver.sleep_to(accepted_at + 100)
    first = leases.settle(lease_id, {"from": providers[0]})
    gross = 100 * RATE
    assert first.events["LeaseSettled"]["amount"] == gross - fee_of(gross)
    assert first.events["LeaseSettled"]["fee"] == fee_of(gross)
    lease_driver.sleep_to(accepted_at + 130)
    leases.settle(lease_id, {"from": renter})  # anyone may settle
    second = 30 * RATE
    assert leases.creditOf(providers[0]) == gross - fee_of(gross) + second - fee_of(second)
    assert leases.creditOf(treasury) == fee_of(gross) + fee_of(second)
    assert lease_driver.lease(lease_id)["paid"] == 130 * RATE


def test_a_second_settle_in_the_same_second_has_nothing_due(
    leases, lease_driver, renter, providers, reverts
):
    lease_id = lease_driver.open_serving(renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    lease_driver.sleep_to(accepted_at + 50)
    leases.settle(lease_id, {"from": providers[0]})
    lease_driver.sleep_to(accepted_at + 50)
    with reverts("LeaseNothingDue", lease_id):
        leases.settle(lease_id, {"from": providers[0]})


def test_close_early_pays_exactly_the_elapsed_seconds(
    leases, lease_driver, registry, token, renter, providers, treasury
):
    lease_id = lease_driver.open_serving(renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    lease_driver.sleep_to(accepted_at + 321)
    tx = leases.close(lease_id, {"from": renter})
    gross = 321 * RATE
    assert ended(tx) == (CLOSED_BY_RENTER, gross, LEASE_DEPOSIT - gross)
    assert leases.creditOf(providers[0]) == gross - fee_of(gross)
    assert leases.creditOf(treasury) == fee_of(gross)
    assert leases.creditOf(renter) == LEASE_DEPOSIT - gross
    assert registry.lockedBy(leases, providers[0]) == 0
    assert registry.stakeOf(providers[0])[0] == registry.stakeOf(providers[1])[0]  # not slashed
    assert token.balanceOf(leases) == LEASE_DEPOSIT  # all still credited, none lost
    lease = lease_driver.lease(lease_id)
    assert (lease["status"], lease["reason"]) == (LEASE_ENDED, CLOSED_BY_RENTER)


def test_top_up_extends_the_run(leases, lease_driver, renter, providers):
    lease_id = lease_driver.open_serving(renter, providers[0])
    runs_out = leases.runsOutAt(lease_id)
    tx = leases.topUp(lease_id, RATE * 500, {"from": renter})
    assert tx.events["LeaseToppedUp"]["deposit"] == LEASE_DEPOSIT + RATE * 500
    assert leases.runsOutAt(lease_id) == runs_out + 500


def test_top_up_before_accept_counts_from_the_accept(leases, lease_driver, renter, providers):
    lease_id = lease_driver.open(renter, providers[0])
    leases.topUp(lease_id, RATE * 500, {"from": renter})
    tx = leases.accept(lease_id, {"from": providers[0]})
    assert leases.runsOutAt(lease_id) == tx.timestamp + 1_500
    assert lease_driver.lease(lease_id)["collateral"] == LEASE_COLLATERAL  # fixed at open


def test_running_out_ends_the_lease_paid_in_full(leases, lease_driver, registry, renter, providers):
    deposit = RATE * 100 + 7  # the 7 wei below one second's rate are refunded
    lease_id = lease_driver.open_serving(renter, providers[0], deposit=deposit)
    runs_out = leases.runsOutAt(lease_id)
    lease_driver.sleep_to(runs_out - 1)
    assert "LeaseEnded" not in leases.settle(lease_id, {"from": providers[0]}).events
    chain.sleep(500)
    chain.mine()
    assert leases.accruedOf(lease_id) == RATE  # capped at the run-out second
    tx = leases.settle(lease_id, {"from": providers[0]})
    assert ended(tx) == (OUT_OF_FUNDS, RATE * 100, 7)
    assert leases.creditOf(renter) == 7
    assert registry.lockedBy(leases, providers[0]) == 0
    assert leases.runsOutAt(lease_id) == 0 and leases.accruedOf(lease_id) == 0


def test_settle_at_the_run_out_second_ends_the_lease(leases, lease_driver, renter, providers):
    lease_id = lease_driver.open_serving(renter, providers[0])
    lease_driver.sleep_to(leases.runsOutAt(lease_id))
    tx = leases.settle(lease_id, {"from": renter})
    assert ended(tx) == (OUT_OF_FUNDS, LEASE_DEPOSIT, 0)


def test_top_up_at_the_run_out_second_is_too_late(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open_serving(renter, providers[0])
    runs_out = leases.runsOutAt(lease_id)
    lease_driver.sleep_to(runs_out - 1)
    leases.topUp(lease_id, RATE, {"from": renter})  # one second left: still running
    lease_driver.sleep_to(runs_out + 1)
    with reverts("LeaseRanOut", lease_id, runs_out + 1):
        leases.topUp(lease_id, RATE, {"from": renter})


def test_settle_many_settles_the_due_and_skips_the_rest(
    leases, lease_driver, deployer, renter, providers
):
    serving = [lease_driver.open_serving(renter, p) for p in providers[:3]]
    unserved = lease_driver.open_running(renter, providers[3])
    offered = lease_driver.open(renter, providers[4])
    leases.close(serving[2], {"from": renter})
    chain.sleep(20)
    chain.mine()
    ids = [*serving, unserved, offered, 999]
    tx = leases.settleMany(ids, {"from": deployer})
    assert tx.return_value == 2
    assert [e["leaseId"] for e in tx.events["LeaseSettled"]] == serving[:2]
    lease_driver.sleep_to(tx.timestamp)  # the same second: nothing new is due
    assert leases.settleMany(serving[:2], {"from": deployer}).return_value == 0


def test_the_fee_is_fixed_at_open(leases, lease_driver, deployer, renter, providers, treasury):
    lease_id = lease_driver.open_serving(renter, providers[0])
    leases.setFee(treasury, 1_000, {"from": deployer})
    later = lease_driver.open_serving(renter, providers[1])
    chain.sleep(10)
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    tx = leases.close(lease_id, {"from": renter})
    gross = (tx.timestamp - accepted_at) * RATE
    assert tx.events["LeaseSettled"]["fee"] == fee_of(gross, FEE_BPS)
    assert lease_driver.lease(later)["feeBps"] == 1_000


# ------------------------------------------------------------------------ endings


def test_renter_cancels_an_offer_for_a_full_refund(leases, lease_driver, renter, providers):
    lease_id = lease_driver.open(renter, providers[0])
    tx = leases.close(lease_id, {"from": renter})
    assert ended(tx) == (CANCELLED_BEFORE_ACCEPT, 0, LEASE_DEPOSIT)
    assert leases.creditOf(renter) == LEASE_DEPOSIT


def test_anyone_cancels_an_offer_past_the_accept_window(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id = lease_driver.open(renter, providers[0])
    accept_by = lease_driver.lease(lease_id)["acceptBy"]
    lease_driver.sleep_to(accept_by)
    with reverts("LeaseWindowOpen", lease_id, accept_by):
        leases.cancelUnaccepted(lease_id, {"from": outsider})
    lease_driver.sleep_to(accept_by + 1)
    tx = leases.cancelUnaccepted(lease_id, {"from": outsider})
    assert ended(tx) == (NOT_ACCEPTED, 0, LEASE_DEPOSIT)
    assert leases.creditOf(renter) == LEASE_DEPOSIT
    with reverts("LeaseNotOffered", lease_id, LEASE_ENDED):
        leases.accept(lease_id, {"from": providers[0]})


def test_never_served_slashes_the_provider_to_the_renter(
    leases, lease_driver, registry, token, renter, outsider, providers, treasury, reverts
):
    lease_id = lease_driver.open_running(renter, providers[0])
    serve_by = lease_driver.lease(lease_id)["acceptedAt"] + PARAMS.lease_serve_window
    lease_driver.sleep_to(serve_by)
    with reverts("LeaseWindowOpen", lease_id, serve_by):
        leases.claimNeverServed(lease_id, {"from": outsider})
    staked = registry.stakeOf(providers[0])[0]
    renter_before, treasury_before = token.balanceOf(renter), token.balanceOf(treasury)
    lease_driver.sleep_to(serve_by + 1)
    tx = leases.claimNeverServed(lease_id, {"from": outsider})
    assert tx.timestamp == serve_by + 1
    assert ended(tx) == (NEVER_SERVED, 0, LEASE_DEPOSIT)
    assert tx.events["LeaseSlashed"]["collateral"] == LEASE_COLLATERAL
    share = LEASE_COLLATERAL * SLASH_SHARE // 10_000
    assert token.balanceOf(renter) - renter_before == LEASE_COLLATERAL - share
    assert token.balanceOf(treasury) - treasury_before == share
    assert registry.stakeOf(providers[0])[0] == staked - LEASE_COLLATERAL
    assert registry.lockedBy(leases, providers[0]) == 0
    assert leases.creditOf(renter) == LEASE_DEPOSIT and leases.creditOf(providers[0]) == 0


def test_a_late_serving_report_is_refused(
    leases, lease_driver, deployer, renter, providers, reverts
):
    lease_id = lease_driver.open_running(renter, providers[0])
    serve_by = lease_driver.lease(lease_id)["acceptedAt"] + PARAMS.lease_serve_window
    lease_driver.sleep_to(serve_by + 1)
    with reverts("LeaseWindowClosed", lease_id, serve_by):
        leases.reportServing(lease_id, {"from": deployer})


def test_provider_closing_before_serving_is_slashed(
    leases, lease_driver, registry, renter, providers
):
    lease_id = lease_driver.open_running(renter, providers[0])
    chain.sleep(30)
    staked = registry.stakeOf(providers[0])[0]
    tx = leases.close(lease_id, {"from": providers[0]})
    assert ended(tx) == (CLOSED_BY_PROVIDER, 0, LEASE_DEPOSIT)
    assert "LeaseSettled" not in tx.events
    assert registry.stakeOf(providers[0])[0] == staked - LEASE_COLLATERAL


def test_provider_closing_after_serving_is_paid_to_the_second(
    leases, lease_driver, registry, renter, providers
):
    lease_id = lease_driver.open_serving(renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    staked = registry.stakeOf(providers[0])[0]
    lease_driver.sleep_to(accepted_at + 42)
    tx = leases.close(lease_id, {"from": providers[0]})
    assert ended(tx) == (CLOSED_BY_PROVIDER, 42 * RATE, LEASE_DEPOSIT - 42 * RATE)
    assert plain(registry.stakeOf(providers[0]))[:2] == (staked, 0)


def test_renter_closing_during_start_up_pays_the_seconds_held(
    leases, lease_driver, registry, renter, providers
):
    lease_id = lease_driver.open_running(renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    lease_driver.sleep_to(accepted_at + 10)
    tx = leases.close(lease_id, {"from": renter})
    assert ended(tx) == (CLOSED_BY_RENTER, 10 * RATE, LEASE_DEPOSIT - 10 * RATE)
    assert "LeaseSlashed" not in tx.events


@pytest.mark.parametrize("first", ["close", "settle-out", "never-served"])
def test_an_ended_lease_cannot_be_ended_settled_or_topped_up_again(
    leases, lease_driver, deployer, renter, providers, reverts, first
):
    if first == "never-served":
        lease_id = lease_driver.open_running(renter, providers[0])
        chain.sleep(PARAMS.lease_serve_window + 2)
        chain.mine()
        leases.claimNeverServed(lease_id, {"from": deployer})
    else:
        lease_id = lease_driver.open_serving(renter, providers[0])
        if first == "close":
            leases.close(lease_id, {"from": renter})
        else:
            chain.sleep(LEASE_DEPOSIT // RATE + 5)
            chain.mine()
            leases.settle(lease_id, {"from": deployer})
    credit = leases.creditOf(renter)
    for call in (
        lambda: leases.close(lease_id, {"from": renter}),
        lambda: leases.close(lease_id, {"from": providers[0]}),
        lambda: leases.settle(lease_id, {"from": deployer}),
        lambda: leases.topUp(lease_id, RATE, {"from": renter}),
        lambda: leases.claimNeverServed(lease_id, {"from": deployer}),
        lambda: leases.reportServing(lease_id, {"from": deployer}),
    ):
        with reverts("LeaseNotRunning", lease_id, LEASE_ENDED):
            call()
    assert leases.settleMany([lease_id], {"from": deployer}).return_value == 0
    assert leases.creditOf(renter) == credit


def test_every_ending_returns_the_whole_deposit(
    leases, lease_driver, token, deployer, renter, providers, treasury
):
    """Pay, fees and refunds of many leases add up to what was deposited."""
    ids = [lease_driver.open_serving(renter, p) for p in providers[:3]]
    chain.sleep(77)
    leases.close(ids[0], {"from": renter})
    leases.close(ids[1], {"from": providers[1]})
    leases.topUp(ids[2], RATE * 3, {"from": renter})
    chain.sleep(2_000)
    chain.mine()
    leases.settle(ids[2], {"from": deployer})
    credits = sum(leases.creditOf(a) for a in (renter, *providers[:3], treasury))
    assert credits == token.balanceOf(leases) == 3 * LEASE_DEPOSIT + RATE * 3
    for account in (renter, *providers[:3], treasury):
        leases.withdraw({"from": account})
    assert token.balanceOf(leases) == 0
