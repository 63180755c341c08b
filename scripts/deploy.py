"""Deploy and wire every dcloud contract: `brownie run deploy [--network NAME]`.

Writes the addresses, ABIs and parameters, keyed by chain id, to the deployments
file (``deployments/local.json``, or ``$DCLOUD_DEPLOYMENTS``) that the marketplace
and agents read through ``protocol.deployments``. On local chains (chain id 1337
or 31337) it also deploys the dev faucet and funds the chain's dev accounts.

Parameters come from the environment with local-friendly defaults, e.g.
``DCLOUD_CHALLENGE_WINDOW=60 brownie run deploy``; see ``DeployParams``.
``DCLOUD_STORAGE_AUDITORS`` (comma-separated addresses) get the storage escrow's
AUDITOR_ROLE; on local chains the deployer gets it when that is not set.
``DCLOUD_LEASE_PROBERS`` (comma-separated addresses) get the lease escrow's PROBER_ROLE
(may attest that a leased service came up); on local chains the dev matcher's address
(``protocol.assignments.DEV_MATCHER``, the marketplace's dev key) gets it when that is not set.
``DCLOUD_LEASE_WATCHERS`` (comma-separated) get its WATCHER_ROLE (their signed down
reports count toward the quorum, ``DCLOUD_LEASE_QUORUM``, default 2) and
``DCLOUD_LEASE_FAILOVER`` its FAILOVER_ROLE (may move a lease down past the grace period,
``DCLOUD_LEASE_GRACE``, to another provider within the renter's rate cap); on local chains
the dev matcher's address gets both when they are not set, and the dev watcher
(``protocol.leases.DEV_WATCHER``) is the second watcher, so the default quorum of 2 can be met.
``DCLOUD_MATCHER`` is the address of the marketplace's matcher key, which signs the
providers of replicated jobs and the verifiers of disputes; when unset, local chains use
the well-known dev matcher (``protocol.assignments.DEV_MATCHER``) and others the deployer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from brownie import (
    ComputeToken,
    DevFaucet,
    JobEscrow,
    LeaseEscrow,
    ProviderRegistry,
    StorageEscrow,
    TokenSale,
    accounts,
    chain,
    network,
    web3,
)

from protocol.assignments import DEV_MATCHER
from protocol.leases import DEV_WATCHER

LOCAL_CHAIN_IDS = (1337, 31337)
TOKEN = 10**18
DEV_MATCHER_ETH = 10 * 10**18  # local chains: the dev matcher pays gas as the lease prober
DEFAULT_DEPLOYMENTS = Path(__file__).resolve().parent.parent / "deployments" / "local.json"


@dataclasses.dataclass(frozen=True)
class DeployParams:
    """Deployment parameters; each can be set as DCLOUD_<NAME> in the environment."""

    supply: int = 1_000_000_000 * TOKEN
    sale_price_wei: int = 10**15  # wei per whole token
    sale_cap: int = 100_000_000 * TOKEN
    sale_days: int = 30
    min_stake: int = 100 * TOKEN
    unbonding_delay: int = 24 * 3600
    slash_treasury_bps: int = 2_000
    fee_bps: int = 200
    accept_window: int = 600
    reveal_window: int = 600
    challenge_window: int = 3600
    collateral_bps: int = 10_000
    storage_accept_window: int = 3600
    storage_response_window: int = 600
    storage_collateral_bps: int = 10_000
    lease_accept_window: int = 600
    lease_serve_window: int = 600
    lease_collateral_bps: int = 10_000  # of a lease's opening deposit
    lease_quorum: int = 2  # distinct watchers that must sign a lease's down interval
    lease_grace: int = 120  # seconds a service may be down before it is slashed / fails over
    lease_slash_bps: int = 5_000  # of a lease's collateral, slashed to the renter then
    dev_account_tokens: int = 1_000_000 * TOKEN
    faucet_tokens: int = 10_000_000 * TOKEN
    faucet_drip: int = 10_000 * TOKEN
    faucet_cooldown: int = 60

    @classmethod
    def from_env(cls) -> DeployParams:
        values: dict[str, int] = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(f"DCLOUD_{field.name.upper()}")
            if raw is not None:
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise SystemExit(
                        f"DCLOUD_{field.name.upper()}={raw!r} is not an integer; set a whole number"
                    ) from None
        return cls(**values)


def deploy_all(
    deployer: Any, *, params: DeployParams, treasury: Any = None, matcher: Any = None
) -> dict[str, Any]:
    """Deploy and wire the contracts from `deployer`; return them by name.

    `matcher` (default: the deployer) is the key whose signature assigns providers to
    replicated jobs and verifiers to disputes.
    """
    treasury = treasury or deployer
    matcher = matcher or deployer
    tx = {"from": deployer}
    token = ComputeToken.deploy(params.supply, deployer, tx)
    sale = TokenSale.deploy(
        token, params.sale_price_wei, params.sale_cap, chain.time() + params.sale_days * 86400, tx
    )
    token.transfer(sale, params.sale_cap, tx)
    registry = ProviderRegistry.deploy(
        token, params.min_stake, params.unbonding_delay, treasury, params.slash_treasury_bps, tx
    )
    windows = [params.accept_window, params.reveal_window, params.challenge_window]
    escrow = JobEscrow.deploy(
        token, registry, treasury, params.fee_bps, windows, params.collateral_bps, matcher, tx
    )
    registry.grantRole(registry.SLASHER_ROLE(), escrow, tx)
    storage = StorageEscrow.deploy(
        token,
        registry,
        treasury,
        params.fee_bps,
        [params.storage_accept_window, params.storage_response_window],
        params.storage_collateral_bps,
        tx,
    )
    registry.grantRole(registry.SLASHER_ROLE(), storage, tx)
    leases = LeaseEscrow.deploy(
        token,
        registry,
        treasury,
        params.fee_bps,
        [params.lease_accept_window, params.lease_serve_window],
        params.lease_collateral_bps,
        tx,
    )
    registry.grantRole(registry.SLASHER_ROLE(), leases, tx)
    rules = (params.lease_quorum, params.lease_grace, params.lease_slash_bps)
    if tuple(int(v) for v in leases.watchRules()) != rules:
        leases.setWatchRules(*rules, tx)
    return {
        "ComputeToken": token,
        "TokenSale": sale,
        "ProviderRegistry": registry,
        "JobEscrow": escrow,
        "StorageEscrow": storage,
        "LeaseEscrow": leases,
    }


def grant_auditors(storage: Any, deployer: Any, auditors: list[str]) -> None:
    """Give AUDITOR_ROLE on the storage escrow to `auditors` (may challenge any deal)."""
    role = storage.AUDITOR_ROLE()
    for auditor in auditors:
        storage.grantRole(role, auditor, {"from": deployer})


def _auditors(deployer: Any) -> list[str]:
    """``$DCLOUD_STORAGE_AUDITORS`` (comma-separated); on local chains the deployer by default."""
    raw = os.environ.get("DCLOUD_STORAGE_AUDITORS")
    if raw is None:
        return [deployer.address] if chain.id in LOCAL_CHAIN_IDS else []
    return [a.strip() for a in raw.split(",") if a.strip()]


def grant_probers(leases: Any, deployer: Any, probers: list[str]) -> None:
    """Give PROBER_ROLE on the lease escrow to `probers` (may report a service serving)."""
    role = leases.PROBER_ROLE()
    for prober in probers:
        leases.grantRole(role, prober, {"from": deployer})


def _probers() -> list[str]:
    """``$DCLOUD_LEASE_PROBERS`` (comma-separated); on local chains the dev matcher's key."""
    raw = os.environ.get("DCLOUD_LEASE_PROBERS")
    if raw is None:
        return [DEV_MATCHER] if chain.id in LOCAL_CHAIN_IDS else []
    return [a.strip() for a in raw.split(",") if a.strip()]


