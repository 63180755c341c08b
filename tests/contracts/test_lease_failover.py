"""LeaseEscrow's failover: a lease down past the grace period moves the rest of its
deposit to a new offered lease on another provider, under the rate cap the renter
agreed to, with no new signature of the renter's.

Money is checked to the wei: the old provider paid up to the failure and slashed by
the slash share, the new provider paid from its accept, the renter refunded the rest,
and the escrow holding exactly what it owes.
"""

import pytest
from brownie import chain
from conftest import (
    CANCELLED_BEFORE_ACCEPT,
    CLOSED_BY_RENTER,
    FAILED_OVER,
    LEASE_COLLATERAL,
    LEASE_DEPOSIT,
    LEASE_ENDED,
    LEASE_OFFERED,
    LEASE_SPEC,
    NOT_ACCEPTED,
    PARAMS,
    PERMIT_KEY,
    RATE,
    STAKE,
    down,
    land_at,
    plain,
    sign_permit,
)

GRACE = PARAMS.lease_grace
SLASH_BPS = PARAMS.lease_slash_bps
FEE_BPS = PARAMS.fee_bps
CAP = 2 * RATE
SPEC2 = b"\x22" * 32


def fee_of(amount, bps=FEE_BPS):
    return amount * bps // 10_000


def failed(leases, lease_driver, renter, provider, sender, *, cap=CAP, spec=LEASE_SPEC):
    """A serving lease with a failover cap, reported down past the grace from 10 s after
    its serving report; returns (lease id, accepted at, failed at)."""
    lease_id = lease_driver.open_serving(renter, provider)
    if cap:
        leases.setFailover(lease_id, cap, spec, {"from": renter})
    lease = lease_driver.lease(lease_id)
    start = lease["servingAt"] + 10
    land_at(start + GRACE + 5)
    leases.reportDown([down(leases, lease_id, start, start + GRACE + 1)], {"from": sender})
    assert lease_driver.lease(lease_id)["failedAt"] == start
    return lease_id, lease["acceptedAt"], start


def test_failover_moves_exactly_the_remaining_deposit(
    leases, lease_driver, registry, token, deployer, renter, outsider, providers, treasury
):
    old_id, accepted_at, failed_at = failed(leases, lease_driver, renter, providers[0], outsider)
    staked = registry.stakeOf(providers[0])[0]
    new_rate = CAP - 1
    tx = leases.failover(old_id, providers[1], new_rate, {"from": deployer})
    new_id = tx.return_value
    old_paid = (failed_at - accepted_at) * RATE
    rest = LEASE_DEPOSIT - old_paid
    moved = tx.events["LeaseFailedOver"]
    assert plain(moved.values()) == (old_id, new_id, providers[1], new_rate, rest)
    ended = tx.events["LeaseEnded"]
    assert plain(ended.values()) == (old_id, FAILED_OVER, old_paid, 0)
    opened = tx.events["LeaseOpened"]
    assert (opened["leaseId"], opened["renter"], opened["provider"]) == (
        new_id,
        renter,
        providers[1],
    )
    assert bytes(opened["specHash"]) == bytes(LEASE_SPEC) and opened["deposit"] == rest
    cut = LEASE_COLLATERAL * SLASH_BPS // 10_000
    assert tx.events["LeaseSlashed"]["collateral"] == cut
    assert registry.stakeOf(providers[0])[0] == staked - cut
    assert registry.lockedBy(leases, providers[0]) == 0
    assert leases.creditOf(providers[0]) == old_paid - fee_of(old_paid)
    assert leases.creditOf(renter) == 0  # nothing refunded: it moved
    old = lease_driver.lease(old_id)
    assert (old["status"], old["reason"]) == (LEASE_ENDED, FAILED_OVER)
    new = lease_driver.lease(new_id)
    assert (new["status"], new["renter"], new["deposit"], new["ratePerSecond"]) == (
        LEASE_OFFERED,
        renter,
        rest,
        new_rate,
    )
    assert (
        new["feeBps"] == FEE_BPS
        and new["collateral"] == rest * PARAMS.lease_collateral_bps // 10_000
    )
    assert plain(leases.failoverOf(new_id)) == (CAP, bytes(LEASE_SPEC))
    assert token.balanceOf(leases) == rest + leases.creditOf(providers[0]) + leases.creditOf(
        treasury
    )

    accepted = leases.accept(new_id, {"from": providers[1]})
    leases.reportServing(new_id, {"from": deployer})
    lease_driver.sleep_to(accepted.timestamp + 77)
    closed = leases.close(new_id, {"from": renter})
    new_paid = 77 * new_rate
    assert plain(closed.events["LeaseEnded"].values()) == (
        new_id,
        CLOSED_BY_RENTER,
        new_paid,
        rest - new_paid,
    )
    assert leases.creditOf(providers[1]) == new_paid - fee_of(new_paid)
    assert leases.creditOf(renter) == LEASE_DEPOSIT - old_paid - new_paid
    assert leases.creditOf(treasury) == fee_of(old_paid) + fee_of(new_paid)
    owed = sum(leases.creditOf(a) for a in (renter, providers[0], providers[1], treasury))
    assert owed == token.balanceOf(leases) == LEASE_DEPOSIT


