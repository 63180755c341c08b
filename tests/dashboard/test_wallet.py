"""Connecting a dev account, its balance, and the devnet faucet."""

from __future__ import annotations

import re

import httpx
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
    # the CLI's sentence (protocol/reverts), not the error's name
    expect(tab.page.locator("#notice")).to_contain_text("tokens once per cooldown")
    expect(tab.page.locator("#notice")).to_contain_text(
        re.compile(r"try again at \S+.* local time \(in ")
    )


def test_connection_survives_a_reload(tab, network):
    tab.goto("/jobs")
    address = tab.connect_dev_account(6)
    tab.page.reload()
    expect(tab.page.locator("#wallet-account")).to_have_text(address)
    expect(tab.page.locator("#dev-account")).to_have_value(address)


# A stand-in for a browser wallet extension: an EIP-1193 `window.ethereum` that holds one
# account of the devnet and forwards everything else to the node (as a wallet would).
FAKE_WALLET = """
(() => {
  const account = "%s";
  let id = 0;
  window.ethereum = {
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      const res = await fetch("/dashboard/api/rpc", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params || [] }),
      });
      const data = await res.json();
      if (data.error) throw Object.assign(new Error(data.error.message), data.error);
      return data.result;
    },
    on() {},
  };
})();
"""


def test_an_injected_browser_wallet_connects_and_sends(tab, network):
    address = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"  # anvil dev account #5
    tab.page.add_init_script(FAKE_WALLET % address)
    page = tab.goto("/jobs")
    page.get_by_role("button", name="Connect browser wallet").click()
    expect(page.locator("#wallet-account")).to_have_text(address)
    expect(page.locator("#wallet-mode")).to_have_text("browser wallet")
    expect(page.locator("#wallet-balance")).to_contain_text("DCT")
    page.get_by_role("button", name="Get test tokens").click()
    sent_or_cooling = re.compile("faucet sent tokens|once per cooldown")
    expect(page.locator("#notice")).to_contain_text(sent_or_cooling)
    page.reload()
    expect(page.locator("#wallet-account")).to_have_text(address)


def test_the_chain_proxy_forwards_only_whitelisted_methods(network):
    url = f"{network.url}/dashboard/api/rpc"
    ok = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).json()
    assert ok["result"] == hex(31337)
    for method in ("evm_increaseTime", "anvil_setBalance", "eth_sendRawTransaction"):
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 2, "method": method}).json()
        assert refused["error"]["code"] == -32601
    batch = [
        {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 4, "method": "anvil_mine"},
    ]
    answers = httpx.post(url, json=batch).json()
    assert [("error" in a) for a in answers] == [True, True]  # nothing of it was forwarded