def grant_watchers(leases: Any, deployer: Any, watchers: list[str], failover: list[str]) -> None:
    """Give WATCHER_ROLE on the lease escrow to `watchers` (their signed down reports count
    toward the quorum) and FAILOVER_ROLE to `failover` (may move a failed lease's deposit
    to another provider within the renter's rate cap)."""
    for role, holders in ((leases.WATCHER_ROLE(), watchers), (leases.FAILOVER_ROLE(), failover)):
        for holder in holders:
            leases.grantRole(role, holder, {"from": deployer})


def _addresses(name: str, local_default: list[str]) -> list[str]:
    """``$name`` (comma-separated addresses); on local chains `local_default` when unset."""
    raw = os.environ.get(name)
    if raw is None:
        return local_default if chain.id in LOCAL_CHAIN_IDS else []
    return [a.strip() for a in raw.split(",") if a.strip()]


def fund_dev_accounts(deployer: Any, token: Any, *, params: DeployParams) -> Any:
    """On a local chain: deploy the faucet and give every dev account tokens."""
    tx = {"from": deployer}
    faucet = DevFaucet.deploy(token, params.faucet_drip, params.faucet_cooldown, tx)
    token.transfer(faucet, params.faucet_tokens, tx)
    for account in accounts[1:]:
        token.transfer(account, params.dev_account_tokens, tx)
    return faucet


