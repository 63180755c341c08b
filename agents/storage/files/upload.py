"""Putting shards on nodes: a segment's n shards in parallel, a failed node replaced.

Used by :class:`agents.storage.client.StorageClient` for ``put`` and by repair. The
marketplace chooses the nodes (``POST /v1/storage/placement``); when one refuses (its
quota is full) or is down, the shard goes to another node the marketplace picks outside
the segment's nodes, up to :data:`PUT_ATTEMPTS_PER_SHARD` tries.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from agents.errors import RefusedError, UserError
from agents.storage.files import codec
from agents.storage.files.transport import NodeClient, NodeError
from agents.storage.market import StorageMarket
from protocol.storage import PlacementRequest, SegmentRef, ShardRef

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Called with a number of plaintext bytes just stored or fetched."""

PUT_ATTEMPTS_PER_SHARD = 4


@dataclass(frozen=True)
class Target:
    node: str
    endpoint: str


class Uploader:
    """Stores segments' shards on nodes the marketplace chooses."""

    def __init__(
        self,
        nodes: NodeClient,
        market: StorageMarket | None,
        *,
        concurrency: int,
        window: int,
    ) -> None:
        self.nodes = nodes
        self.market = market
        self.concurrency = concurrency
        self.window = window

    def require_market(self, what: str) -> StorageMarket:
        if self.market is None:
            raise UserError(f"{what} needs a marketplace to place shards; pass --marketplace")
        return self.market

    def upload(
        self,
        fh: BinaryIO,
        *,
        object_id: str,
        key: bytes,
        size: int,
        coder: codec.Coder,
        segment_bytes: int,
        targets: list[list[Target]],
        uploaded: list[tuple[str, str]],
        progress: Progress | None,
    ) -> tuple[list[SegmentRef], str]:
        refs: list[SegmentRef | None] = [None] * len(targets)
        plain_hash = hashlib.sha256()
        slots = threading.BoundedSemaphore(self.window)
        lock = threading.Lock()
        with (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="shard") as shard_pool,
            ThreadPoolExecutor(self.window, thread_name_prefix="segment") as seg_pool,
        ):
            running: list[Future[None]] = []

            def store_segment(index: int, plain: bytes) -> None:
                try:
                    plain_size = len(plain)
                    cipher = codec.encrypt_segment(
                        key, object_id=object_id, index=index, plain=plain
                    )
                    del plain
                    shards = coder.encode(cipher)
                    stored = self._store_shards(shards, targets[index], shard_pool, uploaded, lock)
                    refs[index] = SegmentRef(
                        index=index,
                        plain_size=plain_size,
                        cipher_size=len(cipher),
                        sha256=codec.sha256_hex(cipher),
                        shards=stored,
                    )
                    if progress is not None:
                        progress(plain_size)
                finally:
                    slots.release()

            try:
                remaining = size
                for index in range(len(targets)):
                    plain = _read_exactly(fh, min(segment_bytes, remaining))
                    remaining -= len(plain)
                    plain_hash.update(plain)
                    slots.acquire()
                    for done in [f for f in running if f.done()]:
                        done.result()  # surface a failed segment before reading on
                        running.remove(done)
                    running.append(seg_pool.submit(store_segment, index, plain))
                for future in running:
                    future.result()
            except BaseException:
                shard_pool.shutdown(cancel_futures=True)
                seg_pool.shutdown(cancel_futures=True)
                raise
        return [r for r in refs if r is not None], plain_hash.hexdigest()

    def _store_shards(
        self,
        shards: list[bytes],
        targets: list[Target],
        pool: ThreadPoolExecutor,
        uploaded: list[tuple[str, str]],
        lock: threading.Lock,
    ) -> list[ShardRef]:
        """Upload a segment's shards, one per node; a failed node is replaced."""
        exclude = {t.node for t in targets}

        def one(index: int) -> ShardRef:
            ref = self.store_shard(
                shards[index], index=index, exclude=exclude, lock=lock, first=targets[index]
            )
            with lock:
                uploaded.append((ref.endpoint, ref.id))
            return ref

        futures = [pool.submit(one, i) for i in range(len(shards))]
        return [f.result() for f in futures]

    def store_shard(
        self,
        data: bytes,
        *,
        index: int,
        exclude: set[str],
        lock: threading.Lock,
        first: Target | None = None,
        sha256: str | None = None,
    ) -> ShardRef:
        """Store one shard on `first`, or on a node the marketplace picks outside `exclude`.

        A node that refuses or is down is added to `exclude` and another one is asked for,
        up to :data:`PUT_ATTEMPTS_PER_SHARD` nodes. `exclude` is shared with other threads
        under `lock`.

        Raises:
            RefusedError: no node took the shard.
        """
        sha256 = sha256 or codec.sha256_hex(data)
        target = first
        last: Exception | None = None
        for _ in range(PUT_ATTEMPTS_PER_SHARD):
            if target is None:
                with lock:
                    excluded = sorted(exclude)
                (target,) = self.placement(
                    n=1, segments=1, shard_bytes=len(data), exclude=excluded
                )[0]
                with lock:
                    exclude.add(target.node)
            shard_id = codec.random_id()
            try:
                self.nodes.put(target.endpoint, shard_id, data, sha256=sha256)
            except NodeError as exc:
                logger.info("node %s did not take a shard (%s); asking for another", target, exc)
                with lock:
                    exclude.add(target.node)
                last, target = exc, None
                continue
            return ShardRef(
                index=index,
                id=shard_id,
                node=target.node,
                endpoint=target.endpoint,
                size=len(data),
                sha256=sha256,
            )
        raise RefusedError(
            f"no node took shard {index} after {PUT_ATTEMPTS_PER_SHARD} tries (last: {last}); "
            "nothing was kept, try again later"
        )

    def placement(
        self,
        *,
        n: int,
        segments: int,
        shard_bytes: int,
        exclude: list[str] | None = None,
    ) -> list[list[Target]]:
        market = self.require_market("placing shards")
        out: list[list[Target]] = []
        for start in range(0, segments, 4096):
            placed = market.placement(
                PlacementRequest(
                    n=n,
                    segments=min(4096, segments - start),
                    shard_bytes=shard_bytes,
                    exclude=exclude or [],
                )
            )
            nodes = [Target(p.address, p.endpoint) for p in placed.nodes]
            out.extend([nodes[i] for i in seg] for seg in placed.segments)
        return out

    def discard(self, uploaded: list[tuple[str, str]]) -> None:
        """Best effort: delete shards of a put that failed."""
        for endpoint, shard_id in uploaded:
            try:
                self.nodes.delete(endpoint, shard_id)
            except NodeError as exc:
                logger.warning("could not delete shard %s of a failed put: %s", shard_id, exc)


def _read_exactly(fh: BinaryIO, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = fh.read(size - got)
        if not chunk:
            raise UserError(f"the file ended {size - got} bytes early; was it changed meanwhile?")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
