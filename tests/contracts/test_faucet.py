"""DevFaucet: one drip per address per cooldown, only from what it holds."""

import pytest
from brownie import DevFaucet, chain
from conftest import PARAMS, TOKEN


def test_drip_sends_drip_amount(faucet, token, outsider):
    before = token.balanceOf(outsider)
    tx = faucet.drip(outsider, {"from": outsider})
    assert token.balanceOf(outsider) - before == PARAMS.faucet_drip == faucet.dripAmount()
    assert faucet.lastDrip(outsider) == tx.timestamp
    assert tx.events["Dripped"]["amount"] == PARAMS.faucet_drip


def test_anyone_may_request_a_drip_for_another_address(faucet, token, renter, outsider):
    before = token.balanceOf(renter)
    faucet.drip(renter, {"from": outsider})
    assert token.balanceOf(renter) - before == PARAMS.faucet_drip


def test_second_drip_within_cooldown_reverts(faucet, outsider, reverts):
    tx = faucet.drip(outsider, {"from": outsider})
    with reverts("FaucetCoolingDown", outsider.address, tx.timestamp + PARAMS.faucet_cooldown):
        faucet.drip(outsider, {"from": outsider})


def test_drip_after_cooldown_succeeds(faucet, token, outsider):
    faucet.drip(outsider, {"from": outsider})
    chain.sleep(PARAMS.faucet_cooldown + 2)
    before = token.balanceOf(outsider)
    faucet.drip(outsider, {"from": outsider})
    assert token.balanceOf(outsider) - before == PARAMS.faucet_drip


def test_cooldown_is_per_recipient(faucet, token, renter, outsider):
    faucet.drip(outsider, {"from": outsider})
    before = token.balanceOf(renter)
    faucet.drip(renter, {"from": outsider})
    assert token.balanceOf(renter) - before == PARAMS.faucet_drip


@pytest.fixture(scope="module")
def small_faucet(token, deployer):
    faucet = DevFaucet.deploy(token, 10 * TOKEN, 60, {"from": deployer})
    token.transfer(faucet, 15 * TOKEN, {"from": deployer})
    return faucet


def test_drip_from_faucet_holding_less_than_a_drip_reverts(small_faucet, renter, outsider, reverts):
    small_faucet.drip(renter, {"from": renter})
    with reverts("FaucetEmpty", 5 * TOKEN, 10 * TOKEN):
        small_faucet.drip(outsider, {"from": outsider})


def test_faucet_gives_only_tokens_it_was_sent(small_faucet, token, renter, outsider):
    small_faucet.drip(renter, {"from": renter})
    assert token.balanceOf(small_faucet) == 5 * TOKEN
