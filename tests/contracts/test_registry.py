"""ProviderRegistry: stake, unbonding, collateral locks and slashes."""

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from conftest import PARAMS, STAKE, TOKEN, ZERO_ADDRESS, plain, sleep_past

MIN = PARAMS.min_stake
DELAY = PARAMS.unbonding_delay


@pytest.fixture(scope="module")
def slasher(registry, deployer):
    """An account holding SLASHER_ROLE, to call lock / unlock / slash directly."""
    registry.grantRole(registry.SLASHER_ROLE(), deployer, {"from": deployer})
    return deployer


@pytest.fixture(scope="module")
def provider(providers):
    return providers[0]


def test_parameters_match_deployment(registry, token, treasury):
    assert registry.token() == token
    assert registry.minStake() == MIN
    assert registry.unbondingDelay() == DELAY
    assert plain(registry.treasury()) == (treasury, PARAMS.slash_treasury_bps)


def test_stake_moves_tokens_and_adds_to_stake(registry, token, provider):
    before = token.balanceOf(provider)
    tx = registry.stake(5 * TOKEN, {"from": provider})
    assert before - token.balanceOf(provider) == 5 * TOKEN
    assert plain(registry.stakeOf(provider)) == (STAKE + 5 * TOKEN, 0, 0, 0)
    assert tx.events["Staked"]["staked"] == STAKE + 5 * TOKEN


def test_stake_zero_reverts(registry, provider, reverts):
    with reverts("RegistryZeroAmount"):
        registry.stake(0, {"from": provider})


def test_stake_without_approval_reverts(registry, outsider, reverts):
    with reverts("ERC20InsufficientAllowance"):
        registry.stake(MIN, {"from": outsider})


def test_active_needs_minimum_stake(registry, token, outsider):
    token.approve(registry, 2**256 - 1, {"from": outsider})
    assert not registry.isActive(outsider)
    registry.stake(MIN - 1, {"from": outsider})
    assert not registry.isActive(outsider)
    registry.stake(1, {"from": outsider})
    assert registry.isActive(outsider)


def test_request_unstake_moves_free_stake_to_unbonding(registry, provider):
    tx = registry.requestUnstake(300 * TOKEN, {"from": provider})
    staked, locked, unbonding, ready_at = plain(registry.stakeOf(provider))
    assert (staked, locked, unbonding) == (STAKE, 0, 300 * TOKEN)
    assert ready_at == tx.timestamp + DELAY
    assert registry.freeStake(provider) == STAKE - 300 * TOKEN


def test_request_unstake_zero_reverts(registry, provider, reverts):
    with reverts("RegistryZeroAmount"):
        registry.requestUnstake(0, {"from": provider})


def test_request_unstake_beyond_free_stake_reverts(registry, provider, reverts):
    with reverts("RegistryInsufficientFreeStake", provider.address, STAKE + 1, STAKE):
        registry.requestUnstake(STAKE + 1, {"from": provider})


def test_locked_collateral_cannot_be_unstaked(registry, slasher, provider, reverts):
    registry.lock(provider, 600 * TOKEN, {"from": slasher})
    with reverts("RegistryInsufficientFreeStake", provider.address, 401 * TOKEN, 400 * TOKEN):
        registry.requestUnstake(401 * TOKEN, {"from": provider})
    registry.requestUnstake(400 * TOKEN, {"from": provider})
    assert registry.freeStake(provider) == 0


def test_request_unstake_again_adds_and_restarts_delay(registry, provider):
    registry.requestUnstake(100 * TOKEN, {"from": provider})
    chain.sleep(500)
    tx = registry.requestUnstake(50 * TOKEN, {"from": provider})
    _, _, unbonding, ready_at = plain(registry.stakeOf(provider))
    assert unbonding == 150 * TOKEN
    assert ready_at == tx.timestamp + DELAY


def test_unbonding_below_minimum_makes_provider_inactive(registry, provider):
    registry.requestUnstake(STAKE - MIN, {"from": provider})
    assert registry.isActive(provider)
    registry.requestUnstake(1, {"from": provider})
    assert not registry.isActive(provider)