def test_failover_at_exactly_the_cap_and_again(
    leases, lease_driver, deployer, renter, outsider, providers
):
    """The new lease inherits the terms, so it can fail over again."""
    old_id, _, _ = failed(leases, lease_driver, renter, providers[0], outsider)
    new_id = leases.failover(old_id, providers[1], CAP, {"from": deployer}).return_value
    leases.accept(new_id, {"from": providers[1]})
    leases.reportServing(new_id, {"from": deployer})
    start = lease_driver.lease(new_id)["servingAt"] + 1
    land_at(start + GRACE + 5)
    leases.reportDown([down(leases, new_id, start, start + GRACE + 1)], {"from": outsider})
    third = leases.failover(new_id, providers[2], RATE, {"from": deployer})
    assert third.events["LeaseFailedOver"]["leaseId"] == new_id
    assert lease_driver.lease(third.return_value)["provider"] == providers[2]


def test_a_new_provider_that_never_accepts_refunds_the_rest(
    leases, lease_driver, deployer, renter, outsider, providers
):
    old_id, accepted_at, failed_at = failed(leases, lease_driver, renter, providers[0], outsider)
    new_id = leases.failover(old_id, providers[1], RATE, {"from": deployer}).return_value
    rest = LEASE_DEPOSIT - (failed_at - accepted_at) * RATE
    chain.sleep(PARAMS.lease_accept_window + 2)
    chain.mine()
    tx = leases.cancelUnaccepted(new_id, {"from": outsider})
    assert plain(tx.events["LeaseEnded"].values()) == (new_id, NOT_ACCEPTED, 0, rest)
    assert leases.creditOf(renter) == rest


def test_the_renter_may_cancel_the_new_offer(
    leases, lease_driver, deployer, renter, outsider, providers
):
    old_id, accepted_at, failed_at = failed(leases, lease_driver, renter, providers[0], outsider)
    new_id = leases.failover(old_id, providers[1], RATE, {"from": deployer}).return_value
    tx = leases.close(new_id, {"from": renter})
    assert tx.events["LeaseEnded"]["reason"] == CANCELLED_BEFORE_ACCEPT
    assert leases.creditOf(renter) == LEASE_DEPOSIT - (failed_at - accepted_at) * RATE


# --------------------------------------------------------------------- refusals


def test_failover_above_the_renters_cap_is_refused(
    leases, lease_driver, deployer, renter, outsider, providers, reverts
):
    old_id, _, _ = failed(leases, lease_driver, renter, providers[0], outsider)
    with reverts("LeaseRateAboveCap", old_id, CAP + 1, CAP):
        leases.failover(old_id, providers[1], CAP + 1, {"from": deployer})


def test_failover_needs_the_role(leases, lease_driver, renter, outsider, providers, reverts):
    old_id, _, _ = failed(leases, lease_driver, renter, providers[0], outsider)
    role = leases.FAILOVER_ROLE()
    for caller in (outsider, renter, providers[0], providers[1]):
        with reverts("AccessControlUnauthorizedAccount", caller.address, role):
            leases.failover(old_id, providers[1], RATE, {"from": caller})


