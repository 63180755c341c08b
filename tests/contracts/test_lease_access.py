"""LeaseEscrow: every custom error, and who may call what."""

import pytest
from brownie import chain
from conftest import (
    LEASE_DEPOSIT,
    LEASE_ENDED,
    LEASE_OFFERED,
    LEASE_RUNNING,
    LEASE_SPEC,
    PARAMS,
    RATE,
    STAKE,
    ZERO_ADDRESS,
    plain,
)

DEFAULT_ADMIN_ROLE = "0x" + "00" * 32
UINT96_MAX = 2**96 - 1


@pytest.fixture(scope="module")
def prober_role(leases):
    return leases.PROBER_ROLE()


def open_args(provider, rate=RATE, deposit=LEASE_DEPOSIT):
    return (provider, rate, deposit, LEASE_SPEC)


# ------------------------------------------------------------------------ wiring


def test_lease_escrow_holds_slasher_role_and_deployer_is_admin(
    registry, leases, deployer, prober_role
):
    assert registry.hasRole(registry.SLASHER_ROLE(), leases)
    assert leases.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert leases.hasRole(prober_role, deployer)
    params = plain(leases.parameters())
    assert params[4:] == (
        PARAMS.lease_accept_window,
        PARAMS.lease_serve_window,
        PARAMS.lease_collateral_bps,
    )


