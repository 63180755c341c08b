"""`dcloud token` and the money-back lines of `dcloud job` on a real anvil chain.

One anvil with the contracts deployed (sale, faucet, escrows) for the module; each test
makes fresh renters (new keys, some ETH for gas) with `dcloud job init` pinned to the
deployments file, and drives the real `dcloud` command in a subprocess, as a person would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from agents.devnet.network import PASSWORD, dev_account
from agents.storage.escrow import DealTerms, StorageChain, shard_key
from agents.units import fmt_tokens, parse_tokens
from agents.wallet import Wallet
from protocol.assignments import unsigned
from protocol.deployments import connect, load_deployment
from protocol.escrow import Escrow, JobStatus
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
ETH = 10**18
PROVIDER = 3  # a dev account (holds tokens at deploy) that stakes and then never shows


@dataclass
class Chain:
    url: str
    deployments: Path
    w3: Web3
    escrow: Escrow


@dataclass
class Person:
    account: LocalAccount
    home: Path

    @property
    def address(self) -> str:
        return str(self.account.address)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    with running_chain("anvil") as url:
        out = root / "deployments.json"
        deploy_contracts(CHAINS["anvil"]["network"], out)
        w3 = connect(url)
        yield Chain(url, out, w3, Escrow(w3, load_deployment(w3.eth.chain_id, path=out)))


def dcloud(*args: str, key: LocalAccount | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DCLOUD_PASSWORD=PASSWORD, COLUMNS="400")
    if key is not None:
        env["DCLOUD_PRIVATE_KEY"] = key.key.hex()
    return subprocess.run(
        [sys.executable, "-m", "agents", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit status 1 and one plain `error:` line, no traceback."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def renter(chain: Chain, tmp_path: Path, *, eth: int = ETH, name: str = "renter") -> Person:
    """A fresh renter (no tokens) with `eth` wei for gas, set up by `dcloud job init`."""
    account = Account.create()
    if eth:
        tx = {"from": chain.w3.eth.accounts[9], "to": account.address, "value": eth}
        chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction(tx))
    home = tmp_path / name
    ok(
        dcloud(
            "job",
            "init",
            "--home",
            str(home),
            "--marketplace",
            "http://127.0.0.1:9",  # never asked: the deployments file is pinned
            "--rpc",
            chain.url,
            "--deployments",
            str(chain.deployments),
            key=account,
        )
    )
    return Person(account, home)


def token(person: Person, *args: str) -> subprocess.CompletedProcess[str]:
    return dcloud("token", *args, "--home", str(person.home))


def wallet_of(chain: Chain, account: LocalAccount) -> Wallet:
    wallet = Wallet(chain.w3, account)
    wallet.learn_errors(chain.escrow.abis())
    return wallet


def give_tokens(chain: Chain, to: str, amount: int) -> None:
    wallet_of(chain, dev_account(9)).transact(chain.escrow.token.functions.transfer(to, amount))


def fund_job(chain: Chain, person: Person, *, price: int, provider: str | None) -> int:
    """Fund a single-replica job on chain from `person`, naming `provider` (or open)."""
    wallet = wallet_of(chain, person.account)
    escrow = chain.escrow
    wallet.transact(escrow.token.functions.approve(escrow.address, price))
    deadline = escrow.now() + escrow.windows().accept + 60
    assignment = unsigned([provider] if provider else [])
    receipt = wallet.transact(
        escrow.contract.functions.fund(b"\x01" * 32, 0, price, deadline, 1, assignment.as_arg())
    )
    funded = escrow.contract.events.JobFunded().process_receipt(receipt, errors=DISCARD)
    return int(funded[0]["args"]["jobId"])


def added(stdout: str) -> int:
    found = re.search(r"= ([0-9.]+) DCT added to your wallet", stdout)
    assert found, stdout
    return parse_tokens(found.group(1))


# ---------------------------------------------------------------------------- faucet


def test_faucet_gives_the_drip_and_balance_shows_it(chain, tmp_path):
    me = renter(chain, tmp_path)
    drip = chain.escrow.deployment.parameters["faucet_drip"]
    out = ok(token(me, "faucet"))
    assert f"the faucet sent {drip // TOKEN} DCT to {me.address}" in out
    assert chain.escrow.balance_of(me.address) == drip
    shown = ok(token(me, "balance"))
    assert re.search(rf"wallet\s+{drip // TOKEN} DCT", shown), shown
    assert re.search(r"JobEscrow\s+0 DCT credit", shown), shown


def test_faucet_gives_a_key_with_no_eth_gas_money_too(chain, tmp_path):
    me = renter(chain, tmp_path, eth=0)
    ok(token(me, "faucet"))
    assert chain.escrow.balance_of(me.address) == chain.escrow.deployment.parameters["faucet_drip"]
    assert chain.w3.eth.get_balance(me.address) > 0


def test_a_transaction_without_gas_money_is_one_clear_line(chain, tmp_path):
    me = renter(chain, tmp_path, eth=0)
    give_tokens(chain, me.address, TOKEN)
    line = one_line_error(token(me, "transfer", dev_account(9).address, "0.5", "--yes"))
    assert "has no ETH to pay for the transaction's gas" in line
    assert chain.escrow.balance_of(me.address) == TOKEN


def test_faucet_again_within_its_cooldown_says_when_it_can_be_used(chain, tmp_path):
    me = renter(chain, tmp_path)
    ok(token(me, "faucet"))
    line = one_line_error(token(me, "faucet"))
    assert "can be used again in" in line
    assert chain.escrow.balance_of(me.address) == chain.escrow.deployment.parameters["faucet_drip"]


# ---------------------------------------------------------------------------- buy


def test_buy_shows_price_and_cost_then_buys_at_that_price(chain, tmp_path):
    me = renter(chain, tmp_path)
    price = chain.escrow.deployment.parameters["sale_price_wei"]  # 0.001 ETH per token
    eth_before = chain.w3.eth.get_balance(me.address)
    out = ok(token(me, "buy", "1.5 DCT", "--yes"))
    cost = 15 * price // 10
    assert "0.001 ETH per DCT" in out
    assert "1.5 DCT cost 0.0015 ETH plus gas" in out
    assert "bought 1.5 DCT for 0.0015 ETH" in out
    assert chain.escrow.balance_of(me.address) == 15 * TOKEN // 10
    assert chain.w3.eth.get_balance(me.address) <= eth_before - cost


def test_buy_without_the_eth_is_refused_before_paying(chain, tmp_path):
    me = renter(chain, tmp_path, eth=ETH // 100)  # 0.01 ETH; 100 tokens cost 0.1 ETH
    line = one_line_error(token(me, "buy", "100"))
    assert "costs 0.1 ETH" in line and "send ETH to it first" in line
    assert chain.escrow.balance_of(me.address) == 0


def test_buy_more_than_the_sale_holds_is_refused(chain, tmp_path):
    me = renter(chain, tmp_path)
    line = one_line_error(token(me, "buy", "200000000", "--yes"))
    assert "the token sale has only" in line and "left" in line


# ---------------------------------------------------------------------------- transfer


def test_transfer_sends_the_exact_amount_to_a_checked_address(chain, tmp_path):
    me = renter(chain, tmp_path)
    give_tokens(chain, me.address, 5 * TOKEN)
    to = Account.create().address
    out = ok(token(me, "transfer", to.lower(), "1500000000000000000wei", "--yes"))
    assert f"sent 1.5 DCT to {to}" in out
    assert chain.escrow.balance_of(to) == 15 * TOKEN // 10
    assert chain.escrow.balance_of(me.address) == 35 * TOKEN // 10


def _bad_checksum(address: str) -> str:
    """`address` with the case of its first letter flipped: the checksum no longer holds."""
    i = next(i for i, c in enumerate(address[2:], 2) if c.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1 :]


@pytest.mark.parametrize(
    ("to", "amount", "says"),
    [
        ("bad-checksum", "1", "fails its checksum"),
        ("0x" + "00" * 20, "1", "zero address"),
        ("JobEscrow", "1", "dcloud's JobEscrow contract"),
        ("0x1234", "1", "is not an address"),
        ("fresh", "6", "you hold 5 DCT, less than the 6 DCT to send"),
        ("fresh", "1.5 dollars", "is not an amount of tokens"),
    ],
)
def test_transfer_refuses_mistakes_with_one_line_and_sends_nothing(
    chain, tmp_path, to, amount, says
):
    me = renter(chain, tmp_path)
    give_tokens(chain, me.address, 5 * TOKEN)
    fresh = Account.create().address
    address = {
        "bad-checksum": _bad_checksum(fresh),
        "JobEscrow": chain.escrow.address,
        "fresh": fresh,
    }.get(to, to)
    line = one_line_error(token(me, "transfer", address, amount, "--yes"))
    assert says in line
    assert chain.escrow.balance_of(me.address) == 5 * TOKEN


# ---------------------------------------------------------------------------- withdraw


def test_withdraw_pulls_refunds_from_both_escrows_and_says_how_much_from_each(chain, tmp_path):
    me = renter(chain, tmp_path)
    give_tokens(chain, me.address, 10 * TOKEN)
    job_id = fund_job(chain, me, price=2 * TOKEN, provider=None)
    wallet_of(chain, me.account).transact(chain.escrow.contract.functions.cancel(job_id))
    storage = StorageChain.connect(
        chain.w3, chain.escrow.deployment, me.account, wallet=wallet_of(chain, me.account)
    )
    terms = DealTerms.for_shard(
        b"shard bytes",
        node=dev_account(4).address,
        shard_id=shard_key("ab"),
        price_per_epoch=TOKEN // 4,
        epochs=4,
        epoch_length=3600,
    )
    storage.cancel(storage.open_deal(terms))
    assert chain.escrow.balance_of(me.address) == 7 * TOKEN
    out = ok(token(me, "withdraw"))
    assert "withdrew 2 DCT from JobEscrow + 1 DCT from StorageEscrow = 3 DCT" in out
    assert chain.escrow.balance_of(me.address) == 10 * TOKEN
    assert "nothing to withdraw" in ok(token(me, "withdraw"))


# ---------------------------------------------------------------------------- job money back


def test_cancel_reports_the_refund_and_the_wallet_grows_by_it(chain, tmp_path):
    me = renter(chain, tmp_path)
    give_tokens(chain, me.address, 10 * TOKEN)
    job_id = fund_job(chain, me, price=3 * TOKEN, provider=None)
    before = chain.escrow.balance_of(me.address)
    out = ok(dcloud("job", "cancel", str(job_id), "--home", str(me.home)))
    assert "deposit refund 3 DCT (credited by JobEscrow, withdrawn)" in out
    assert chain.escrow.job(job_id).status == JobStatus.CANCELLED
    assert added(out) == chain.escrow.balance_of(me.address) - before == 3 * TOKEN


def test_claim_no_show_reports_refund_and_slashed_collateral_equal_to_the_balance_rise(
    chain, tmp_path
):
    escrow = chain.escrow
    me = renter(chain, tmp_path)
    give_tokens(chain, me.address, 10 * TOKEN)
    provider = wallet_of(chain, dev_account(PROVIDER))
    stake = escrow.deployment.parameters["min_stake"]
    provider.transact(escrow.token.functions.approve(escrow.registry.address, stake))
    provider.transact(escrow.registry.functions.stake(stake))
    price = 3 * TOKEN
    job_id = fund_job(chain, me, price=price, provider=provider.address)
    provider.transact(escrow.contract.functions.accept(job_id))
    collateral = escrow.job(job_id).collateral
    # earlier credit waiting in JobEscrow: withdrawn with the refund, and said so
    earlier = fund_job(chain, me, price=TOKEN, provider=None)
    wallet_of(chain, me.account).transact(escrow.contract.functions.cancel(earlier))
    # past the deadline with nothing committed: a no-show
    ahead = escrow.job(job_id).deadline - escrow.now() + 5
    chain.w3.provider.make_request("evm_increaseTime", [ahead])
    chain.w3.provider.make_request("evm_mine", [])
    before = escrow.balance_of(me.address)

    out = ok(dcloud("job", "claim-no-show", str(job_id), "--home", str(me.home)))

    rise = escrow.balance_of(me.address) - before
    treasury_share = collateral * escrow.deployment.parameters["slash_treasury_bps"] // 10_000
    slashed = collateral - treasury_share
    assert rise == price + TOKEN + slashed
    assert added(out) == rise
    assert f"deposit refund {fmt_tokens(price)} (credited by JobEscrow, withdrawn)" in out
    assert f"earlier JobEscrow credit {fmt_tokens(TOKEN)}" in out
    assert (
        f"slashed collateral {fmt_tokens(slashed)} of provider {provider.address} "
        f"(paid directly by ProviderRegistry; the treasury kept {fmt_tokens(treasury_share)})"
    ) in out


# ---------------------------------------------------------------------------- provider key


def test_balance_with_a_provider_key_shows_its_stake(chain, tmp_path):
    account = dev_account(5)
    home = tmp_path / "provider"
    ok(
        dcloud(
            "provider",
            "init",
            "--home",
            str(home),
            "--location",
            "Oslo",
            "--rpc",
            chain.url,
            "--deployments",
            str(chain.deployments),
            "--lat",
            "50.11",
            "--lon",
            "8.68",
            key=account,
        )
    )
    ok(dcloud("provider", "stake", "100", "--home", str(home)))
    out = ok(dcloud("token", "balance", "--provider-home", str(home)))
    assert account.address in out
    assert re.search(r"stake\s+100 DCT \(locked 0 DCT, unbonding 0 DCT\)", out), out
