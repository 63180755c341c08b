"""Re-entry through a malicious token or ETH receiver meets OpenZeppelin's guard.

The escrow, registry and faucet here run on ReentrantToken, whose balance hook
calls back into them in the middle of their own transfer; TokenSale pays change
and proceeds to SaleAttacker, whose `receive` calls back into the sale. Every
attempt must revert with `ReentrancyGuardReentrantCall`; the control tests show
the same calls succeed when nothing re-enters.
"""

import pytest
from brownie import (
    DevFaucet,
    JobEscrow,
    ProviderRegistry,
    ReentrantToken,
    SaleAttacker,
    chain,
    web3,
)
from conftest import PARAMS, PRICE, STAKE, TOKEN, sleep_past

GUARD = "ReentrancyGuardReentrantCall"


@pytest.fixture(scope="module")
def rtoken(deployer):
    return ReentrantToken.deploy(10**9 * TOKEN, {"from": deployer})


@pytest.fixture(scope="module")
def rregistry(rtoken, deployer, treasury, providers):
    registry = ProviderRegistry.deploy(
        rtoken, PARAMS.min_stake, PARAMS.unbonding_delay, treasury, 2_000, {"from": deployer}
    )
    for provider in providers[:2]:
        rtoken.transfer(provider, 10 * STAKE, {"from": deployer})
        rtoken.approve(registry, 2**256 - 1, {"from": provider})
        registry.stake(STAKE, {"from": provider})
    return registry


@pytest.fixture(scope="module")
def rescrow(rtoken, rregistry, deployer, treasury, renter):
    windows = [PARAMS.accept_window, PARAMS.reveal_window, PARAMS.challenge_window]
    escrow = JobEscrow.deploy(rtoken, rregistry, treasury, 200, windows, 10_000, {"from": deployer})
    rregistry.grantRole(rregistry.SLASHER_ROLE(), escrow, {"from": deployer})
    rtoken.transfer(renter, 1_000 * TOKEN, {"from": deployer})
    rtoken.approve(escrow, 2**256 - 1, {"from": renter})
    return escrow


@pytest.fixture(scope="module")
def rfaucet(rtoken, deployer):
    faucet = DevFaucet.deploy(rtoken, 10 * TOKEN, 60, {"from": deployer})
    rtoken.transfer(faucet, 1_000 * TOKEN, {"from": deployer})
    return faucet


def fund(escrow, renter):
    deadline = chain.time() + PARAMS.accept_window + 200
    escrow.fund(web3.keccak(text="spec"), 0, PRICE, deadline, 1, [], {"from": renter})
    return escrow.jobCount()


@pytest.fixture
def credited(rescrow, renter):
    """The renter holds a credit in the escrow (a cancelled job's refund)."""
    job_id = fund(rescrow, renter)
    rescrow.cancel(job_id, {"from": renter})
    return renter


def test_escrow_withdraw_without_reentry_succeeds(rescrow, rtoken, credited):
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": credited})  # harmless call
    before = rtoken.balanceOf(credited)
    rescrow.withdraw({"from": credited})
    assert rtoken.balanceOf(credited) - before == PRICE


def test_escrow_withdraw_reentry_reverts(rescrow, rtoken, credited, reverts):
    rtoken.arm(rescrow, rescrow.withdraw.encode_input(), {"from": credited})
    with reverts(GUARD):
        rescrow.withdraw({"from": credited})


def test_escrow_fund_reentry_reverts(rescrow, rtoken, renter, reverts):
    rtoken.arm(rescrow, rescrow.withdraw.encode_input(), {"from": renter})
    with reverts(GUARD):
        fund(rescrow, renter)


def test_escrow_settlement_reentry_through_slash_reverts(
    rescrow, rtoken, renter, providers, reverts
):
    job_id = fund(rescrow, renter)
    rescrow.accept(job_id, {"from": providers[0]})
    sleep_past(rescrow.getJob(job_id)[3])  # deadline: a no-show
    rtoken.arm(rescrow, rescrow.finalizeMany.encode_input([job_id]), {"from": renter})
    with reverts(GUARD):
        rescrow.claimNoShow(job_id, {"from": renter})


def test_registry_stake_reentry_reverts(rregistry, rtoken, providers, reverts):
    rtoken.arm(rregistry, rregistry.withdrawUnstaked.encode_input(), {"from": providers[0]})
    with reverts(GUARD):
        rregistry.stake(TOKEN, {"from": providers[0]})


def test_registry_withdraw_unstaked_reentry_reverts(rregistry, rtoken, providers, reverts):
    rregistry.requestUnstake(TOKEN, {"from": providers[0]})
    chain.sleep(PARAMS.unbonding_delay + 2)
    rtoken.arm(rregistry, rregistry.withdrawUnstaked.encode_input(), {"from": providers[0]})
    with reverts(GUARD):
        rregistry.withdrawUnstaked({"from": providers[0]})


def test_registry_withdraw_unstaked_without_reentry_succeeds(rregistry, rtoken, providers):
    rregistry.requestUnstake(TOKEN, {"from": providers[0]})
    chain.sleep(PARAMS.unbonding_delay + 2)
    before = rtoken.balanceOf(providers[0])
    rregistry.withdrawUnstaked({"from": providers[0]})
    assert rtoken.balanceOf(providers[0]) - before == TOKEN


def test_faucet_drip_reentry_reverts(rfaucet, rtoken, renter, outsider, reverts):
    rtoken.arm(rfaucet, rfaucet.drip.encode_input(outsider), {"from": renter})
    with reverts(GUARD):
        rfaucet.drip(renter, {"from": renter})


# ------------------------------------------------------------------ ETH receiver


@pytest.fixture(scope="module")
def attacker(sale, deployer):
    """A SaleAttacker holding enough ETH that an unguarded re-entrant buy would succeed."""
    contract = SaleAttacker.deploy(sale, {"from": deployer})
    deployer.transfer(contract, 3 * PARAMS.sale_price_wei)
    return contract


def test_sale_buy_with_change_refund_succeeds_without_reentry(sale, token, attacker, outsider):
    value = 10**18  # less than one token: leaves change
    attacker.plainBuy({"from": outsider, "value": value})
    amount = value * TOKEN // PARAMS.sale_price_wei
    cost = (amount * PARAMS.sale_price_wei + TOKEN - 1) // TOKEN
    assert token.balanceOf(attacker) == amount
    assert attacker.received() == 3 * PARAMS.sale_price_wei + value - cost


def test_sale_buy_reentry_from_change_refund_reverts(sale, attacker, outsider, reverts):
    with reverts(GUARD):
        attacker.attackBuy({"from": outsider, "value": 10**18})


def test_sale_withdraw_proceeds_reentry_reverts(sale, attacker, deployer, outsider, reverts):
    sale.buy({"from": outsider, "value": PARAMS.sale_price_wei})
    sale.transferOwnership(attacker, {"from": deployer})
    with reverts(GUARD):
        attacker.attackWithdraw({"from": outsider})