def test_granting_prober_role_needs_admin(leases, outsider, prober_role, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        leases.grantRole(prober_role, outsider, {"from": outsider})


def test_set_fee_needs_admin_and_a_capped_fee(leases, deployer, outsider, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        leases.setFee(outsider, 100, {"from": outsider})
    with reverts("EscrowFeeTooHigh", 1_001, 1_000):
        leases.setFee(outsider, 1_001, {"from": deployer})
    with reverts("EscrowZeroAddress"):
        leases.setFee(ZERO_ADDRESS, 100, {"from": deployer})


def test_withdraw_needs_a_credit(leases, outsider, reverts):
    with reverts("EscrowNothingToWithdraw", outsider.address):
        leases.withdraw({"from": outsider})


# ------------------------------------------------------------------------- open


def test_open_refuses_a_zero_rate(leases, renter, providers, reverts):
    with reverts("LeaseZeroRate"):
        leases.open(*open_args(providers[0], rate=0), {"from": renter})


def test_open_refuses_a_zero_deposit(leases, renter, providers, reverts):
    with reverts("LeaseZeroDeposit"):
        leases.open(*open_args(providers[0], deposit=0), {"from": renter})


def test_open_refuses_less_than_the_minimum_prepaid_seconds(leases, renter, providers, reverts):
    minimum = RATE * 60
    with reverts("LeaseDepositTooSmall", minimum - 1, minimum):
        leases.open(*open_args(providers[0], deposit=minimum - 1), {"from": renter})


@pytest.mark.parametrize("who", ["zero", "renter"])
def test_open_refuses_a_bad_provider(leases, renter, reverts, who):
    provider = ZERO_ADDRESS if who == "zero" else renter.address
    with reverts("LeaseBadProvider", provider):
        leases.open(*open_args(provider), {"from": renter})


def test_open_refuses_an_inactive_provider(leases, registry, renter, outsider, providers, reverts):
    with reverts("LeaseProviderInactive", outsider.address):  # never staked
        leases.open(*open_args(outsider), {"from": renter})
    registry.requestUnstake(STAKE, {"from": providers[0]})  # unbonding everything
    with reverts("LeaseProviderInactive", providers[0].address):
        leases.open(*open_args(providers[0]), {"from": renter})


def test_open_refuses_a_collateral_beyond_uint96(
    deployment, deployer, token, registry, renter, providers, reverts
):
    """With collateralBps above 100% a huge deposit's bond would not fit the lease."""
    from brownie import LeaseEscrow

    greedy = LeaseEscrow.deploy(
        token, registry, deployer, 0, [100, 100], 20_000, {"from": deployer}
    )
    with reverts("LeaseAmountTooHigh", UINT96_MAX):
        greedy.open(providers[0], 1, UINT96_MAX, LEASE_SPEC, {"from": renter})


def test_open_needs_the_tokens(leases, token, renter, providers, reverts):
    with reverts("ERC20InsufficientBalance"):
        leases.open(*open_args(providers[0], deposit=token.balanceOf(renter) + 1), {"from": renter})


# ----------------------------------------------------------------------- accept


def test_only_the_named_provider_accepts(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open(renter, providers[0])
    for caller in (providers[1], renter):
        with reverts("LeaseNotProvider", lease_id, caller.address):
            leases.accept(lease_id, {"from": caller})


def test_accept_after_the_window_is_refused(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open(renter, providers[0])
    accept_by = lease_driver.lease(lease_id)["acceptBy"]
    lease_driver.sleep_to(accept_by + 1)
    with reverts("LeaseWindowClosed", lease_id, accept_by):
        leases.accept(lease_id, {"from": providers[0]})


def test_accept_twice_or_unknown_is_refused(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open_running(renter, providers[0])
    with reverts("LeaseNotOffered", lease_id, LEASE_RUNNING):
        leases.accept(lease_id, {"from": providers[0]})
    with reverts("LeaseNotOffered", 99, 0):
        leases.accept(99, {"from": providers[0]})


def test_accept_needs_free_stake(leases, lease_driver, registry, renter, providers, reverts):
    lease_id = lease_driver.open(renter, providers[0], deposit=RATE * 100 + 2 * STAKE)
    with reverts("RegistryInsufficientFreeStake"):
        leases.accept(lease_id, {"from": providers[0]})


# ------------------------------------------------------------- serving reports


def test_the_provider_cannot_report_itself_serving(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id = lease_driver.open_running(renter, providers[0])
    for caller in (providers[0], outsider):
        with reverts("LeaseNotProber", lease_id, caller.address):
            leases.reportServing(lease_id, {"from": caller})


def test_a_revoked_prober_cannot_report(
    leases, lease_driver, deployer, renter, providers, prober_role, reverts
):
    lease_id = lease_driver.open_running(renter, providers[0])
    leases.revokeRole(prober_role, deployer, {"from": deployer})
    with reverts("LeaseNotProber", lease_id, deployer.address):
        leases.reportServing(lease_id, {"from": deployer})


def test_serving_is_reported_once(leases, lease_driver, deployer, renter, providers, reverts):
    lease_id = lease_driver.open_serving(renter, providers[0])
    serving_at = lease_driver.lease(lease_id)["servingAt"]
    with reverts("LeaseAlreadyServing", lease_id, serving_at):
        leases.reportServing(lease_id, {"from": renter})
    with reverts("LeaseAlreadyServing", lease_id, serving_at):
        leases.claimNeverServed(lease_id, {"from": deployer})


def test_serving_needs_a_running_lease(leases, lease_driver, deployer, renter, providers, reverts):
    lease_id = lease_driver.open(renter, providers[0])
    with reverts("LeaseNotRunning", lease_id, LEASE_OFFERED):
        leases.reportServing(lease_id, {"from": deployer})
    with reverts("LeaseNotRunning", lease_id, LEASE_OFFERED):
        leases.claimNeverServed(lease_id, {"from": deployer})


# ----------------------------------------------------------------------- settle


def test_settle_before_serving_is_refused(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open_running(renter, providers[0])
    chain.sleep(10)
    with reverts("LeaseNotServing", lease_id):
        leases.settle(lease_id, {"from": providers[0]})
    with reverts("LeaseNotRunning", 99, 0):
        leases.settle(99, {"from": providers[0]})


# ---------------------------------------------------------------------- top-ups


def test_only_the_renter_tops_up(leases, lease_driver, renter, outsider, providers, reverts):
    lease_id = lease_driver.open_serving(renter, providers[0])
    for caller in (outsider, providers[0]):
        with reverts("LeaseNotRenter", lease_id, caller.address):
            leases.topUp(lease_id, RATE, {"from": caller})


def test_top_up_refuses_zero_and_overflow(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open(renter, providers[0])
    with reverts("LeaseZeroDeposit"):
        leases.topUp(lease_id, 0, {"from": renter})
    with reverts("LeaseAmountTooHigh", LEASE_DEPOSIT + UINT96_MAX):
        leases.topUp(lease_id, UINT96_MAX, {"from": renter})


def test_top_up_of_an_unknown_lease_is_refused(leases, renter, reverts):
    with reverts("LeaseNotRunning", 7, 0):
        leases.topUp(7, RATE, {"from": renter})


# ------------------------------------------------------------------------ close


def test_only_the_renter_cancels_an_offer(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id = lease_driver.open(renter, providers[0])
    for caller in (providers[0], outsider):
        with reverts("LeaseNotRenter", lease_id, caller.address):
            leases.close(lease_id, {"from": caller})


def test_only_the_parties_close_a_running_lease(
    leases, lease_driver, deployer, renter, outsider, providers, reverts
):
    lease_id = lease_driver.open_serving(renter, providers[0])
    for caller in (outsider, deployer, providers[1]):
        with reverts("LeaseNotParty", lease_id, caller.address):
            leases.close(lease_id, {"from": caller})


def test_close_of_an_unknown_lease_is_refused(leases, renter, reverts):
    with reverts("LeaseNotRunning", 5, 0):
        leases.close(5, {"from": renter})


def test_cancel_unaccepted_needs_an_offer(leases, lease_driver, renter, providers, reverts):
    lease_id = lease_driver.open_running(renter, providers[0])
    chain.sleep(PARAMS.lease_accept_window + 2)
    with reverts("LeaseNotOffered", lease_id, LEASE_RUNNING):
        leases.cancelUnaccepted(lease_id, {"from": renter})
    leases.close(lease_id, {"from": renter})
    with reverts("LeaseNotOffered", lease_id, LEASE_ENDED):
        leases.cancelUnaccepted(lease_id, {"from": renter})


def test_an_escrow_whose_role_is_revoked_still_ends_what_it_locked(
    leases, lease_driver, registry, deployer, renter, providers
):
    served = lease_driver.open_serving(renter, providers[0])
    unserved = lease_driver.open_running(renter, providers[1])
    registry.revokeRole(registry.SLASHER_ROLE(), leases, {"from": deployer})
    chain.sleep(PARAMS.lease_serve_window + 2)
    leases.close(served, {"from": renter})
    leases.claimNeverServed(unserved, {"from": deployer})
    assert registry.lockedBy(leases, providers[0]) == registry.lockedBy(leases, providers[1]) == 0
