"""The renter's storage SDK: put, get, ls, rm, health and repair of whole files.

``put`` encrypts a file segment by segment (AES-256-GCM under a fresh key that never
leaves this machine), erasure-codes each segment k of n, asks the marketplace for n
distinct nodes per segment (spread over regions, reliable ones first) and uploads the
shards in parallel; if a node refuses or is down it asks for a replacement node. Only
when every shard is stored does the manifest appear: a failed put removes what it
uploaded and leaves no object behind.

``get`` fetches the first k intact shards of each segment from the fastest nodes
(:mod:`agents.storage.files.fetch`), decodes and decrypts it, and writes to a temporary file
that replaces the destination only when the whole object checked out; then it reports
what it saw of every node to the marketplace.

Example::

    client = StorageClient(home=Path("~/.dcloud/renter").expanduser(), account=account)
    client.put(Path("photo.jpg"))
    client.get("photo.jpg", Path("copy.jpg"))
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, RefusedError, UserError, VerificationError
from agents.storage.files import codec
from agents.storage.files.fetch import NodeStats, read_segments
from agents.storage.files.manifest import Manifest, RenterStore
from agents.storage.files.transport import NodeClient, NodeError, ShardMissing
from agents.storage.files.upload import Progress, Target, Uploader
from agents.storage.market import DEFAULT_MARKETPLACE, StorageMarket
from protocol.storage import ShardRef, StorageNodePublic

logger = logging.getLogger(__name__)

WINDOW_SEGMENTS = 4


@dataclass
class ObjectInfo:
    name: str
    object_id: str
    size: int
    k: int
    n: int
    segments: int
    created_at: float
    problem: str | None = None


@dataclass
class GetResult:
    manifest: Manifest
    path: Path | None
    seconds: float
    failed_nodes: list[str] = field(default_factory=list)
    corrupt_nodes: list[str] = field(default_factory=list)


@dataclass
class RmResult:
    name: str
    deleted: int
    missing: int
    failed: int
    forgotten: bool


class StorageClient:
    """Files stored on the network for one renter account, recorded in `home`."""

    def __init__(
        self,
        *,
        home: Path,
        account: LocalAccount,
        marketplace: str | None = DEFAULT_MARKETPLACE,
        concurrency: int = 16,
        hedge: int = 1,
        window: int = WINDOW_SEGMENTS,
    ) -> None:
        self.home = home
        self.account = account
        self.store = RenterStore(home, account)
        self.nodes = NodeClient(account)
        self.market = StorageMarket(marketplace, account) if marketplace else None
        self.concurrency = concurrency
        self.hedge = hedge
        self.window = window
        self.uploader = Uploader(self.nodes, self.market, concurrency=concurrency, window=window)

    def close(self) -> None:
        self.nodes.close()
        if self.market is not None:
            self.market.close()

    def __enter__(self) -> StorageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ put

    def put(
        self,
        path: Path,
        *,
        name: str | None = None,
        k: int = 8,
        n: int = 12,
        segment_bytes: int = codec.SEGMENT_BYTES,
        progress: Progress | None = None,
    ) -> Manifest:
        """Store the file at `path` as `name` (default: its file name)."""
        if not path.is_file():
            raise UserError(f"no file at {path}; give the path of a file to store")
        with open(path, "rb") as fh:
            return self.put_stream(
                fh,
                size=os.fstat(fh.fileno()).st_size,
                name=name or path.name,
                k=k,
                n=n,
                segment_bytes=segment_bytes,
                progress=progress,
            )

    def put_bytes(
        self,
        data: bytes,
        *,
        name: str,
        k: int = 8,
        n: int = 12,
        segment_bytes: int = codec.SEGMENT_BYTES,
        progress: Progress | None = None,
    ) -> Manifest:
        """Store `data` as `name`."""
        return self.put_stream(
            io.BytesIO(data),
            size=len(data),
            name=name,
            k=k,
            n=n,
            segment_bytes=segment_bytes,
            progress=progress,
        )

    def put_stream(
        self,
        fh: BinaryIO,
        *,
        size: int,
        name: str,
        k: int = 8,
        n: int = 12,
        segment_bytes: int = codec.SEGMENT_BYTES,
        progress: Progress | None = None,
    ) -> Manifest:
        """Store `size` bytes read from `fh` as `name`."""
        codec.check_kn(k, n)
        if not 4096 <= segment_bytes <= 64 * 2**20:
            raise UserError("the segment size must be between 4KB and 64MB")
        if self.store.exists(name):
            raise UserError(f"an object named {name!r} is stored already; rm it or pick --name")
        self.uploader.require_market("put")
        object_id = codec.random_id()
        segments = codec.segment_count(size, segment_bytes)
        bound = codec.shard_bytes_bound(min(size, segment_bytes), k)
        targets = self.uploader.placement(n=n, segments=segments, shard_bytes=bound)
        key = codec.new_key()
        self.store.store_key(object_id, key)
        uploaded: list[tuple[str, str]] = []  # (endpoint, shard id), for clean-up on failure
        try:
            refs, digest = self.uploader.upload(
                fh,
                object_id=object_id,
                key=key,
                size=size,
                coder=codec.Coder(k, n),
                segment_bytes=segment_bytes,
                targets=targets,
                uploaded=uploaded,
                progress=progress,
            )
            manifest = Manifest(
                object_id=object_id,
                name=name,
                size=size,
                sha256=digest,
                created_at=time.time(),
                owner=self.account.address,
                k=k,
                n=n,
                segment_bytes=segment_bytes,
                backend=codec.BACKEND,
                cipher=codec.CIPHER,
                segments=refs,
            )
            self.store.save(manifest)
        except BaseException:
            self.uploader.discard(uploaded)
            (self.store.keyring / f"{object_id}.key").unlink(missing_ok=True)
            raise
        logger.info("stored %s (%d bytes, %d segments)", name, size, segments)
        return manifest

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
        """Store one shard outside `exclude` (see :meth:`Uploader.store_shard`)."""
        return self.uploader.store_shard(
            data, index=index, exclude=exclude, lock=lock, first=first, sha256=sha256
        )

    # ------------------------------------------------------------------ get

    def get(
        self,
        name: str,
        dest: Path,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> GetResult:
        """Fetch the object `name` into the file `dest` (created whole, or not at all)."""
        manifest = self.store.find(name)
        if dest.exists() and not overwrite:
            raise UserError(f"{dest} exists; choose another path or pass --overwrite")
        if dest.is_dir():
            raise UserError(f"{dest} is a folder; give a file path")
        key = self.store.load_key(manifest.object_id)
        tmp = dest.with_name(f".{dest.name}.{codec.random_id()[:8]}.part")
        replacing = dest.exists()
        start = time.perf_counter()
        stats = NodeStats()
        try:
            with open(tmp, "wb") as out:
                for plain in self._segments(manifest, key, stats):
                    out.write(plain)
                    if progress is not None:
                        progress(len(plain))
                if replacing:  # the old file goes only once the new one is on disk
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            self.send_reports(stats)
        return GetResult(
            manifest=manifest,
            path=dest,
            seconds=time.perf_counter() - start,
            failed_nodes=stats.failed_nodes(),
            corrupt_nodes=stats.corrupt_nodes(),
        )

    def get_bytes(self, name: str) -> bytes:
        manifest = self.store.find(name)
        key = self.store.load_key(manifest.object_id)
        stats = NodeStats()
        try:
            return b"".join(self._segments(manifest, key, stats))
        finally:
            self.send_reports(stats)

    def _segments(self, manifest: Manifest, key: bytes, stats: NodeStats) -> Iterator[bytes]:
        """The object's plaintext segments in order, `window` segments fetched, decoded and
        decrypted ahead on worker threads."""
        endpoints = self.endpoints()
        total = 0
        with self._pools() as (shard_pool, seg_pool):
            for plain in read_segments(
                self.nodes,
                manifest.segments,
                object_id=manifest.object_id,
                key=key,
                coder=codec.Coder(manifest.k, manifest.n),
                stats=stats,
                shard_pool=shard_pool,
                seg_pool=seg_pool,
                window=self.window,
                hedge=self.hedge,
                endpoint_of=lambda shard: endpoints.get(shard.node, shard.endpoint),
            ):
                total += len(plain)
                yield plain
        # Each segment's GCM tag proved its bytes, its place and its size, and the manifest
        # (MAC-checked) lists every segment: the object is whole. A plaintext hash pass
        # over it all would prove nothing more.
        if total != manifest.size:
            raise VerificationError(
                f"{manifest.name} reassembled to {total} bytes, not {manifest.size}; "
                "nothing was written"
            )

    @contextmanager
    def _pools(self) -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
        shard_pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="shard")
        seg_pool = ThreadPoolExecutor(self.window, thread_name_prefix="segment")
        try:
            yield shard_pool, seg_pool
        finally:
            seg_pool.shutdown(wait=True, cancel_futures=True)
            shard_pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ ls, rm

    def ls(self) -> list[ObjectInfo]:
        """Every object this renter stored, with a problem when its manifest is unusable."""
        out: list[ObjectInfo] = []
        for path, entry in self.store.entries():
            if isinstance(entry, Manifest):
                out.append(
                    ObjectInfo(
                        name=entry.name,
                        object_id=entry.object_id,
                        size=entry.size,
                        k=entry.k,
                        n=entry.n,
                        segments=len(entry.segments),
                        created_at=entry.created_at,
                    )
                )
            else:
                out.append(ObjectInfo(path.stem, path.stem, 0, 0, 0, 0, 0.0, problem=str(entry)))
        return sorted(out, key=lambda o: o.name)

    def rm(self, name: str, *, force: bool = False) -> RmResult:
        """Delete the object's shards from their nodes, then forget it.

        When some nodes cannot be reached the object is kept (run rm again later) unless
        `force`, which forgets it anyway and leaves those shards to their nodes.
        """
        manifest = self.store.find(name)
        with self.store.locked(manifest.object_id):
            endpoints = self.endpoints()
            shards = [(s.node, s.id, s.endpoint) for seg in manifest.segments for s in seg.shards]
            shards += [(r.node, r.id, r.endpoint) for r in manifest.retired]

            def delete(item: tuple[str, str, str]) -> str:
                node, shard_id, endpoint = item
                try:
                    return (
                        "deleted"
                        if self.nodes.delete(endpoints.get(node, endpoint), shard_id)
                        else "missing"
                    )
                except ShardMissing:
                    return "missing"
                except NodeError as exc:
                    logger.warning("could not delete shard %s from %s: %s", shard_id, node, exc)
                    return "failed"

            with ThreadPoolExecutor(self.concurrency) as pool:
                outcomes = list(pool.map(delete, shards))
            failed = outcomes.count("failed")
            if failed and not force:
                raise RefusedError(
                    f"{failed} of {len(shards)} shards of {name!r} could not be deleted (their "
                    "nodes are unreachable); the object is kept: run `dcloud file rm` again "
                    "later, or add --force to forget it anyway"
                )
            self.store.delete(manifest)
        return RmResult(
            name=name,
            deleted=outcomes.count("deleted"),
            missing=outcomes.count("missing"),
            failed=failed,
            forgotten=True,
        )

    # ------------------------------------------------------------------ helpers

    def endpoints(self) -> dict[str, str]:
        """Current endpoint of every node the marketplace knows (empty if unreachable)."""
        if self.market is None:
            return {}
        try:
            nodes: list[StorageNodePublic] = self.market.nodes()
        except AgentError as exc:
            logger.warning("using the endpoints in the manifest: %s", exc)
            return {}
        return {n.address: n.endpoint for n in nodes}

    def send_reports(self, stats: NodeStats) -> None:
        """Tell the marketplace what we saw of each node (best effort)."""
        reports = stats.reports()
        if self.market is None or not reports:
            return
        try:
            self.market.report(reports)
        except AgentError as exc:
            logger.warning("could not report node statistics: %s", exc)
