"""Paying nodes on chain for the shards they keep, and acting on failed audits.

:func:`open_object_deals` opens one StorageEscrow deal per shard of a stored object that
has none yet (one ``openDeals`` transaction for them all) and records the deal ids in
the object's manifest. Each deal commits the Merkle root of its shard's chunks: the
shard is fetched back from its node (its sha256 checked against the manifest) and
hashed here, so the renter also knows every node holds what it is paid for before
paying. Before anything is sent it checks that the renter holds the deposit and that
each node has the free stake its collateral needs.

:func:`audit_pass` is one round of a renter's auditor: it challenges some of the
renter's active deals and slashes the ones whose node missed its answer
(:class:`~agents.storage.files.auditor.Auditor`), then rebuilds every shard of a slashed deal
on another node (:func:`~agents.storage.repair.repair_all` with those shards condemned)
and opens a deal for the new shard on the slashed deal's terms.

Errors (all :class:`~agents.errors.AgentError`): ``UserError`` for no chain set up or
too few tokens, ``RefusedError`` for a node without the stake, or a chain refusal.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount

from agents.errors import RefusedError, UserError, VerificationError
from agents.storage.chain import DealStatus, DealTerms, StorageChain, shard_key
from agents.storage.files.auditor import Auditor
from agents.storage.files.fetch import NodeStats, fetch_shard
from agents.storage.files.manifest import DealRef, Manifest, ShardRef

if TYPE_CHECKING:
    from agents.storage.files.client import StorageClient

logger = logging.getLogger(__name__)

TOKEN = 10**18
DEFAULT_PRICE_PER_EPOCH = TOKEN // 100
DEFAULT_EPOCH_LENGTH_S = 24 * 3600


@dataclass(frozen=True)
class DealParams:
    """What the renter pays for each shard: `price_per_epoch` (token base units) for
    `epochs` epochs of `epoch_length` seconds."""

    epochs: int
    price_per_epoch: int = DEFAULT_PRICE_PER_EPOCH
    epoch_length: int = DEFAULT_EPOCH_LENGTH_S

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.price_per_epoch < 1 or self.epoch_length < 1:
            raise UserError("deal epochs, price per epoch and epoch length must be positive")


def connect_chain(
    account: LocalAccount, *, rpc_url: str | None, deployments: Path | None = None
) -> StorageChain:
    """The StorageEscrow client of `account` on the chain at `rpc_url`.

    Raises:
        UserError: no RPC URL, nothing answers there, or no deployment for that chain.
    """
    from protocol.deployments import connect, load_for
    from protocol.errors import ProtocolError

    if not rpc_url:
        raise UserError(
            "storage deals need a chain: pass --rpc or set DCLOUD_RPC_URL (and "
            "DCLOUD_DEPLOYMENTS or --deployments for where the contracts are)"
        )
    try:
        w3 = connect(rpc_url)
        return StorageChain.connect(w3, load_for(w3, path=deployments), account)
    except ProtocolError as exc:
        raise UserError(str(exc)) from None


def _fetch_all(client: StorageClient, shards: list[ShardRef]) -> list[bytes]:
    endpoints = client.endpoints()
    stats = NodeStats()

    def one(shard: ShardRef) -> bytes:
        data = fetch_shard(client.nodes, shard, endpoints.get(shard.node, shard.endpoint), stats)
        if data is None:
            raise VerificationError(
                f"node {shard.node} did not return shard {shard.id} intact; no deal was "
                "opened: run `dcloud file repair` and try again"
            )
        return data

    try:
        with ThreadPoolExecutor(client.concurrency) as pool:
            return list(pool.map(one, shards))
    finally:
        client.send_reports(stats)


def check_balance(chain: StorageChain, need: int, *, deals: int) -> None:
    """Raise UserError when the renter holds fewer than `need` token units for `deals`."""
    have = int(chain.token.functions.balanceOf(chain.address).call())
    if have < need:
        raise UserError(
            f"opening {deals} deals needs {need / TOKEN:g} tokens ({need} units) but "
            f"{chain.address} holds {have / TOKEN:g}; get more tokens or lower "
            "--price-per-epoch / --deal-epochs"
        )


def check_funds(chain: StorageChain, terms: list[DealTerms]) -> None:
    """Raise when the renter lacks the deposit or a node lacks the stake for `terms`.

    Raises:
        UserError: the renter holds fewer tokens than the deposits add up to.
        RefusedError: a node's free stake in the ProviderRegistry is below its collateral.
    """
    need = sum(t.deposit for t in terms)
    check_balance(chain, need, deals=len(terms))
    parameters = chain.contract.functions.parameters().call()
    collateral_bps = int(parameters[6])
    registry = chain.w3.eth.contract(address=parameters[1], abi=_FREE_STAKE_ABI)
    per_node: dict[str, int] = {}
    for t in terms:
        per_node[t.node] = per_node.get(t.node, 0) + t.deposit * collateral_bps // 10_000
    for node, collateral in sorted(per_node.items()):
        free = int(registry.functions.freeStake(node).call())
        if free < collateral:
            raise RefusedError(
                f"node {node} is not staked enough to accept its deals: it has {free} free "
                f"stake units and needs {collateral}; the node's owner must stake in the "
                "ProviderRegistry (or store the file on other nodes)"
            )


_FREE_STAKE_ABI = [
    {
        "type": "function",
        "name": "freeStake",
        "stateMutability": "view",
        "inputs": [{"name": "provider", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


def open_object_deals(
    client: StorageClient,
    chain: StorageChain,
    name: str,
    params: DealParams,
    *,
    only: Iterable[str] | None = None,
) -> list[DealRef]:
    """Open a deal for each shard of object `name` that has no deal recorded (or only
    for the shard ids in `only`); record them in the manifest; return the new ones."""
    chain_id = int(chain.w3.eth.chain_id)
    manifest = client.store.find(name)
    with client.store.locked(manifest.object_id):
        manifest = client.store.find(name)
        covered = {d.shard for d in manifest.deals if d.chain_id == chain_id}
        wanted = None if only is None else set(only)
        shards = [
            s
            for seg in manifest.segments
            for s in seg.shards
            if s.id not in covered and (wanted is None or s.id in wanted)
        ]
        if not shards:
            return []
        terms = [
            DealTerms.for_shard(
                data,
                node=s.node,
                shard_id=shard_key(s.id),
                price_per_epoch=params.price_per_epoch,
                epochs=params.epochs,
                epoch_length=params.epoch_length,
            )
            for s, data in zip(shards, _fetch_all(client, shards), strict=True)
        ]
        check_funds(chain, terms)
        ids = chain.open_deals(terms)
        if len(ids) != len(terms):
            raise RefusedError(f"the escrow opened {len(ids)} deals for {len(terms)} shards")
        new = [
            DealRef(deal_id=i, chain_id=chain_id, shard=s.id, node=s.node)
            for i, s in zip(ids, shards, strict=True)
        ]
        manifest.deals = [*manifest.deals, *new]
        client.store.save(manifest)
    logger.info("opened deals %s for %s", ids, name)
    return new


@dataclass
class AuditOutcome:
    """What one :func:`audit_pass` did."""

    challenged: list[int] = field(default_factory=list)
    slashed: list[int] = field(default_factory=list)  # by this pass
    repaired: dict[str, int] = field(default_factory=dict)  # object -> shards rebuilt
    failures: list[str] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)  # deals opened for rebuilt shards


def _manifests(client: StorageClient) -> list[Manifest]:
    return [m for _, m in client.store.entries() if isinstance(m, Manifest)]


def make_auditor(chain: StorageChain, *, per_pass: int = 16, seed: int | None = None) -> Auditor:
    return Auditor(chain, rng=random.Random(seed), per_step=per_pass)


def audit_pass(client: StorageClient, chain: StorageChain, auditor: Auditor) -> AuditOutcome:
    """Challenge and slash (one auditor step), then move every slashed shard elsewhere."""
    from agents.storage.files.repair import repair_all

    step = auditor.step()
    outcome = AuditOutcome(
        challenged=[c.deal_id for c in step.challenged], slashed=list(step.slashed)
    )
    chain_id = int(chain.w3.eth.chain_id)
    slashed = {s.deal_id: s for s in chain.slashed_shards()}
    doomed = {
        d.deal_id: d
        for m in _manifests(client)
        for d in m.deals
        if d.chain_id == chain_id and d.deal_id in slashed
    }
    condemned = {d.shard for d in doomed.values()}
    if not condemned:
        return outcome
    for result in repair_all(client, condemned=condemned):
        if result.shards_rebuilt:
            outcome.repaired[result.name] = result.shards_rebuilt
        outcome.failures += [f"{result.name}: {f}" for f in result.failures]
    for manifest in _manifests(client):
        _replace_deals(client, chain, manifest, doomed, outcome)
    return outcome


def _replace_deals(
    client: StorageClient,
    chain: StorageChain,
    manifest: Manifest,
    doomed: dict[int, DealRef],
    outcome: AuditOutcome,
) -> None:
    """Forget the slashed deals of shards that were rebuilt; open deals for their new
    copies on the old terms (the epochs the slashed deal had left)."""
    present = {s.id for seg in manifest.segments for s in seg.shards}
    gone = [d for d in manifest.deals if d.deal_id in doomed and d.shard not in present]
    if not gone:
        return
    with client.store.locked(manifest.object_id):
        fresh = client.store.find(manifest.name)
        fresh.deals = [d for d in fresh.deals if d not in gone]
        client.store.save(fresh)
    covered = {d.shard for d in fresh.deals}
    uncovered = present - covered
    if not uncovered:
        return
    old = chain.deal(gone[0].deal_id)
    left = old.epochs - old.paid_epochs
    if old.status != DealStatus.SLASHED or left < 1:
        return
    params = DealParams(left, old.price_per_epoch, old.epoch_length)
    try:
        new = open_object_deals(client, chain, manifest.name, params, only=uncovered)
    except (UserError, RefusedError, VerificationError) as exc:
        outcome.failures.append(f"{manifest.name}: no deal for the rebuilt shards: {exc}")
        return
    outcome.reopened += [d.deal_id for d in new]
