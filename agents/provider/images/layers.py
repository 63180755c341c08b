"""Fetch an image's layers from the storage network, checking each before it is kept.

The provider first posts the renter's read grants to their nodes, then reads every layer
as the renter's own client reads a file (:func:`agents.storage.files.fetch.read_segments`:
the first k intact shards of each segment from the fastest nodes, hedged), several
layers at once over shared thread pools. A layer's key is the renter's object key,
wrapped to this provider's public key for that object (``protocol.keywrap``). The
plaintext streams to a file while it is hashed; the layer is kept only when it hashes
to its diff_id and its tarball passes :mod:`.tarcheck`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, VerificationError
from agents.provider.images.tarcheck import check_layer
from agents.storage.files.codec import Coder
from agents.storage.files.fetch import NodeStats, read_segments
from agents.storage.files.transport import NodeClient, NodeError
from protocol.images import LayerSource, SignedGrant, grant_context
from protocol.keywrap import KeyWrapError, unwrap

logger = logging.getLogger(__name__)


class Pools:
    """Thread pools shared by the layers of one pull: layers, segments, shards."""

    def __init__(self, *, layers: int = 4, window: int = 4, shards: int = 32) -> None:
        self.window = window
        self.layers = ThreadPoolExecutor(layers, thread_name_prefix="layer")
        self.segments = ThreadPoolExecutor(layers * window, thread_name_prefix="segment")
        self.shards = ThreadPoolExecutor(shards, thread_name_prefix="shard")

    def close(self) -> None:
        for pool in (self.layers, self.segments, self.shards):
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def pools(**sizes: int) -> Iterator[Pools]:
    made = Pools(**sizes)
    try:
        yield made
    finally:
        made.close()


def post_grants(
    nodes: NodeClient, grants: list[SignedGrant], layers: list[LayerSource], pool: Pools
) -> int:
    """Post each grant to the node it is for (its endpoint from the layers' shard lists);
    returns how many nodes took theirs. A node that refuses is logged and left out: its
    shards then fail and the fetch asks the other nodes."""
    where = {
        shard.node.lower(): shard.endpoint
        for layer in layers
        for seg in layer.segments
        for shard in seg.shards
    }

    def post(grant: SignedGrant) -> bool:
        endpoint = where.get(grant.payload.node.lower())
        if endpoint is None:
            return False  # a node none of the layers to fetch is on
        try:
            nodes.post_grant(endpoint, grant)
        except NodeError as exc:
            logger.warning("a storage node refused a read grant", extra={"error": str(exc)})
            return False
        return True

    return sum(pool.shards.map(post, grants))


def fetch_layer(
    layer: LayerSource,
    dest: Path,
    *,
    account: LocalAccount,
    nodes: NodeClient,
    stats: NodeStats,
    pool: Pools,
    max_member_bytes: int,
) -> Path:
    """Fetch one layer into `dest`, check its hash and its tarball; returns `dest`.

    Raises:
        VerificationError: its key does not open, or its bytes are not its diff_id.
        LayerRefusedError: its tarball has members outside its root, devices, etc.
        NotEnoughShardsError: too few of its shards could be fetched.
    """
    try:
        key = unwrap(
            layer.key,
            bytes(account.key),
            context=grant_context(layer.object_id, account.address),
        )
    except KeyWrapError as exc:
        raise VerificationError(f"layer {layer.diff_id}'s key: {exc}") from None
    digest = hashlib.sha256()
    size = 0
    try:
        with open(dest, "wb") as out:
            for plain in read_segments(
                nodes,
                layer.segments,
                object_id=layer.object_id,
                key=key,
                coder=Coder(layer.k, layer.n),
                stats=stats,
                shard_pool=pool.shards,
                seg_pool=pool.segments,
                window=pool.window,
            ):
                size += len(plain)
                if size > layer.size:
                    break
                digest.update(plain)
                out.write(plain)
        got = "sha256:" + digest.hexdigest()
        if size != layer.size or got != layer.diff_id:
            raise VerificationError(
                f"layer {layer.diff_id} came back as {got} ({size} bytes, not {layer.size}): "
                "it is not the layer the image's config pins; refused, nothing was loaded"
            )
        check_layer(dest, diff_id=layer.diff_id, max_member_bytes=max_member_bytes)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def fetch_layers(
    layers: list[LayerSource],
    folder: Path,
    *,
    account: LocalAccount,
    nodes: NodeClient,
    stats: NodeStats,
    pool: Pools,
    max_member_bytes: int,
) -> dict[str, Path]:
    """Fetch and check `layers` into `folder`, several at once; diff_id -> tarball.

    Raises:
        AgentError: the first layer that failed, with why (the others are abandoned).
    """
    unique = {layer.diff_id: layer for layer in reversed(layers)}  # a layer may repeat
    futures = {
        layer.diff_id: pool.layers.submit(
            fetch_layer,
            layer,
            folder / f"{layer.diff_id.removeprefix('sha256:')}.tar",
            account=account,
            nodes=nodes,
            stats=stats,
            pool=pool,
            max_member_bytes=max_member_bytes,
        )
        for layer in unique.values()
    }
    out: dict[str, Path] = {}
    try:
        for diff_id, future in futures.items():
            out[diff_id] = future.result()
    except AgentError:
        for future in futures.values():
            future.cancel()
        raise
    return out
