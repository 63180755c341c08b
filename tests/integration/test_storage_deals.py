"""Storage deals end to end: `dcloud file put --deal-epochs` and `dcloud file audit` as
processes, against anvil, a marketplace and four staked storage-node processes that
answer audits themselves.

The renter stores a file k=2 of n=3 with one deal per shard; the nodes accept and answer
the first audit. Then one node loses its shard file on disk: the next audit (an epoch
later) challenges it, it cannot answer, and once the window has passed the audit slashes
it, rebuilds the shard on the fourth node and pays that node a new deal. The file still
reads back, and the token supply never changes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agents.storage.escrow import DealStatus, StorageChain
from agents.storage.files.client import StorageClient
from agents.storage.node.run import init_node
from agents.wallet import Wallet
from protocol.deployments import Deployment, connect, load_for
from tests.agents.storage.network import (
    PASSWORD,
    PLACES,
    ROOT,
    Marketplace,
    Node,
    _die_with_parent,
    env,
    write_keystore,
)
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
WINDOW = 60  # seconds a node has to answer a challenge
EPOCH = 100
# anvil's default dev keys (funded with tokens by the deploy): the renter, then four nodes
RENTER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
NODE_KEYS = [
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
]


class ChainNode(Node):
    """A storage node on a dev account, answering audits on the test chain."""

    def __init__(
        self,
        home: Path,
        *,
        acct: LocalAccount,
        market: str,
        rpc_url: str,
        deployments: Path,
        place: tuple[float, float],
    ) -> None:
        self.home = home
        self.account = acct
        self.address = acct.address
        self.deployments = deployments
        write_keystore(home / "key.json", acct)
        self.config = init_node(
            home,
            password=PASSWORD,
            quota_bytes=50 * 10**6,
            lat=place[0],
            lon=place[1],
            marketplace=market,
            heartbeat_s=1.0,
            rpc_url=rpc_url,
        )
        self.endpoint = self.config.endpoint
        self.proc = None
        self.log = home / "node.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents", "node", "run", "--home", str(self.home)],
                env={**env(), "DCLOUD_DEPLOYMENTS": str(self.deployments)},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )


class World:
    def __init__(self, w3: Web3, deployment: Deployment, deployments: Path, url: str) -> None:
        self.w3, self.deployment, self.deployments, self.url = w3, deployment, deployments, url
        self.renter = Account.from_key(RENTER_KEY)
        self.chain = StorageChain.connect(w3, deployment, self.renter)
        self.token = deployment.contract(w3, "ComputeToken")
        self.market: Marketplace | None = None
        self.nodes: list[ChainNode] = []

    def supply(self) -> int:
        return int(self.token.functions.totalSupply().call())

    def travel(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def stake(self, acct: LocalAccount, amount: int) -> None:
        registry = self.deployment.contract(self.w3, "ProviderRegistry")
        wallet = Wallet(self.w3, acct)
        wallet.transact(self.token.functions.approve(registry.address, amount))
        wallet.transact(registry.functions.stake(amount))

    def dcloud(self, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
        assert self.market is not None
        return subprocess.run(
            [sys.executable, "-m", "agents", "file", *args, "--home", str(home)],
            env={
                **env(),
                "DCLOUD_MARKETPLACE_URL": self.market.url,
                "DCLOUD_RPC_URL": self.url,
                "DCLOUD_DEPLOYMENTS": str(self.deployments),
            },
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("storage-deals")
    out = folder / "deployments.json"
    with running_chain("anvil") as url:
        deploy_contracts(
            CHAINS["anvil"]["network"],
            out,
            DCLOUD_STORAGE_RESPONSE_WINDOW=str(WINDOW),
            DCLOUD_STORAGE_ACCEPT_WINDOW="600",
            DCLOUD_STORAGE_COLLATERAL_BPS="10000",
        )
        w3 = connect(url)
        w = World(w3, load_for(w3, path=out), out, url)
        for key in NODE_KEYS:
            w.stake(Account.from_key(key), 100 * TOKEN)
        w.market = Marketplace(folder / "marketplace")
        try:
            w.nodes = [
                ChainNode(
                    folder / f"node{i}",
                    acct=Account.from_key(key),
                    market=w.market.url,
                    rpc_url=url,
                    deployments=out,
                    place=PLACES[i],
                )
                for i, key in enumerate(NODE_KEYS)
            ]
            for node in w.nodes:
                node.start()
            w.market.wait_ready()
            for node in w.nodes:
                node.wait_ready()
            wait_for(
                "the nodes to be online",
                lambda: sum(bool(n["online"]) for n in w.market.nodes()) == len(NODE_KEYS),  # type: ignore[union-attr]
            )
            yield w
        finally:
            for node in w.nodes:
                node.stop()
            w.market.stop()


def test_put_with_deals_audit_slash_and_repair(tmp_path: Path, world: World) -> None:
    supply = world.supply()
    home = tmp_path / "renter"
    write_keystore(home / "key.json", world.renter)
    src = tmp_path / "ledger.bin"
    data = bytes(range(256)) * 40  # 10 kB: a few Merkle chunks per shard
    src.write_bytes(data)

    put = world.dcloud(
        "put", str(src), "--k", "2", "--n", "3", "--segment-size", "8KB",
        "--deal-epochs", "5", "--price-per-epoch", "1", "--epoch-length", str(EPOCH),
        home=home,
    )  # fmt: skip
    assert put.returncode == 0, put.stdout + put.stderr
    assert "opened 6 storage deals" in put.stdout

    with StorageClient(home=home, account=world.renter, marketplace=world.market.url) as client:  # type: ignore[union-attr]
        manifest = client.store.find("ledger.bin")
    deals = {d.deal_id: d for d in manifest.deals}
    shards = {s.id: s for seg in manifest.segments for s in seg.shards}
    assert set(shards) == {d.shard for d in deals.values()}
    for d in deals.values():
        assert world.chain.deal(d.deal_id).node == d.node == shards[d.shard].node

    def status(deal_id: int) -> DealStatus:
        return world.chain.deal(deal_id).status

    wait_for("the nodes to accept", lambda: all(status(i) == DealStatus.ACTIVE for i in deals))

    def answered(ids: list[int]) -> bool:
        return not any(world.chain.challenge_of(i).pending for i in ids)

    first = world.dcloud("audit", home=home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "6 deals challenged, 0 slashed" in first.stdout
    wait_for("every node to answer", lambda: answered(list(deals)))

    # One node loses one shard file on disk; it cannot answer its next challenge.
    lost = next(iter(deals.values()))
    holder = next(n for n in world.nodes if n.address == lost.node)
    (path,) = (p for p in holder.shard_files() if p.name == lost.shard)
    path.unlink()

    world.travel(EPOCH + 1)  # next epoch: each deal may be challenged again
    second = world.dcloud("audit", home=home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "6 deals challenged, 0 slashed" in second.stdout
    others = [i for i in deals if i != lost.deal_id]
    wait_for("the intact shards to be proven", lambda: answered(others))
    assert world.chain.challenge_of(lost.deal_id).pending

    world.travel(WINDOW + 1)  # the window closes with the lost chunk unanswered
    third = world.dcloud("audit", home=home)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "1 slashed" in third.stdout and "ledger.bin: 1 shards moved" in third.stdout
    assert status(lost.deal_id) == DealStatus.SLASHED
    assert all(status(i) == DealStatus.ACTIVE for i in others)

    with StorageClient(home=home, account=world.renter, marketplace=world.market.url) as client:  # type: ignore[union-attr]
        after = client.store.find("ledger.bin")
        assert client.get_bytes("ledger.bin") == data
    moved = {s.id: s for seg in after.segments for s in seg.shards}
    assert lost.shard not in moved
    (new,) = (s for s in moved.values() if s.id not in shards)
    assert new.node != lost.node
    # the rebuilt shard is paid for on the old terms, and its node takes the deal
    (fresh,) = (d for d in after.deals if d.shard == new.id)
    assert lost.deal_id not in {d.deal_id for d in after.deals}
    wait_for("the new node to accept", lambda: status(fresh.deal_id) == DealStatus.ACTIVE)
    assert world.supply() == supply