def test_cancel_unstake_returns_unbonding_to_free(registry, provider):
    registry.requestUnstake(STAKE, {"from": provider})
    tx = registry.cancelUnstake({"from": provider})
    assert plain(registry.stakeOf(provider)) == (STAKE, 0, 0, 0)
    assert registry.isActive(provider)
    assert tx.events["UnstakeCancelled"]["amount"] == STAKE


def test_cancel_unstake_with_nothing_unbonding_reverts(registry, provider, reverts):
    with reverts("RegistryNothingUnbonding", provider.address):
        registry.cancelUnstake({"from": provider})


def test_withdraw_unstaked_before_delay_reverts(registry, provider, reverts):
    tx = registry.requestUnstake(100 * TOKEN, {"from": provider})
    chain.sleep(DELAY - 100)
    with reverts("RegistryUnbondingNotReady", provider.address, tx.timestamp + DELAY):
        registry.withdrawUnstaked({"from": provider})


def test_withdraw_unstaked_after_delay_pays_out(registry, token, provider):
    registry.requestUnstake(100 * TOKEN, {"from": provider})
    chain.sleep(DELAY + 2)
    before = token.balanceOf(provider)
    registry.withdrawUnstaked({"from": provider})
    assert token.balanceOf(provider) - before == 100 * TOKEN
    assert plain(registry.stakeOf(provider)) == (STAKE - 100 * TOKEN, 0, 0, 0)


def test_withdraw_unstaked_with_nothing_unbonding_reverts(registry, provider, reverts):
    with reverts("RegistryNothingUnbonding", provider.address):
        registry.withdrawUnstaked({"from": provider})


def test_lock_moves_free_stake_to_locked(registry, slasher, provider):
    tx = registry.lock(provider, 10 * TOKEN, {"from": slasher})
    assert plain(registry.stakeOf(provider))[:2] == (STAKE, 10 * TOKEN)
    assert registry.freeStake(provider) == STAKE - 10 * TOKEN
    assert tx.events["CollateralLocked"]["by"] == slasher


def test_lock_refuses_inactive_provider(registry, slasher, outsider, reverts):
    with reverts("RegistryProviderInactive", outsider.address, 0, MIN):
        registry.lock(outsider, 0, {"from": slasher})


def test_lock_refuses_provider_unbonding_below_minimum(registry, slasher, provider, reverts):
    registry.requestUnstake(STAKE - MIN + 1, {"from": provider})
    with reverts("RegistryProviderInactive", provider.address, MIN - 1, MIN):
        registry.lock(provider, 1, {"from": slasher})


def test_lock_with_zero_minimum_still_refuses_provider_without_stake(
    registry, slasher, deployer, outsider, reverts
):
    registry.setMinStake(0, {"from": deployer})
    with reverts("RegistryProviderInactive", outsider.address, 0, 0):
        registry.lock(outsider, 0, {"from": slasher})


def test_lock_refuses_more_than_free_stake(registry, slasher, provider, reverts):
    registry.lock(provider, 900 * TOKEN, {"from": slasher})
    with reverts("RegistryInsufficientFreeStake", provider.address, 101 * TOKEN, 100 * TOKEN):
        registry.lock(provider, 101 * TOKEN, {"from": slasher})


def test_unlock_returns_locked_to_free(registry, slasher, provider):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    registry.unlock(provider, 10 * TOKEN, {"from": slasher})
    assert registry.freeStake(provider) == STAKE


def test_unlock_more_than_locked_reverts(registry, slasher, provider, reverts):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    with reverts("RegistryInsufficientLocked", provider.address, 11 * TOKEN, 10 * TOKEN):
        registry.unlock(provider, 11 * TOKEN, {"from": slasher})


