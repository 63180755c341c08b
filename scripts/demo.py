"""A job's whole life on the local chain: `tools/brownie run demo --network dcloud-devnet`.

A provider stakes, a renter funds a job naming it, the provider accepts, commits
and reveals a result hash, the renter confirms, the provider withdraws its pay.
Prints each step with its gas and the balances before and after, and checks
that the token supply did not change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from brownie import Contract, accounts, chain, web3
from eth_abi import encode
from eth_utils import keccak

TOKEN = 10**18
DEFAULT_DEPLOYMENTS = Path(__file__).resolve().parent.parent / "deployments" / "local.json"


def _contracts() -> dict[str, Contract]:
    path = Path(os.environ.get("DCLOUD_DEPLOYMENTS", DEFAULT_DEPLOYMENTS))
    entry = json.loads(path.read_text())[str(chain.id)]
    return {
        name: Contract.from_abi(name, c["address"], c["abi"])
        for name, c in entry["contracts"].items()
    }


def _fmt(units: int) -> str:
    return f"{units / TOKEN:,.2f} DCT"


def main() -> None:
    c = _contracts()
    token, registry, escrow = c["ComputeToken"], c["ProviderRegistry"], c["JobEscrow"]
    renter, provider = accounts[1], accounts[2]
    supply = token.totalSupply()
    price = 25 * TOKEN
    (_, _, treasury, fee_bps, *_rest) = escrow.parameters()
    people = {"renter": renter, "provider": provider, "treasury": treasury}

    def holdings(account: object) -> int:  # wallet + escrow credit + stake
        return token.balanceOf(account) + escrow.creditOf(account) + registry.stakeOf(account)[0]

    before = {name: holdings(a) for name, a in people.items()}

    steps: list[tuple[str, int]] = []

    def step(label: str, tx) -> None:
        steps.append((label, tx.gas_used))

    stake = registry.stakeOf(provider)[0]
    if stake < registry.minStake():
        step("provider approves stake", token.approve(registry, 1_000 * TOKEN, {"from": provider}))
        step("provider stakes 1,000 DCT", registry.stake(1_000 * TOKEN, {"from": provider}))
    step("renter approves escrow", token.approve(escrow, price, {"from": renter}))
    spec_hash = keccak(b'{"image": "busybox", "command": ["echo", "hello dcloud"]}')
    tx = escrow.fund(spec_hash, 0, price, chain.time() + 3600, 1, [provider], {"from": renter})
    job_id = tx.events["JobFunded"]["jobId"]
    step(f"renter funds job {job_id} ({_fmt(price)})", tx)
    step("provider accepts (collateral locked)", escrow.accept(job_id, {"from": provider}))
    result_hash, salt = keccak(b"hello dcloud\n"), os.urandom(32)
    commitment = keccak(
        encode(["bytes32", "bytes32", "address"], [result_hash, salt, provider.address])
    )
    step("provider commits result", escrow.commit(job_id, commitment, {"from": provider}))
    step("provider reveals result", escrow.reveal(job_id, result_hash, salt, {"from": provider}))
    step("renter confirms", escrow.confirm(job_id, {"from": renter}))
    step("provider withdraws pay", escrow.withdraw({"from": provider}))

    print(f"\nJob {job_id} on chain {chain.id} (block {web3.eth.block_number}):")
    for label, gas in steps:
        print(f"  {label:42} {gas:>9,} gas")
    print("\nHoldings (wallet + escrow credit + stake):")
    for name, account in people.items():
        after = holdings(account)
        change = _fmt(after - before[name])
        print(f"  {name:9} {_fmt(before[name]):>24} -> {_fmt(after):>24}  ({change})")
    fee = price * fee_bps // 10_000
    print(
        f"\nProvider earned {_fmt(price - fee)}; protocol fee {_fmt(fee)} credited to the treasury."
    )
    assert token.totalSupply() == supply, "token supply changed"
    print(f"Token supply unchanged: {_fmt(supply)}")
