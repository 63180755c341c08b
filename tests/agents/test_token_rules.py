"""The token commands' rules that need no chain: amounts, recipients, where a faucet is."""

from __future__ import annotations

import pytest
from eth_account import Account

from agents.errors import UserError
from agents.token import Sale, check_recipient, faucet_rule
from agents.units import fmt_eth, parse_tokens

TOKEN = 10**18


@pytest.mark.parametrize(
    ("text", "wei"),
    [
        ("1.5", 15 * TOKEN // 10),
        ("1.5 DCT", 15 * TOKEN // 10),
        ("1.5dct", 15 * TOKEN // 10),
        ("1500000000000000000wei", 15 * TOKEN // 10),
        ("7 wei", 7),
        ("0.000000000000000001", 1),
    ],
)
def test_amounts_parse_as_tokens_dct_or_wei(text, wei):
    assert parse_tokens(text) == wei


@pytest.mark.parametrize("text", ["1.5 ETH", "1.5wei", "-1", "abc", "0.0000000000000000001"])
def test_amounts_that_are_not_tokens_are_refused(text):
    with pytest.raises(UserError):
        parse_tokens(text)


@pytest.mark.parametrize("chain_id", [1337, 31337])
def test_faucet_is_allowed_on_dev_chains(chain_id):
    faucet_rule(chain_id)


@pytest.mark.parametrize("chain_id", [1, 10, 8453, 11155111])
def test_faucet_is_refused_elsewhere_and_points_to_buy(chain_id):
    with pytest.raises(UserError, match=rf"chain {chain_id} has no faucet.*dcloud token buy"):
        faucet_rule(chain_id)


def test_recipient_in_lower_case_is_checksummed():
    address = Account.create().address
    assert check_recipient(address.lower(), ours={}) == address


def test_recipient_with_a_broken_checksum_is_refused():
    address = Account.create().address
    i = next(i for i, c in enumerate(address[2:], 2) if c.isalpha())
    typo = address[:i] + address[i].swapcase() + address[i + 1 :]
    with pytest.raises(UserError, match="fails its checksum"):
        check_recipient(typo, ours={})


def test_recipient_that_is_our_contract_is_refused():
    address = Account.create().address
    with pytest.raises(UserError, match="dcloud's JobEscrow contract"):
        check_recipient(address, ours={address: "JobEscrow"})


def test_sale_cost_rounds_up_to_buy_at_least_the_amount():
    sale = Sale(address="0x0", price=10**15, available=10**30, ends_at=0)
    assert sale.cost(15 * TOKEN // 10) == 15 * 10**14
    assert sale.bought_with(sale.cost(1)) >= 1
    assert fmt_eth(sale.cost(15 * TOKEN // 10)) == "0.0015 ETH"