def test_slash_splits_treasury_share_and_beneficiary(
    registry, token, slasher, provider, treasury, outsider
):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    before = token.balanceOf(treasury), token.balanceOf(outsider), token.balanceOf(registry)
    tx = registry.slash(provider, 10 * TOKEN, outsider, {"from": slasher})
    to_treasury = 10 * TOKEN * PARAMS.slash_treasury_bps // 10_000
    assert token.balanceOf(treasury) - before[0] == to_treasury
    assert token.balanceOf(outsider) - before[1] == 10 * TOKEN - to_treasury
    assert before[2] - token.balanceOf(registry) == 10 * TOKEN
    assert plain(registry.stakeOf(provider))[:2] == (STAKE - 10 * TOKEN, 0)
    assert tx.events["ProviderSlashed"]["toTreasury"] == to_treasury


def test_slash_only_cuts_locked_collateral(registry, slasher, provider, outsider, reverts):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    with reverts("RegistryInsufficientLocked", provider.address, 11 * TOKEN, 10 * TOKEN):
        registry.slash(provider, 11 * TOKEN, outsider, {"from": slasher})


def test_slash_keeps_unbonding_stake(registry, slasher, provider, outsider):
    registry.lock(provider, 500 * TOKEN, {"from": slasher})
    registry.requestUnstake(500 * TOKEN, {"from": provider})
    registry.slash(provider, 500 * TOKEN, outsider, {"from": slasher})
    assert plain(registry.stakeOf(provider))[:3] == (500 * TOKEN, 0, 500 * TOKEN)


def test_slash_with_zero_treasury_share_pays_beneficiary_everything(
    registry, token, slasher, deployer, provider, treasury, outsider
):
    registry.setTreasury(treasury, 0, {"from": deployer})
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    before = token.balanceOf(treasury), token.balanceOf(outsider)
    registry.slash(provider, 10 * TOKEN, outsider, {"from": slasher})
    assert token.balanceOf(treasury) == before[0]
    assert token.balanceOf(outsider) - before[1] == 10 * TOKEN


def test_set_min_stake_changes_activity(registry, deployer, provider):
    registry.setMinStake(STAKE + 1, {"from": deployer})
    assert registry.minStake() == STAKE + 1
    assert not registry.isActive(provider)


def test_set_unbonding_delay_applies_to_new_requests(registry, deployer, provider):
    registry.setUnbondingDelay(5, {"from": deployer})
    tx = registry.requestUnstake(TOKEN, {"from": provider})
    assert plain(registry.stakeOf(provider))[3] == tx.timestamp + 5


def test_set_unbonding_delay_accepts_maximum(registry, deployer):
    maximum = registry.MAX_UNBONDING_DELAY()
    assert maximum == 90 * 86400
    registry.setUnbondingDelay(maximum, {"from": deployer})
    assert registry.unbondingDelay() == maximum


def test_set_unbonding_delay_above_maximum_reverts(registry, deployer, reverts):
    maximum = registry.MAX_UNBONDING_DELAY()
    with reverts("RegistryDelayTooLong", maximum + 1, maximum):
        registry.setUnbondingDelay(maximum + 1, {"from": deployer})


def test_set_treasury_updates_address_and_share(registry, deployer, outsider):
    tx = registry.setTreasury(outsider, 5_000, {"from": deployer})
    assert plain(registry.treasury()) == (outsider, 5_000)
    assert tx.events["TreasurySet"]["shareBps"] == 5_000


def test_set_treasury_share_above_maximum_reverts(registry, deployer, treasury, reverts):
    maximum = registry.MAX_TREASURY_SHARE_BPS()
    with reverts("RegistryShareTooHigh", maximum + 1, maximum):
        registry.setTreasury(treasury, maximum + 1, {"from": deployer})


def test_set_treasury_to_zero_address_reverts(registry, deployer, reverts):
    with reverts("RegistryZeroAddress"):
        registry.setTreasury(ZERO_ADDRESS, 100, {"from": deployer})


def test_is_active_agrees_with_lock_when_all_stake_unbonds_at_zero_minimum(
    registry, slasher, deployer, provider
):
    registry.setMinStake(0, {"from": deployer})
    registry.requestUnstake(STAKE, {"from": provider})
    can_lock = True
    try:
        registry.lock.call(provider, 0, {"from": slasher})
    except VirtualMachineError:
        can_lock = False
    assert registry.isActive(provider) == can_lock


