"""Storage audits on a real chain: anvil, the deployed StorageEscrow, the agents' clients.

A renter opens deals for two shards on two staked nodes; each node runs a
``NodeResponder`` over its own shard store (a dict here) and the deployer runs the
``Auditor`` (it holds AUDITOR_ROLE on local chains). A node that still holds its shard
answers its challenge and is paid every epoch; a node that lost it misses the
deadline and is slashed, and the slash names the shard for the repairer. The chunk is
drawn from the block after the challenge: anvil mines only on demand, so the auditor
mines that block, and a node answers only once it exists. Token supply and the
escrow's books are checked at the end of each test. The last test follows the chain with
the marketplace's indexer: answered and missed audits move the nodes' reputation.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agents.storage.escrow import DealStatus, DealTerms, StorageChain, shard_key, shard_name
from agents.storage.files.auditor import Auditor
from agents.storage.node.responder import NodeResponder, chunk_proof
from agents.wallet import Wallet
from marketplace.chain.client import ChainClient
from marketplace.chain.indexer import Indexer
from marketplace.settings import Settings
from marketplace.storage import nodes as storage_nodes
from marketplace.store.db import make_engine, migrate, session_factory, transaction
from marketplace.store.models import StorageNodeRow
from protocol import merkle
from protocol.deployments import Deployment, connect, load_for
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
WINDOW = 60  # seconds a node has to answer
EPOCH = 100
EPOCHS = 3
PRICE = 2 * TOKEN
FEE_BPS = 200  # DeployParams' default, which the deploy below keeps
# anvil's default dev keys: deployer (treasury, auditor), renter, two nodes
KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]


@dataclass
class Net:
    w3: Web3
    deployment: Deployment
    deployer: LocalAccount
    renter: LocalAccount
    nodes: list[LocalAccount]
    supply: int
    url: str
    deployments: Path

    def client(self, account: LocalAccount, *, from_block: int | None = None) -> StorageChain:
        head = self.w3.eth.block_number if from_block is None else from_block
        return StorageChain.connect(self.w3, self.deployment, account, from_block=head)

    def travel(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def balance(self, account: str) -> int:
        token = self.deployment.contract(self.w3, "ComputeToken")
        return int(token.functions.balanceOf(account).call())

    def stake(self, account: str) -> tuple[int, int]:
        registry = self.deployment.contract(self.w3, "ProviderRegistry")
        staked, locked, _, _ = registry.functions.stakeOf(account).call()
        return int(staked), int(locked)

    def check_books(self) -> None:
        """Supply unchanged; the escrow holds the unpaid epochs of live deals + credits."""
        token = self.deployment.contract(self.w3, "ComputeToken")
        assert token.functions.totalSupply().call() == self.supply
        reader = self.client(self.deployer, from_block=0)
        live = sum(
            d.price_per_epoch * (d.epochs - d.paid_epochs)
            for d in (reader.deal(i) for i in range(1, reader.deal_count() + 1))
            if d.live
        )
        accounts = [self.deployer, self.renter, *self.nodes]
        credits = sum(reader.credit_of(a.address) for a in accounts)
        assert self.balance(reader.contract.address) == live + credits


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[Net]:
    out = tmp_path_factory.mktemp("storage") / "deployments.json"
    with running_chain("anvil") as url:
        deploy_contracts(
            CHAINS["anvil"]["network"],
            out,
            DCLOUD_STORAGE_RESPONSE_WINDOW=str(WINDOW),
            DCLOUD_STORAGE_ACCEPT_WINDOW="600",
            DCLOUD_STORAGE_COLLATERAL_BPS="10000",
        )
        w3 = connect(url)
        deployment = load_for(w3, path=out)
        deployer, renter, *nodes = (Account.from_key(k) for k in KEYS)
        token = deployment.contract(w3, "ComputeToken")
        registry = deployment.contract(w3, "ProviderRegistry")
        for node in nodes:
            wallet = Wallet(w3, node)
            wallet.transact(token.functions.approve(registry.address, 500 * TOKEN))
            wallet.transact(registry.functions.stake(500 * TOKEN))
        supply = int(token.functions.totalSupply().call())
        yield Net(w3, deployment, deployer, renter, nodes, supply, url, out)


def shard(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def open_deal(net: Net, node: LocalAccount, data: bytes) -> tuple[int, bytes]:
    key = shard_key(os.urandom(16).hex())
    terms = DealTerms.for_shard(
        data,
        node=node.address,
        shard_id=key,
        price_per_epoch=PRICE,
        epochs=EPOCHS,
        epoch_length=EPOCH,
    )
    return net.client(net.renter).open_deal(terms), key


def until(predicate, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def storage_node_row(address: str, *, now: float) -> StorageNodeRow:
    """A storage node as the marketplace registers it, new and online."""
    return StorageNodeRow(
        address=address,
        endpoint="http://127.0.0.1:9200",
        lat=59.3,
        lon=18.1,
        region="SE",
        capacity_bytes=10**9,
        free_bytes=10**9,
        shards=1,
        registered_at=now,
        last_heartbeat_at=now,
        heartbeats=1,
        fetch_ok=0,
        fetch_failed=0,
        fetch_corrupt=0,
        latency_ms=None,
        audits_passed=0,
        audits_failed=0,
    )


def test_shard_keys_round_trip_the_nodes_hex_ids():
    name = os.urandom(16).hex()
    assert len(shard_key(name)) == 32 and shard_name(shard_key(name)) == name
    data = shard(1, 3000)
    chunk, proof = chunk_proof(data, 2)
    leaves = merkle.chunk_leaves(data)
    assert chunk == data[2048:] and merkle.verify(proof, merkle.root(leaves), leaves[2])


def test_a_node_holding_its_shard_answers_and_is_paid_every_epoch(net):
    node = net.nodes[0]
    data = shard(7, 5 * 1024 + 100)
    auditor = Auditor(net.client(net.deployer), rng=random.Random(3))
    node_client = net.client(node)
    deal_id, key = open_deal(net, node, data)
    store = {key: data}
    responder = NodeResponder(node_client, store.__getitem__)

    assert responder.step().accepted == [deal_id]
    assert node_client.deal(deal_id).status == DealStatus.ACTIVE
    report = auditor.step()
    assert [c.deal_id for c in report.challenged] == [deal_id]
    assert node_client.pending_challenges(node.address)[0].deal_id == deal_id

    stop = threading.Event()  # the node answers from its own thread, as a node process does
    thread = threading.Thread(target=responder.run, args=(stop, 0.1), daemon=True)
    thread.start()
    try:
        assert until(lambda: not node_client.challenge_of(deal_id).pending)
    finally:
        stop.set()
        thread.join(timeout=10)
    net.travel(WINDOW + 1)
    assert auditor.step().slashed == []

    net.travel(EPOCHS * EPOCH)
    assert responder.step().settled == [deal_id]
    deal = node_client.deal(deal_id)
    assert (deal.status, deal.paid_epochs) == (DealStatus.COMPLETED, EPOCHS)
    pay = EPOCHS * (PRICE - PRICE * FEE_BPS // 10_000)
    assert node_client.credit_of(node.address) == pay
    assert net.stake(node.address) == (500 * TOKEN, 0)
    before = net.balance(node.address)
    assert node_client.withdraw() == pay
    assert net.balance(node.address) - before == pay
    net.check_books()


def test_a_node_that_lost_its_shard_is_slashed_and_the_shard_named_for_repair(net):
    node = net.nodes[1]
    data = shard(9, 3 * 1024)
    auditor = Auditor(net.client(net.deployer), rng=random.Random(4))
    node_client = net.client(node)
    deal_id, key = open_deal(net, node, data)
    store = {key: data}
    responder = NodeResponder(node_client, store.__getitem__)
    assert responder.step().accepted == [deal_id]
    collateral = node_client.deal(deal_id).collateral
    assert collateral == EPOCHS * PRICE
    del store[key]  # the disk failed

    challenge = auditor.step().challenged[0]
    assert challenge.deal_id == deal_id
    index = node_client.chunk_of(challenge, 3)  # the auditor mined the draw block
    assert index is not None and 0 <= index < 3
    assert responder.step().unanswerable == [deal_id]
    assert auditor.step().slashed == []  # not yet: the window is still open
    net.travel(WINDOW + 1)
    assert node_client.contract.functions.challengeChunk(deal_id).call() == index

    renter_before = net.balance(net.renter.address)
    treasury_before = net.balance(net.deployer.address)
    start = net.w3.eth.block_number
    assert auditor.step().slashed == [deal_id]
    assert node_client.deal(deal_id).status == DealStatus.SLASHED
    to_treasury = collateral * 2_000 // 10_000  # DeployParams' slash_treasury_bps
    assert net.balance(net.renter.address) - renter_before == collateral - to_treasury
    assert net.balance(net.deployer.address) - treasury_before == to_treasury
    assert net.stake(node.address) == (500 * TOKEN - collateral, 0)
    assert node_client.credit_of(net.renter.address) >= EPOCHS * PRICE  # every epoch refunded
    slashed = node_client.slashed_shards(from_block=start)
    assert [(s.deal_id, s.node, s.shard_id) for s in slashed] == [(deal_id, node.address, key)]
    assert (slashed[0].slashed, slashed[0].released) == (collateral, 0)  # missed in epoch 0
    assert responder.step().answered == []
    net.check_books()


def test_a_node_refuses_an_offer_whose_root_does_not_match_its_shard(net):
    node = net.nodes[0]
    data = shard(11, 2048)
    deal_id, key = open_deal(net, node, data)
    responder = NodeResponder(net.client(node), {key: data[:-1] + b"!"}.__getitem__)
    report = responder.step()
    assert report.refused == [deal_id] and report.accepted == []
    assert net.client(node).deal(deal_id).status == DealStatus.OFFERED
    net.client(net.renter).cancel(deal_id)
    net.check_books()


def test_a_renter_without_the_auditor_role_audits_only_its_own_deals(net):
    node = net.nodes[0]
    data = shard(13, 1500)
    renter_auditor = Auditor(net.client(net.renter), rng=random.Random(5))
    stranger_auditor = Auditor(net.client(net.nodes[1]), rng=random.Random(6))
    deal_id, key = open_deal(net, node, data)
    responder = NodeResponder(net.client(node), {key: data}.__getitem__)
    assert responder.step().accepted == [deal_id]
    assert stranger_auditor.step().challenged == []  # not its deal, and it has no role
    assert [c.deal_id for c in renter_auditor.step().challenged] == [deal_id]
    assert responder.step().answered == [deal_id]
    net.client(net.renter).cancel(deal_id)  # the renter ends it early: one epoch paid
    assert net.client(node).deal(deal_id).status == DealStatus.CANCELLED
    net.check_books()


def test_a_node_answers_only_once_the_draw_block_is_mined(net):
    """The chunk is unknown when the challenge lands; the node waits for the next block."""
    node = net.nodes[0]
    data = shard(17, 4 * 1024)
    deal_id, key = open_deal(net, node, data)
    node_client = net.client(node)
    responder = NodeResponder(node_client, {key: data}.__getitem__)
    assert responder.step().accepted == [deal_id]
    renter = net.client(net.renter)
    challenge = renter.challenge(deal_id)  # no auditor here: nothing mines the draw block
    assert node_client.block_number() == challenge.draw_block - 1
    assert node_client.chunk_of(challenge, 4) is None
    report = responder.step()
    assert report.answered == [] and report.unanswerable == []
    assert node_client.challenge_of(deal_id).pending
    assert renter.mine_if_dev_chain()  # the challenger side mines it on a dev chain
    assert responder.step().answered == [deal_id]
    assert not node_client.challenge_of(deal_id).pending
    net.travel(EPOCH + 1)
    assert responder.step().settled == [deal_id]
    renter.cancel(deal_id)
    net.check_books()


def test_a_missed_challenge_pays_served_epochs_and_slashes_the_unserved_share(net):
    node = net.nodes[1]
    data = shard(19, 2 * 1024)
    auditor = Auditor(net.client(net.deployer), rng=random.Random(8))
    deal_id, key = open_deal(net, node, data)
    node_client = net.client(node)
    responder = NodeResponder(node_client, {key: data}.__getitem__, settle=False)
    assert responder.step().accepted == [deal_id]
    collateral = node_client.deal(deal_id).collateral
    staked_before = net.stake(node.address)[0]
    net.travel(EPOCH + 1)  # epoch 0 served and not settled; the shard is lost in epoch 1
    responder.read_shard = {}.__getitem__
    assert [c.deal_id for c in auditor.step().challenged] == [deal_id]
    assert responder.step().unanswerable == [deal_id]
    net.travel(WINDOW + 1)
    assert auditor.step().slashed == [deal_id]
    slashed = collateral * (EPOCHS - 1) // EPOCHS
    assert node_client.credit_of(node.address) == PRICE - PRICE * FEE_BPS // 10_000
    assert net.stake(node.address) == (staked_before - slashed, 0)
    (event,) = node_client.slashed_shards(from_block=net.w3.eth.block_number)
    assert (event.slashed, event.released, event.refund) == (
        slashed,
        collateral - slashed,
        (EPOCHS - 1) * PRICE,
    )
    net.check_books()


def test_the_marketplace_indexer_turns_audits_into_storage_node_reputation(net, tmp_path):
    """A node that answers its challenges ranks above one slashed for a miss in placement."""
    good, bad = net.nodes
    renter = net.client(net.renter)
    good_store, bad_store = {}, {}
    good_responder = NodeResponder(net.client(good), good_store.__getitem__)
    bad_responder = NodeResponder(net.client(bad), bad_store.__getitem__, settle=False)
    deal_good, key_good = open_deal(net, good, shard(21, 2048))
    deal_bad, key_bad = open_deal(net, bad, shard(23, 2048))
    good_store[key_good], bad_store[key_bad] = shard(21, 2048), shard(23, 2048)
    assert good_responder.step().accepted == [deal_good]
    assert bad_responder.step().accepted == [deal_bad]
    del bad_store[key_bad]  # lost before its audit
    for deal_id in (deal_good, deal_bad):
        renter.challenge(deal_id)
    assert renter.mine_if_dev_chain()
    assert good_responder.step().answered == [deal_good]
    assert bad_responder.step().unanswerable == [deal_bad]
    net.travel(WINDOW + 1)
    renter.slash_missed(deal_bad)

    # What the chain says, over every test of the module: the oracle for the counters.
    storage = net.deployment.contract(net.w3, "StorageEscrow")
    answered = Counter(
        e["args"]["node"] for e in storage.events.ChallengeAnswered().get_logs(from_block=0)
    )
    slashed = Counter(
        e["args"]["node"] for e in storage.events.DealSlashed().get_logs(from_block=0)
    )
    assert answered[good.address] >= 1 and slashed[bad.address] >= 1

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'market.db'}",
        rpc_url=net.url,
        deployments=net.deployments,
    )
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    now = time.time()
    with transaction(sessions) as s:
        for node in net.nodes:
            s.add(storage_node_row(node.address, now=now))
    chain = ChainClient(net.url, deployments=str(net.deployments))
    indexer = Indexer(settings, sessions, chain)
    indexer.run_once()
    while indexer.status == "catching up":
        indexer.run_once()
    try:
        with sessions() as s:
            rows = {n.address: s.get(StorageNodeRow, n.address) for n in net.nodes}
            for address, row in rows.items():
                assert (row.audits_passed, row.audits_failed) == (
                    answered[address],
                    slashed[address],
                )
            reps = {
                a: storage_nodes.reputation_of(r, now=now, settings=settings)[1]
                for a, r in rows.items()
            }
    finally:
        engine.dispose()
    assert reps[good.address] > 0.5 > reps[bad.address]  # a new node starts at 0.5
    net.check_books()
