"""A local dcloud network on a running chain: marketplace and provider agents as processes.

Used by ``dcloud devnet``, the integration tests and the end-to-end benchmark, so all
three run the same real programs the same way: every process is a child started by PID
with its log in one folder. Renters use the chain's funded dev keys; providers and storage
nodes use keys of their own (:func:`operator_account`), funded from dev account 0, each
with its own keystore, config, stake and work folder.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import Wei

from agents import config as files
from agents import keys
from agents.devnet.procs import Proc, free_port, python, spawn, wait_http
from agents.errors import AgentError
from agents.provider.config import CONFIG_FILE, ProviderConfig
from agents.provider.runtime import DockerRuntime
from agents.provider.services.runtime import ServiceRuntime
from agents.provider.services.store import ServiceStore
from agents.renter.client import Renter
from agents.wallet import Wallet
from protocol.deployments import connect, load_for
from protocol.escrow import Escrow

logger = logging.getLogger(__name__)

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
PASSWORD = "devnet-only-password"
TOKEN = 10**18
DEFAULT_IMAGES = ("dcloud/busybox:1", "dcloud/python:3.11")


def dev_account(index: int, mnemonic: str = ANVIL_MNEMONIC) -> LocalAccount:
    """The chain's funded dev account `index` (anvil's default mnemonic unless given).

    Dev accounts are the renters' keys: the chain unlocks them and the dashboard offers
    them as "dev account #N".
    """
    Account.enable_unaudited_hdwallet_features()
    acct: LocalAccount = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    return acct


def operator_account(index: int, mnemonic: str = ANVIL_MNEMONIC) -> LocalAccount:
    """Provider or storage-node key `index`: from another branch of the same mnemonic, so
    it is never one of the chain's unlocked dev accounts, and a renter picking a dev
    account in the dashboard can never act as a provider. :meth:`Network.fund` gives it
    gas money and tokens."""
    Account.enable_unaudited_hdwallet_features()
    acct: LocalAccount = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/1'/0/{index}")
    return acct


@dataclass
class ProviderSpec:
    name: str
    key_index: int
    lat: float
    lon: float
    region: str | None = None
    cpu: float = 2.0
    memory_mb: int = 2048
    disk_mb: int = 1024
    price_wei: int = 10**12
    images: tuple[str, ...] = DEFAULT_IMAGES
    fault: str | None = None
    stake_tokens: int = 1000


@dataclass
class Provider:
    spec: ProviderSpec
    home: Path
    address: str
    port: int
    proc: Proc | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Network:
    root: Path
    rpc_url: str
    deployments: Path
    mnemonic: str = ANVIL_MNEMONIC
    heartbeat_s: float = 1.0
    poll_s: float = 0.05
    offline_after_s: float = 4.0
    probe_s: float = 1.0  # the prober's interval: down time is seen within it
    market_port: int = 0
    market_env: dict[str, str] = field(default_factory=dict)  # more DCLOUD_* settings
    market: Proc | None = None
    providers: list[Provider] = field(default_factory=list)
    _renters: dict[int, Renter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = self.root / "logs"
        self.market_port = self.market_port or free_port()
        w3 = connect(self.rpc_url)
        self.escrow = Escrow(w3, load_for(w3, path=self.deployments))

    @property
    def market_url(self) -> str:
        return f"http://127.0.0.1:{self.market_port}"

    # ------------------------------------------------------------------ marketplace

    def start_marketplace(self) -> None:
        env = {
            "DCLOUD_DATABASE_URL": f"sqlite:///{self.root / 'marketplace.db'}",
            "DCLOUD_PORT": str(self.market_port),
            "DCLOUD_RPC_URL": self.rpc_url,
            "DCLOUD_DEPLOYMENTS": str(self.deployments),
            "DCLOUD_INDEXER_POLL_S": "0.2",
            "DCLOUD_HEARTBEAT_INTERVAL_S": str(self.heartbeat_s),
            "DCLOUD_OFFLINE_AFTER_S": str(self.offline_after_s),
            "DCLOUD_SERVICE_PROBE_INTERVAL_S": str(self.probe_s),
            "DCLOUD_WATCH_POST_S": str(max(2.0, self.probe_s)),
            **self.market_env,
        }
        self.market = spawn("marketplace", python("-m", "marketplace"), logs=self.logs, env=env)
        wait_http(self.market, f"{self.market_url}/healthz")

    def stop_marketplace(self, *, sig: int = signal.SIGTERM) -> None:
        if self.market is not None:
            self.market.stop(sig=sig)

    # ------------------------------------------------------------------ providers

    def add_provider(self, spec: ProviderSpec, *, start: bool = True) -> Provider:
        account = operator_account(spec.key_index, self.mnemonic)
        home = self.root / "providers" / spec.name
        port = free_port()
        cfg = ProviderConfig.model_validate(
            {
                "marketplace_url": self.market_url,
                "rpc_url": self.rpc_url,
                "deployments": str(self.deployments),
                "endpoint": f"http://127.0.0.1:{port}",
                "listen_port": port,
                "location": {"lat": spec.lat, "lon": spec.lon},
                "region": spec.region,
                "caps": {"cpu": spec.cpu, "memory_mb": spec.memory_mb, "disk_mb": spec.disk_mb},
                "price_wei": spec.price_wei,
                "images": list(spec.images),
                "heartbeat_s": self.heartbeat_s,
                "poll_s": self.poll_s,
                "payout_s": 1.0,
                "fault": spec.fault,
            }
        )
        if not cfg.keystore(home).exists():
            keys.create(cfg.keystore(home), PASSWORD, private_key=account.key.hex())
        files.save(home / CONFIG_FILE, cfg)
        self.stake(account, spec.stake_tokens * TOKEN)
        provider = Provider(spec, home, account.address, port)
        self.providers.append(provider)
        if start:
            self.start_provider(provider)
        return provider

    def fund(self, address: str, *, tokens: int, eth: int = 10 * TOKEN) -> None:
        """Top `address` up to `eth` wei of gas money and `tokens`, from dev account 0."""
        w3 = self.escrow.w3
        funder = dev_account(0, self.mnemonic).address  # unlocked: the node signs for it
        to = Web3.to_checksum_address(address)
        if (short := eth - int(w3.eth.get_balance(to))) > 0:
            tx = w3.eth.send_transaction({"from": funder, "to": to, "value": Wei(short)})
            w3.eth.wait_for_transaction_receipt(tx)
        if (short := tokens - self.escrow.balance_of(address)) > 0:
            tx = self.escrow.token.functions.transfer(address, short).transact({"from": funder})
            w3.eth.wait_for_transaction_receipt(tx)

    def stake(self, account: LocalAccount, amount: int) -> None:
        """Top the account's stake up to `amount`, funding it first if it lacks tokens."""
        staked = int(self.escrow.registry.functions.stakeOf(account.address).call()[0])
        if staked >= amount:
            return
        self.fund(account.address, tokens=amount - staked)
        wallet = Wallet(self.escrow.w3, account)
        wallet.learn_errors(self.escrow.abis())
        need = amount - staked
        wallet.transact(self.escrow.token.functions.approve(self.escrow.registry.address, need))
        wallet.transact(self.escrow.registry.functions.stake(need))

    def start_provider(self, p: Provider) -> None:
        argv = python("-m", "agents", "provider", "run", "--home", str(p.home))
        env = {
            "DCLOUD_PASSWORD": PASSWORD,
            "DCLOUD_LOG_FILE": str(self.logs / f"{p.spec.name}.json.log"),
        }
        p.proc = spawn(p.spec.name, argv, logs=self.logs, env=env)
        wait_http(p.proc, f"{p.endpoint}/v1/health")
        self.wait_registered(p)

    def stop_provider(self, p: Provider, *, sig: int = signal.SIGTERM) -> None:
        if p.proc is not None:
            p.proc.stop(sig=sig)

    def wait_registered(self, p: Provider, *, online: bool = True, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                r = httpx.get(f"{self.market_url}/v1/providers/{p.address}", timeout=2)
                if r.status_code == 200 and bool(r.json().get("online")) == online:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        state = "online" if online else "offline"
        raise AgentError(
            f"provider {p.spec.name} is not {state} at the marketplace after {timeout} s"
        )

    # ------------------------------------------------------------------ renters

    def renter(self, key_index: int) -> Renter:
        """The SDK client of dev account `key_index` (one per account, closed with the network)."""
        if key_index not in self._renters:
            self._renters[key_index] = Renter(
                account=dev_account(key_index, self.mnemonic),
                marketplace_url=self.market_url,
                rpc_url=self.rpc_url,
                deployments=str(self.deployments),
                home=self.root / "renters" / str(key_index),
            )
        return self._renters[key_index]

    def time_travel(self, seconds: int) -> None:
        """Move the chain's clock ahead (local chains only) and mine a block."""
        w3 = self.escrow.w3
        w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def close(self) -> None:
        for r in self._renters.values():
            r.close()
        self._renters.clear()
        for p in self.providers:
            self.stop_provider(p)
            try:
                DockerRuntime(work_root=p.home / "work", agent_id=p.address.lower()).release_all()
                release_services(p)
            except AgentError as exc:  # no engine: nothing of this provider's can run
                logger.warning("could not release %s's containers: %s", p.spec.name, exc)
        self.stop_marketplace()


def release_services(p: Provider) -> None:
    """Remove a stopped provider's service containers, networks and data areas: services
    outlive their agent (a restart reconciles them), but not the network that ran them."""
    store = ServiceStore(p.home / "services.db")
    try:
        ServiceRuntime(
            store=store,
            work_root=p.home / "services",
            agent_id=p.address.lower(),
            public_host="127.0.0.1",
        ).reconcile([])
    finally:
        store.close()