# ------------------------------------------------------------- locks per slasher


@pytest.fixture(scope="module")
def slasher2(registry, deployer, outsider):
    """A second SLASHER_ROLE holder, as a second escrow would be."""
    registry.grantRole(registry.SLASHER_ROLE(), outsider, {"from": deployer})
    return outsider


def test_locked_by_tracks_each_slashers_own_locks(registry, slasher, slasher2, provider):
    assert registry.lockedBy(slasher, provider) == 0
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    registry.lock(provider, 5 * TOKEN, {"from": slasher2})
    registry.lock(provider, 3 * TOKEN, {"from": slasher})
    assert registry.lockedBy(slasher, provider) == 13 * TOKEN
    assert registry.lockedBy(slasher2, provider) == 5 * TOKEN
    assert plain(registry.stakeOf(provider))[1] == 18 * TOKEN


def test_unlock_and_slash_take_off_the_callers_own_ledger(
    registry, slasher, slasher2, provider, treasury
):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    registry.lock(provider, 5 * TOKEN, {"from": slasher2})
    registry.unlock(provider, 4 * TOKEN, {"from": slasher})
    registry.slash(provider, 2 * TOKEN, treasury, {"from": slasher2})
    assert registry.lockedBy(slasher, provider) == 6 * TOKEN
    assert registry.lockedBy(slasher2, provider) == 3 * TOKEN
    assert plain(registry.stakeOf(provider))[:2] == (STAKE - 2 * TOKEN, 9 * TOKEN)


def test_slasher_cannot_unlock_another_slashers_lock(
    registry, slasher, slasher2, provider, reverts
):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    with reverts("RegistryInsufficientLocked", provider.address, TOKEN, 0):
        registry.unlock(provider, TOKEN, {"from": slasher2})
    registry.lock(provider, TOKEN, {"from": slasher2})
    with reverts("RegistryInsufficientLocked", provider.address, 2 * TOKEN, TOKEN):
        registry.unlock(provider, 2 * TOKEN, {"from": slasher2})
    assert registry.lockedBy(slasher, provider) == 10 * TOKEN


def test_slasher_cannot_slash_another_slashers_lock(
    registry, slasher, slasher2, provider, outsider, reverts
):
    registry.lock(provider, 10 * TOKEN, {"from": slasher})
    with reverts("RegistryInsufficientLocked", provider.address, 10 * TOKEN, 0):
        registry.slash(provider, 10 * TOKEN, outsider, {"from": slasher2})
    assert plain(registry.stakeOf(provider))[:2] == (STAKE, 10 * TOKEN)


def test_a_revoked_slasher_still_releases_its_own_lock_and_nobody_else_can(
    registry, slasher, slasher2, deployer, provider, reverts
):
    """Revoking the role stops new locks; the old lock stays its locker's to release."""
    registry.lock(provider, 10 * TOKEN, {"from": slasher2})
    registry.revokeRole(registry.SLASHER_ROLE(), slasher2, {"from": deployer})
    with reverts("AccessControlUnauthorizedAccount"):
        registry.lock(provider, TOKEN, {"from": slasher2})
    with reverts("RegistryInsufficientLocked", provider.address, 10 * TOKEN, 0):
        registry.unlock(provider, 10 * TOKEN, {"from": slasher})
    registry.unlock(provider, 10 * TOKEN, {"from": slasher2})
    assert registry.lockedBy(slasher2, provider) == 0
    assert plain(registry.stakeOf(provider))[1] == 0


def test_escrow_locks_and_settles_on_its_own_ledger(
    registry, escrow, storage, jobs, renter, provider
):
    job_id = jobs.fund(renter)
    escrow.accept(job_id, {"from": provider})
    collateral = jobs.job(job_id)["collateral"]
    assert registry.lockedBy(escrow, provider) == collateral
    assert registry.lockedBy(storage, provider) == 0
    sleep_past(jobs.job(job_id)["deadline"])
    escrow.claimNoShow(job_id, {"from": renter})  # slashes what the escrow locked
    assert registry.lockedBy(escrow, provider) == 0