def write_deployments(contracts: dict[str, Any], *, params: DeployParams, path: Path) -> None:
    """Merge this chain's entry into the deployments file (atomic replace)."""
    chain_id = str(chain.id)
    entry = {
        "chain_id": chain.id,
        "network": network.show_active(),
        "deployed_at_block": min(c.tx.block_number for c in contracts.values() if c.tx),
        "deployed_at": int(time.time()),
        "parameters": dataclasses.asdict(params),
        "contracts": {name: {"address": c.address, "abi": c.abi} for name, c in contracts.items()},
    }
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    data[chain_id] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _deployer() -> Any:
    if chain.id in LOCAL_CHAIN_IDS:
        return accounts[0]
    key = os.environ.get("DCLOUD_DEPLOYER_KEY")
    if not key:
        raise SystemExit(
            f"chain {chain.id} is not a local chain: set DCLOUD_DEPLOYER_KEY to the deployer's "
            "private key (hex) to deploy there"
        )
    return accounts.add(key)


def main() -> None:
    params = DeployParams.from_env()
    deployer = _deployer()
    matcher = os.environ.get("DCLOUD_MATCHER") or (
        DEV_MATCHER if chain.id in LOCAL_CHAIN_IDS else None
    )
    contracts = deploy_all(deployer, params=params, matcher=matcher)
    grant_auditors(contracts["StorageEscrow"], deployer, _auditors(deployer))
    grant_probers(contracts["LeaseEscrow"], deployer, _probers())
    grant_watchers(
        contracts["LeaseEscrow"],
        deployer,
        _addresses("DCLOUD_LEASE_WATCHERS", [DEV_MATCHER, DEV_WATCHER]),
        _addresses("DCLOUD_LEASE_FAILOVER", [DEV_MATCHER]),
    )
    if chain.id in LOCAL_CHAIN_IDS:
        contracts["DevFaucet"] = fund_dev_accounts(
            deployer, contracts["ComputeToken"], params=params
        )
        # the marketplace's dev key sends reportServing as the lease prober: gas money
        if web3.eth.get_balance(DEV_MATCHER) < DEV_MATCHER_ETH // 10:
            deployer.transfer(DEV_MATCHER, DEV_MATCHER_ETH)
    path = Path(os.environ.get("DCLOUD_DEPLOYMENTS", DEFAULT_DEPLOYMENTS))
    write_deployments(contracts, params=params, path=path)
    print(f"dcloud deployed on chain {chain.id} ({network.show_active()}); wrote {path}")
    for name, contract in contracts.items():
        print(f"  {name:17} {contract.address}")
