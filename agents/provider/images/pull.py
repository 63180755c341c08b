"""The provider's pull of a renter's image: check, make room, fetch, check, load.

:meth:`ImagePuller.ensure` is what a job's or service's push calls when its spec names a
pinned image (``name@sha256:<digest>``). An image the engine holds already (its id is the
digest) is used as it is. Otherwise the push must carry the image's source, and:

1. the source is checked against the pin before anything is fetched
   (:func:`.source.check_source`: the config hashes to the digest, its layers are the
   source's, the size fits this provider's limit);
2. leading layers the engine already holds (a base image, say) are neither fetched nor
   loaded again (:func:`.load.held_prefix`);
3. the cache makes room under its quota (:class:`.cache.ImageCache`);
4. the grants are posted and the remaining layers fetched in parallel, each hashed to
   its diff_id and its tarball inspected (:mod:`.layers`, :mod:`.tarcheck`);
5. only then the image is loaded, and its id checked against the digest (:mod:`.load`).

Any refusal leaves the engine as it was. Two pushes of the same image pull it once.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from agents.errors import RefusedError
from agents.provider.images.cache import ImageCache, ImageStore
from agents.provider.images.layers import fetch_layers, pools, post_grants
from agents.provider.images.load import held_prefix, load_image
from agents.provider.images.source import (
    CheckedImage,
    check_source,
    engine_image,
    pinned_digest,
)
from agents.storage.files.codec import random_id
from agents.storage.files.fetch import NodeStats
from agents.storage.files.transport import NodeClient
from protocol.images import ImageSource, is_pinned

logger = logging.getLogger(__name__)

HELD_IN_HEARTBEAT = 100


@dataclass(frozen=True)
class PullReport:
    """What the last pull of an image did (for logs, tests and benchmarks)."""

    digest: str
    cached: bool
    layers: int
    fetched_layers: int
    fetched_bytes: int
    seconds: float
    fetch_seconds: float = 0.0
    load_seconds: float = 0.0
    evicted: tuple[str, ...] = ()


class ImagePuller:
    """Renters' images for one agent.

    Args:
        client: the Docker client.
        account: the provider's account (grants are posted as it; layer keys open with it).
        home: the agent's folder (``images.db`` and the ``image-cache/`` staging folder).
        max_image_bytes: the largest image pulled (sum of its layers).
        quota_bytes: the disk the owner lends to pulled images.
        needed: the images this agent's unfinished jobs and live services name.
    """

    def __init__(
        self,
        *,
        client: Any,
        account: LocalAccount,
        home: Path,
        max_image_bytes: int,
        quota_bytes: int,
        needed: Callable[[], Iterable[str]] = tuple,
        concurrency: int = 32,
        window: int = 8,
    ) -> None:
        self.client = client
        self.account = account
        self.max_image_bytes = max_image_bytes
        self.store = ImageStore(home / "images.db")
        self.cache = ImageCache(client=client, store=self.store, quota_bytes=quota_bytes)
        self.cache.needed = lambda: {engine_image(r) for r in needed() if is_pinned(r)}
        self.staging = home / "image-cache"
        self.concurrency = concurrency
        self.window = window
        self.nodes = NodeClient(account)
        self.last: PullReport | None = None
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._pulling = 0  # bytes of pulls under way

    def close(self) -> None:
        self.nodes.close()
        self.store.close()

    def cached(self, ref: str) -> bool:
        """Whether the engine holds the pinned image already."""
        return self.cache.present(pinned_digest(ref))

    def held(self) -> list[str]:
        """Digests of pulled images held, most recently used first (for heartbeats)."""
        return self.cache.held(HELD_IN_HEARTBEAT)

    def ensure(self, ref: str, source: ImageSource | None) -> str:
        """The engine's image id for the pinned `ref`, pulled from `source` if needed.

        Raises:
            RefusedError: no source and not held here, too large, or no room.
            VerificationError: the source, a layer or the loaded image is not the pinned
                image (nothing was loaded).
            AgentError: too few shards could be fetched, or the engine failed.
        """
        digest = pinned_digest(ref)
        with self._lock:
            lock = self._locks.setdefault(digest, threading.Lock())
        with lock:
            start = time.perf_counter()
            if self.cache.present(digest):
                self.store.touch(digest)
                self.last = PullReport(digest, True, 0, 0, 0, time.perf_counter() - start)
                return digest
            if source is None:
                raise RefusedError(
                    f"this provider does not hold the image {ref}; push the image with the "
                    "job or service (the renter's SDK sends its source when the spec names "
                    "an image pushed with `dcloud image push`)"
                )
            return self._pull(check_source(source, ref, max_bytes=self.max_image_bytes), start)

    def _pull(self, image: CheckedImage, start: float) -> str:
        source = image.source
        skip = held_prefix(self.client, image.diff_ids)  # by position: a layer may repeat
        todo = list({layer.diff_id: layer for layer in source.layers[skip:]}.values())
        size = sum(layer.size for layer in todo)
        with self._lock:  # pulls of other images at the same time count as used
            evicted = self.cache.make_room(size + self._pulling, keep=image.digest)
            self._pulling += size
        folder = self.staging / f"{image.digest.removeprefix('sha256:')[:16]}-{random_id()[:8]}"
        folder.mkdir(parents=True)
        stats = NodeStats()
        try:
            with pools(shards=self.concurrency, window=self.window) as pool:
                post_grants(self.nodes, source.grants, todo, pool)
                files = fetch_layers(
                    todo,
                    folder,
                    account=self.account,
                    nodes=self.nodes,
                    stats=stats,
                    pool=pool,
                    max_member_bytes=self.max_image_bytes,
                )
            fetched = time.perf_counter()
            load_image(
                self.client,
                digest=image.digest,
                config=image.config,
                diff_ids=image.diff_ids,
                layers=files,
            )
            self.store.record(image.digest, image.ref, size)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                self._pulling -= size
        end = time.perf_counter()
        self.last = PullReport(
            digest=image.digest,
            cached=False,
            layers=len(image.diff_ids),
            fetched_layers=len(files),
            fetched_bytes=size,
            seconds=end - start,
            fetch_seconds=fetched - start,
            load_seconds=end - fetched,
            evicted=tuple(evicted),
        )
        logger.info(
            "image pulled",
            extra={
                "image": image.ref,
                "layers": len(image.diff_ids),
                "fetched_layers": len(files),
                "bytes": size,
                "seconds": round(end - start, 3),
                "failed_nodes": stats.failed_nodes(),
                "corrupt_nodes": stats.corrupt_nodes(),
            },
        )
        return image.digest
