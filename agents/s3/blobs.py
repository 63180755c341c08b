"""Blobs: the stored objects an S3 object is made of, over the renter's storage client.

Every blob is an object of :class:`~agents.storage.files.client.StorageClient` in the S3
folder (its manifest and key under ``objects/`` and ``keyring/`` there, so ``dcloud file
health|repair --home <renter>/s3`` looks after them too), found by its object id rather
than by name. Writes stream through ``put_stream``; reads fetch only the segments a range
touches. Trouble with the nodes or the marketplace becomes :class:`S3Unavailable` (503):
the request may be retried and nothing recorded is lost.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, RefusedError, UserError
from agents.s3.errors import S3Error, S3Unavailable
from agents.s3.index import Blob, Index
from agents.storage.files import codec
from agents.storage.files.client import StorageClient
from agents.storage.files.fetch import NodeStats, read_segments
from agents.storage.files.manifest import Manifest, RenterStore

logger = logging.getLogger(__name__)

ENDPOINTS_TTL_S = 10.0
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _ById(RenterStore):
    """The renter's records in the S3 folder, where a blob is named by its object id."""

    def find(self, name: str) -> Manifest:
        path = self.objects / f"{name}.json"
        if not path.is_file():
            raise UserError(f"no blob {name} in {self.objects}")
        return self.load(path)

    def exists(self, name: str) -> bool:
        return False  # blob names are labels only: lookups go by object id


class BlobClient(StorageClient):
    """The storage client over the S3 folder `home` (the renter's key unlocks it)."""

    def __init__(
        self, *, home: Path, account: LocalAccount, marketplace: str | None, **kw: int
    ) -> None:
        super().__init__(home=home, account=account, marketplace=marketplace, **kw)
        self.store = _ById(home, account)


def label(bucket: str, key: str, suffix: str = "") -> str:
    """A readable name for a blob (what ``dcloud file ls`` shows): bucket/key, shortened."""
    text = _UNPRINTABLE.sub("?", f"{bucket}/{key}")
    return (text[: 240 - len(suffix)] + suffix) or "blob"


def unavailable(exc: AgentError) -> S3Unavailable:
    return S3Unavailable(f"The storage network cannot serve this now, retry later: {exc}")


class Blobs:
    """Store, read and delete blobs; what the nodes cannot do now becomes a 503."""

    def __init__(self, client: StorageClient, index: Index, *, k: int, n: int) -> None:
        self.client = client
        self.index = index
        self.k, self.n = k, n
        self._lock = threading.Lock()
        self._endpoints_cache: dict[str, str] = {}
        self._endpoints_at = -ENDPOINTS_TTL_S

    def put(self, body: Readable, *, size: int, name: str) -> Blob:
        """Store `size` bytes from `body`; S3 errors the body raises pass through."""
        try:
            manifest = self.client.put_stream(
                body,  # type: ignore[arg-type]  # a file-like read(n) is all it uses
                size=size,
                name=name,
                k=self.k,
                n=self.n,
            )
        except S3Error:
            raise
        except AgentError as exc:
            raise unavailable(exc) from None
        self.index.pending_blob(manifest.object_id)
        return Blob(manifest.object_id, size)

    def read(self, blobs: list[Blob], start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of the blobs laid end to end, fetching only the
        segments they touch."""
        offset = 0
        for blob in blobs:
            lo, hi = max(start - offset, 0), min(end - offset, blob.size - 1)
            if lo <= hi:
                yield from self._read_blob(blob.object_id, lo, hi)
            offset += blob.size
            if offset > end:
                return

    def _read_blob(self, object_id: str, lo: int, hi: int) -> Iterator[bytes]:
        store = self.client.store
        try:
            manifest = store.find(object_id)
            key = store.load_key(object_id)
        except AgentError as exc:
            raise S3Error(
                "InternalError", f"a part of this object is unreadable here: {exc}"
            ) from None
        chosen, first = [], None
        pos = 0
        for seg in manifest.segments:
            if pos + seg.plain_size > lo and pos <= hi:
                chosen.append(seg)
                first = pos if first is None else first
            pos += seg.plain_size
        if not chosen or first is None:
            return
        endpoints = self._endpoints()
        stats = NodeStats()
        window = self.client.window
        shard_pool = ThreadPoolExecutor(self.client.concurrency, thread_name_prefix="s3-shard")
        seg_pool = ThreadPoolExecutor(window, thread_name_prefix="s3-segment")
        try:
            pos = first
            for plain in read_segments(
                self.client.nodes,
                chosen,
                object_id=object_id,
                key=key,
                coder=codec.Coder(manifest.k, manifest.n),
                stats=stats,
                shard_pool=shard_pool,
                seg_pool=seg_pool,
                window=window,
                hedge=self.client.hedge,
                endpoint_of=lambda shard: endpoints.get(shard.node, shard.endpoint),
            ):
                a, b = max(lo - pos, 0), min(hi - pos + 1, len(plain))
                pos += len(plain)
                if a < b:
                    yield plain[a:b] if (a, b) != (0, len(plain)) else plain
        except S3Error:
            raise
        except AgentError as exc:
            raise unavailable(exc) from None
        finally:
            seg_pool.shutdown(wait=True, cancel_futures=True)
            shard_pool.shutdown(wait=True, cancel_futures=True)
            self.client.send_reports(stats)

    def _endpoints(self) -> dict[str, str]:
        """The nodes' current endpoints, asked of the marketplace at most every
        ENDPOINTS_TTL_S seconds (a parallel download's ranged GETs share one answer)."""
        with self._lock:
            if time.monotonic() - self._endpoints_at < ENDPOINTS_TTL_S:
                return self._endpoints_cache
        endpoints = self.client.endpoints()
        if endpoints:
            with self._lock:
                self._endpoints_cache, self._endpoints_at = endpoints, time.monotonic()
        return endpoints

    def delete(self, object_ids: list[str]) -> None:
        """Delete blobs from their nodes; those that cannot go now wait for the next sweep."""
        failed: list[str] = []
        for oid in object_ids:
            try:
                self.client.rm(oid)
            except UserError:
                pass  # gone already
            except (RefusedError, AgentError) as exc:
                logger.warning("blob %s kept for a later sweep: %s", oid, exc)
                failed.append(oid)
        if failed:
            self.index.add_garbage(failed)
        for oid in object_ids:
            if oid not in failed:
                self.index.forget_garbage(oid)

    def sweep(self, *, with_pending: bool = False) -> int:
        """Delete the blobs waiting in garbage; how many are left."""
        todo = self.index.garbage(with_pending=with_pending)
        if todo:
            self.index.add_garbage(todo)
            self.delete(todo)
        return len(self.index.garbage())
