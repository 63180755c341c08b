"""Paying nodes on chain for the shards they keep.

:func:`open_object_deals` opens one StorageEscrow deal per shard of a stored object that
has none yet (one ``openDeals`` transaction for them all) and records the deal ids in
the object's manifest. Each deal commits the Merkle root of its shard's chunks: the
shard is fetched back from its node (its sha256 checked against the manifest) and
hashed here, so the renter also knows every node holds what it is paid for before
paying. Before anything is sent it checks that the renter holds the deposit and that
each node has the free stake its collateral needs. :func:`put_with_deals` stores a file
and opens its deals, or stores nothing.

Errors (all :class:`~agents.errors.AgentError`): ``UserError`` for no chain set up or
too few tokens, ``RefusedError`` for a node without the stake, or a chain refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount

from agents.errors import RefusedError, UserError, VerificationError
from agents.storage.escrow import DealTerms, StorageChain, shard_key
from agents.storage.files import codec
from agents.storage.files.client import StorageClient
from agents.storage.files.fetch import NodeStats, fetch_shard
from agents.storage.files.manifest import DealRef, Manifest
from agents.storage.files.upload import Progress
from protocol.storage import ShardRef

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
    account: LocalAccount,
    *,
    rpc_url: str | None,
    deployments: Path | None = None,
    marketplace: str | None = None,
    cache_dir: Path | None = None,
) -> StorageChain:
    """The StorageEscrow client of `account` on the chain at `rpc_url`: the contracts the
    marketplace follows (checked on that chain), or those of a pinned deployments file.

    Raises:
        UserError: no RPC URL, nothing answers there, or no deployment for that chain.
    """
    from agents.network import open_deployment
    from protocol.deployments import connect, load_for
    from protocol.errors import ProtocolError

    if not rpc_url:
        raise UserError(
            "storage deals need a chain: pass --rpc or set DCLOUD_RPC_URL (the marketplace "
            "says which contracts it follows; --deployments pins a file instead)"
        )
    try:
        w3 = connect(rpc_url)
        if marketplace and cache_dir is not None:
            deployment = open_deployment(
                w3, marketplace_url=marketplace, deployments=deployments, cache_dir=cache_dir
            )
        else:
            deployment = load_for(w3, path=deployments)
        return StorageChain.connect(w3, deployment, account)
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


def put_with_deals(
    client: StorageClient,
    path: Path,
    *,
    chain: StorageChain,
    deals: DealParams,
    name: str | None = None,
    k: int = 8,
    n: int = 12,
    segment_bytes: int = codec.SEGMENT_BYTES,
    progress: Progress | None = None,
) -> Manifest:
    """:meth:`StorageClient.put`, then a StorageEscrow deal per shard on `deals` terms
    (recorded in the manifest). The deposit is checked before uploading; if the deals
    cannot be opened the object is removed again, so nothing is stored unpaid."""
    size = path.stat().st_size if path.is_file() else 0
    shards = codec.segment_count(size, segment_bytes) * n
    check_balance(chain, shards * deals.price_per_epoch * deals.epochs, deals=shards)
    manifest = client.put(path, name=name, k=k, n=n, segment_bytes=segment_bytes, progress=progress)
    try:
        open_object_deals(client, chain, manifest.name, deals)
    except BaseException:
        logger.warning("no deals for %s: removing it again", manifest.name)
        client.rm(manifest.name, force=True)
        raise
    return client.store.find(manifest.name)
