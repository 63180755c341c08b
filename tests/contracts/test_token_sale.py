"""TokenSale: fixed-price purchases, change refunds, cap, end, proceeds and unsold tokens."""

import pytest
from brownie import TokenSale, chain
from conftest import PARAMS, TOKEN

PRICE = PARAMS.sale_price_wei  # wei per whole token; above 1 ETH so change can arise


def quote(value: int, price: int = PRICE) -> tuple[int, int]:
    """Token units bought and wei charged for `value` wei, as TokenSale.buy rounds."""
    amount = value * TOKEN // price
    cost = (amount * price + TOKEN - 1) // TOKEN
    return amount, cost


@pytest.fixture(scope="module")
def small_sale(token, deployer):
    """Cap 5 tokens, holding only 3, price 0.001 ETH per token, open 1 000 s."""
    sale = TokenSale.deploy(token, 10**15, 5 * TOKEN, chain.time() + 1_000, {"from": deployer})
    token.transfer(sale, 3 * TOKEN, {"from": deployer})
    return sale


def test_sale_parameters(sale, token):
    assert sale.token() == token
    assert sale.price() == PRICE
    assert sale.cap() == PARAMS.sale_cap
    assert sale.sold() == 0
    assert token.balanceOf(sale) == PARAMS.sale_cap


def test_buy_transfers_tokens_at_price(sale, token, outsider):
    value = 10**18
    amount, cost = quote(value)
    before = token.balanceOf(outsider)
    tx = sale.buy({"from": outsider, "value": value})
    assert token.balanceOf(outsider) - before == amount
    assert sale.sold() == amount
    assert tx.events["TokensPurchased"]["amount"] == amount
    assert tx.events["TokensPurchased"]["value"] == cost


def test_buy_refunds_change_below_one_unit(sale, outsider):
    value = 10**18
    _, cost = quote(value)
    assert 0 < cost < value  # this value does leave change
    eth_before = outsider.balance()
    sale.buy({"from": outsider, "value": value})
    assert eth_before - outsider.balance() == cost  # gas price is 0 on the dev chains
    assert sale.balance() == cost


def test_buy_with_whole_tokens_worth_keeps_everything(sale, token, outsider):
    eth_before = outsider.balance()
    sale.buy({"from": outsider, "value": 2 * PRICE})
    assert token.balanceOf(outsider) >= 2 * TOKEN
    assert sale.sold() == 2 * TOKEN
    assert eth_before - outsider.balance() == 2 * PRICE
    assert sale.balance() == 2 * PRICE


def test_buy_with_no_value_reverts(sale, outsider, reverts):
    with reverts("SaleZeroPurchase", 0):
        sale.buy({"from": outsider, "value": 0})


def test_buy_with_less_than_one_unit_reverts(sale, outsider, reverts):
    with reverts("SaleZeroPurchase", 1):
        sale.buy({"from": outsider, "value": 1})


def test_buy_beyond_cap_reverts(small_sale, outsider, reverts):
    with reverts("SaleCapExceeded", 6 * TOKEN, 5 * TOKEN):
        small_sale.buy({"from": outsider, "value": 6 * 10**15})


def test_buy_more_than_sale_holds_reverts(small_sale, outsider, reverts):
    with reverts("SaleInsufficientTokens", 4 * TOKEN, 3 * TOKEN):
        small_sale.buy({"from": outsider, "value": 4 * 10**15})


def test_cap_counts_tokens_already_sold(small_sale, token, deployer, outsider, reverts):
    token.transfer(small_sale, 10 * TOKEN, {"from": deployer})
    small_sale.buy({"from": outsider, "value": 4 * 10**15})
    with reverts("SaleCapExceeded", 2 * TOKEN, 1 * TOKEN):
        small_sale.buy({"from": outsider, "value": 2 * 10**15})


def test_buy_after_end_reverts(sale, outsider, reverts):
    chain.sleep(sale.endsAt() - chain.time() + 10)
    with reverts("SaleEnded", sale.endsAt()):
        sale.buy({"from": outsider, "value": PRICE})


def test_withdraw_proceeds_sends_all_eth_to_given_address(sale, deployer, outsider, renter):
    sale.buy({"from": renter, "value": 3 * PRICE})
    before = outsider.balance()
    tx = sale.withdrawProceeds(outsider, {"from": deployer})
    assert outsider.balance() - before == 3 * PRICE
    assert sale.balance() == 0
    assert tx.events["ProceedsWithdrawn"]["value"] == 3 * PRICE


def test_reclaim_unsold_before_end_reverts(sale, deployer, reverts):
    with reverts("SaleNotEnded", sale.endsAt()):
        sale.reclaimUnsold(deployer, {"from": deployer})


def test_reclaim_unsold_after_end_returns_every_token(sale, token, deployer, outsider):
    sale.buy({"from": outsider, "value": PRICE})
    held = token.balanceOf(sale)
    chain.sleep(sale.endsAt() - chain.time() + 10)
    before = token.balanceOf(deployer)
    tx = sale.reclaimUnsold(deployer, {"from": deployer})
    assert token.balanceOf(deployer) - before == held == PARAMS.sale_cap - TOKEN
    assert token.balanceOf(sale) == 0
    assert tx.events["UnsoldReclaimed"]["amount"] == held


def test_deploy_with_zero_price_reverts(token, deployer, reverts):
    with reverts("SaleZeroPrice"):
        TokenSale.deploy(token, 0, TOKEN, chain.time() + 100, {"from": deployer})
