"""Re-entry into LeaseEscrow through a malicious token meets OpenZeppelin's guard.

As in ``test_reentrancy.py``: the escrow and its registry run on ReentrantToken,
whose balance hook calls back into the escrow in the middle of a transfer the escrow
(or the registry, paying a slash) makes. Every attempt must revert with
`ReentrancyGuardReentrantCall`; the control tests show the same calls succeed when
nothing re-enters.
"""

import pytest
from brownie import LeaseEscrow, ProviderRegistry, ReentrantToken, chain
from conftest import LEASE_DEPOSIT, LEASE_SPEC, PARAMS, RATE, STAKE, TOKEN, WATCHERS, down, land_at

GUARD = "ReentrancyGuardReentrantCall"


@pytest.fixture(scope="module")
def rtoken(deployer):
    return ReentrantToken.deploy(10**9 * TOKEN, {"from": deployer})


@pytest.fixture(scope="module")
def rleases(rtoken, deployer, treasury, renter, providers):
    registry = ProviderRegistry.deploy(
        rtoken, PARAMS.min_stake, PARAMS.unbonding_delay, treasury, 2_000, {"from": deployer}
    )
    for provider in providers[:2]:
        rtoken.transfer(provider, 10 * STAKE, {"from": deployer})
        rtoken.approve(registry, 2**256 - 1, {"from": provider})
        registry.stake(STAKE, {"from": provider})
    windows = [PARAMS.lease_accept_window, PARAMS.lease_serve_window]
    leases = LeaseEscrow.deploy(rtoken, registry, treasury, 200, windows, 5_000, {"from": deployer})
    registry.grantRole(registry.SLASHER_ROLE(), leases, {"from": deployer})
    rtoken.transfer(renter, 1_000 * TOKEN, {"from": deployer})
    rtoken.approve(leases, 2**256 - 1, {"from": renter})
    for watcher in WATCHERS:
        leases.grantRole(leases.WATCHER_ROLE(), watcher, {"from": deployer})
    leases.grantRole(leases.FAILOVER_ROLE(), deployer, {"from": deployer})
    return leases


def open_lease(leases, renter, provider):
    return leases.open(provider, RATE, LEASE_DEPOSIT, LEASE_SPEC, {"from": renter}).return_value


@pytest.fixture
def credited(rleases, renter, providers):
    """The renter holds a credit in the escrow (a cancelled offer's refund)."""
    rleases.close(open_lease(rleases, renter, providers[0]), {"from": renter})
    return renter


def test_withdraw_without_reentry_succeeds(rleases, rtoken, credited):
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": credited})  # harmless call
    before = rtoken.balanceOf(credited)
    rleases.withdraw({"from": credited})
    assert rtoken.balanceOf(credited) - before == LEASE_DEPOSIT


def test_withdraw_reentry_reverts(rleases, rtoken, credited, reverts):
    rtoken.arm(rleases, rleases.withdraw.encode_input(), {"from": credited})
    with reverts(GUARD):
        rleases.withdraw({"from": credited})


def test_open_reentry_reverts(rleases, rtoken, renter, providers, reverts):
    rtoken.arm(rleases, rleases.withdraw.encode_input(), {"from": renter})
    with reverts(GUARD):
        open_lease(rleases, renter, providers[0])


def test_top_up_reentry_reverts(rleases, rtoken, renter, providers, reverts):
    lease_id = open_lease(rleases, renter, providers[0])
    rtoken.arm(rleases, rleases.close.encode_input(lease_id), {"from": renter})
    with reverts(GUARD):
        rleases.topUp(lease_id, RATE, {"from": renter})


def test_never_served_slash_reentry_through_the_registry_reverts(
    rleases, rtoken, renter, providers, reverts
):
    """The registry pays the slash in the token; its hook re-enters the escrow."""
    lease_id = open_lease(rleases, renter, providers[0])
    rleases.accept(lease_id, {"from": providers[0]})
    chain.sleep(PARAMS.lease_serve_window + 2)
    chain.mine()
    rtoken.arm(rleases, rleases.settleMany.encode_input([lease_id]), {"from": renter})
    with reverts(GUARD):
        rleases.claimNeverServed(lease_id, {"from": renter})
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": renter})  # harmless call
    rleases.claimNeverServed(lease_id, {"from": renter})
    assert rleases.getLease(lease_id).dict()["status"] == 3  # Ended


def test_provider_close_slash_reentry_reverts(rleases, rtoken, renter, providers, reverts):
    lease_id = open_lease(rleases, renter, providers[1])
    rleases.accept(lease_id, {"from": providers[1]})
    rtoken.arm(rleases, rleases.close.encode_input(lease_id), {"from": providers[1]})
    with reverts(GUARD):
        rleases.close(lease_id, {"from": providers[1]})


def failed_lease(leases, renter, provider):
    """A lease of `provider` reported down past the grace period, its renter's failover on."""
    lease_id = open_lease(leases, renter, provider)
    leases.accept(lease_id, {"from": provider})
    leases.reportServing(lease_id, {"from": renter})
    leases.setFailover(lease_id, RATE, LEASE_SPEC, {"from": renter})
    start = leases.getLease(lease_id).dict()["servingAt"]
    land_at(start + 200)
    leases.reportDown([down(leases, lease_id, start, start + 121)], {"from": renter})
    return lease_id


def test_down_past_grace_slash_reentry_reverts(rleases, rtoken, renter, providers, reverts):
    lease_id = failed_lease(rleases, renter, providers[0])
    rtoken.arm(rleases, rleases.claimDownPastGrace.encode_input(lease_id), {"from": renter})
    with reverts(GUARD):
        rleases.claimDownPastGrace(lease_id, {"from": renter})
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": renter})  # harmless call
    rleases.claimDownPastGrace(lease_id, {"from": renter})
    assert rleases.getLease(lease_id).dict()["reason"] == 7  # DownPastGrace


def test_failover_slash_reentry_reverts(rleases, rtoken, deployer, renter, providers, reverts):
    lease_id = failed_lease(rleases, renter, providers[0])
    rtoken.arm(rleases, rleases.reportDown.encode_input([]), {"from": renter})
    with reverts(GUARD):
        rleases.failover(lease_id, providers[1], RATE, {"from": deployer})
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": renter})  # harmless call
    new_id = rleases.failover(lease_id, providers[1], RATE, {"from": deployer}).return_value
    assert rleases.getLease(new_id).dict()["provider"] == providers[1]