def test_failover_of_a_lease_not_down_past_grace_is_refused(
    leases, lease_driver, deployer, renter, outsider, providers, reverts
):
    lease_id = lease_driver.open_serving(renter, providers[0])
    leases.setFailover(lease_id, CAP, LEASE_SPEC, {"from": renter})
    with reverts("LeaseNotDownPastGrace", lease_id):
        leases.failover(lease_id, providers[1], RATE, {"from": deployer})
    s = lease_driver.lease(lease_id)["servingAt"]
    land_at(s + GRACE + 5)
    leases.reportDown([down(leases, lease_id, s, s + GRACE)], {"from": outsider})  # not past it
    with reverts("LeaseNotDownPastGrace", lease_id):
        leases.failover(lease_id, providers[1], RATE, {"from": deployer})
    offered = lease_driver.open(renter, providers[2])
    with reverts("LeaseNotRunning", offered, LEASE_OFFERED):
        leases.failover(offered, providers[1], RATE, {"from": deployer})


def test_failover_without_the_renters_consent_is_refused(
    leases, lease_driver, deployer, renter, outsider, providers, reverts
):
    old_id, _, _ = failed(leases, lease_driver, renter, providers[0], outsider, cap=0)
    with reverts("LeaseNoFailover", old_id):
        leases.failover(old_id, providers[1], 1, {"from": deployer})
    leases.claimDownPastGrace(old_id, {"from": outsider})  # the refund instead


@pytest.mark.parametrize("to", ["same", "renter", "inactive", "zero-rate", "too-little"])
def test_failover_to_a_bad_provider_or_rate_is_refused(
    leases, lease_driver, registry, deployer, renter, outsider, providers, reverts, to
):
    old_id, accepted_at, failed_at = failed(leases, lease_driver, renter, providers[0], outsider)
    rest = LEASE_DEPOSIT - (failed_at - accepted_at) * RATE
    provider, rate = providers[1], RATE
    if to == "same":
        provider = providers[0]
        expected = ("LeaseBadProvider", provider.address)
    elif to == "renter":
        provider = renter
        expected = ("LeaseBadProvider", renter.address)
    elif to == "inactive":
        registry.requestUnstake(STAKE, {"from": providers[1]})
        expected = ("LeaseProviderInactive", providers[1].address)
    elif to == "zero-rate":
        rate = 0
        expected = ("LeaseZeroRate",)
    else:
        leases.setFailover(old_id, rest, LEASE_SPEC, {"from": renter})
        rate = rest // 59  # the rest covers less than a minute of it
        expected = ("LeaseDepositTooSmall", rest, rate * 60)
    with reverts(*expected):
        leases.failover(old_id, provider, rate, {"from": deployer})


# ---------------------------------------------------------------- renter's terms


def test_only_the_renter_sets_failover_terms_of_a_live_lease(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id = lease_driver.open(renter, providers[0])
    for caller in (outsider, providers[0]):
        with reverts("LeaseNotRenter", lease_id, caller.address):
            leases.setFailover(lease_id, CAP, LEASE_SPEC, {"from": caller})
    tx = leases.setFailover(lease_id, CAP, SPEC2, {"from": renter})
    assert plain(tx.events["LeaseFailoverSet"].values()) == (lease_id, CAP, SPEC2)
    assert plain(leases.failoverOf(lease_id)) == (CAP, SPEC2)
    leases.close(lease_id, {"from": renter})
    with reverts("LeaseNotRunning", lease_id, LEASE_ENDED):
        leases.setFailover(lease_id, 0, LEASE_SPEC, {"from": renter})


def test_open_with_permit_and_failover(leases, token, permit_signer, providers):
    deadline = chain.time() + 3_600
    v, r, s = sign_permit(token, PERMIT_KEY, leases, LEASE_DEPOSIT, deadline)
    tx = leases.openWithPermitAndFailover(
        providers[0],
        RATE,
        LEASE_DEPOSIT,
        LEASE_SPEC,
        CAP,
        deadline,
        v,
        r,
        s,
        {"from": permit_signer},
    )
    lease_id = tx.return_value
    assert leases.getLease(lease_id).dict()["renter"] == permit_signer
    assert plain(leases.failoverOf(lease_id)) == (CAP, bytes(LEASE_SPEC))
    assert token.balanceOf(leases) == LEASE_DEPOSIT
