"""Connecting a dev account, its balance, and the devnet faucet."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.integration


def test_dev_account_connects_and_shows_its_token_balance(tab, network):
    tab.goto("/jobs")
    address = tab.connect_dev_account(3)
    balance = network.contract("ComputeToken").functions.balanceOf(address).call()
    assert balance == 1_000_000 * 10**18
    expect(tab.page.locator("#wallet-balance")).to_have_text("1,000,000 DCT")
    expect(tab.page.locator("#wallet-chain")).to_contain_text("31337")
    tab.screenshot("jobs-empty")


def test_faucet_adds_its_drip_to_the_balance(tab, network):
    tab.goto("/jobs")
    address = tab.connect_dev_account(4)
    tab.page.get_by_role("button", name="Get test tokens").click()
    expect(tab.page.locator("#notice")).to_contain_text("The faucet sent tokens")
    expect(tab.page.locator("#wallet-balance")).to_have_text("1,010,000 DCT")
    token = network.contract("ComputeToken")
    assert token.functions.balanceOf(address).call() == 1_010_000 * 10**18


def test_faucet_cooldown_is_explained(tab, network):
    tab.goto("/jobs")
    tab.connect_dev_account(5)
    button = tab.page.get_by_role("button", name="Get test tokens")
    button.click()
    expect(tab.page.locator("#notice")).to_contain_text("The faucet sent tokens")
    button.click()
    expect(tab.page.locator("#notice")).to_contain_text("FaucetCoolingDown")
    expect(tab.page.locator("#notice")).to_contain_text("try again in")


def test_connection_survives_a_reload(tab, network):
    tab.goto("/jobs")
    address = tab.connect_dev_account(6)
    tab.page.reload()
    expect(tab.page.locator("#wallet-account")).to_have_text(address)
    expect(tab.page.locator("#dev-account")).to_have_value(address)
