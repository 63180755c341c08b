"""Re-entry through a malicious token or ETH receiver meets OpenZeppelin's guard.

The escrows, registry and faucet here run on ReentrantToken, whose balance hook
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
    StorageEscrow,
    chain,
    web3,
)
from conftest import MATCHER, PARAMS, PRICE, STAKE, TOKEN, Deals, sleep_past

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
    escrow = JobEscrow.deploy(
        rtoken, rregistry, treasury, 200, windows, 10_000, MATCHER, {"from": deployer}
    )
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
    open_job = ([], 0, b"")  # a single replica open to any provider: no matcher signature
    escrow.fund(web3.keccak(text="spec"), 0, PRICE, deadline, 1, open_job, {"from": renter})
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


def open_request():
    deadline = chain.time() + PARAMS.accept_window + 200
    return (web3.keccak(text="spec"), 0, PRICE, 0, deadline, 1, ([], 0, b""))


@pytest.mark.parametrize("permit", [False, True], ids=["fundMany", "fundManyWithPermit"])
def test_escrow_fund_many_reentry_reverts(rescrow, rtoken, renter, reverts, permit):
    """The deposits' one transferFrom re-enters the escrow (here: acceptMany)."""
    job_id = fund(rescrow, renter)
    rtoken.arm(rescrow, rescrow.acceptMany.encode_input([job_id]), {"from": renter})
    jobs = [open_request(), open_request()]
    with reverts(GUARD):
        if permit:  # the token has no permit: the escrow ignores the failed call
            rescrow.fundManyWithPermit(jobs, 0, 0, b"\0" * 32, b"\0" * 32, {"from": renter})
        else:
            rescrow.fundMany(jobs, {"from": renter})
    assert rescrow.jobCount() == job_id


def test_escrow_fund_many_without_reentry_succeeds(rescrow, rtoken, renter):
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": renter})  # harmless call
    tx = rescrow.fundMany([open_request(), open_request()], {"from": renter})
    assert tx.return_value == 1
    assert rtoken.balanceOf(rescrow) == 2 * PRICE


def test_escrow_finalize_many_reentry_through_slash_reverts(
    rescrow, rtoken, renter, providers, reverts
):
    """A batch that slashes a no-show: the registry's payout re-enters acceptMany."""
    first = rescrow.fundMany([open_request(), open_request()], {"from": renter}).return_value
    rescrow.acceptMany([first, first + 1], {"from": providers[0]})
    later = fund(rescrow, renter)
    sleep_past(rescrow.finalizableAt(first + 1))
    rtoken.arm(rescrow, rescrow.acceptMany.encode_input([later]), {"from": renter})
    with reverts(GUARD):
        rescrow.finalizeMany([first, first + 1], {"from": renter})
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": renter})  # harmless call
    assert rescrow.finalizeMany([first, first + 1], {"from": renter}).return_value == 2


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


# ----------------------------------------------------------------- StorageEscrow


@pytest.fixture(scope="module")
def rstorage(rtoken, rregistry, deployer, treasury, renter):
    windows = [PARAMS.storage_accept_window, PARAMS.storage_response_window]
    storage = StorageEscrow.deploy(
        rtoken, rregistry, treasury, 200, windows, 5_000, {"from": deployer}
    )
    rregistry.grantRole(rregistry.SLASHER_ROLE(), storage, {"from": deployer})
    rtoken.transfer(renter, 1_000 * TOKEN, {"from": deployer})
    rtoken.approve(storage, 2**256 - 1, {"from": renter})
    return storage


@pytest.fixture(scope="module")
def rdeals(rstorage):
    return Deals(rstorage)


@pytest.fixture
def storage_credited(rstorage, rdeals, renter, providers):
    """The renter holds a credit in the storage escrow (a withdrawn offer's refund)."""
    deal_id = rdeals.open(renter, providers[0])
    rstorage.cancel(deal_id, {"from": renter})
    return renter


def test_storage_withdraw_without_reentry_succeeds(rstorage, rtoken, storage_credited):
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": storage_credited})
    before = rtoken.balanceOf(storage_credited)
    amount = rstorage.creditOf(storage_credited)
    rstorage.withdraw({"from": storage_credited})
    assert rtoken.balanceOf(storage_credited) - before == amount > 0


def test_storage_withdraw_reentry_reverts(rstorage, rtoken, storage_credited, reverts):
    rtoken.arm(rstorage, rstorage.withdraw.encode_input(), {"from": storage_credited})
    with reverts(GUARD):
        rstorage.withdraw({"from": storage_credited})


@pytest.mark.parametrize("batch", [False, True], ids=["openDeal", "openDeals"])
def test_storage_open_reentry_reverts(rstorage, rdeals, rtoken, renter, providers, reverts, batch):
    terms = rdeals.terms(providers[0])
    rtoken.arm(rstorage, rstorage.openDeal.encode_input(terms), {"from": renter})
    with reverts(GUARD):
        if batch:
            rstorage.openDeals([terms], {"from": renter})
        else:
            rstorage.openDeal(terms, {"from": renter})


def test_storage_slash_reentry_through_the_registry_reverts(
    rstorage, rdeals, rtoken, renter, providers, reverts
):
    """The registry pays the slash in the token; its hook re-enters the escrow."""
    deal_id = rdeals.open_active(renter, providers[0])
    rdeals.sleep_epochs(deal_id, 1)
    rdeals.challenge(deal_id, renter)
    sleep_past(rstorage.getChallenge(deal_id).dict()["respondBy"])
    rtoken.arm(rstorage, rstorage.settleMany.encode_input([deal_id]), {"from": renter})
    with reverts(GUARD):
        rstorage.slashMissed(deal_id, {"from": renter})
    rtoken.arm(rtoken, rtoken.armed.encode_input(), {"from": renter})  # harmless call
    rstorage.slashMissed(deal_id, {"from": renter})
    assert rstorage.getDeal(deal_id).dict()["status"] == 5  # Slashed


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
