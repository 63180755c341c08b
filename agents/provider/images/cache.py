"""The images this agent pulled, and the disk quota its owner sets for them.

Every image the agent pulls is recorded (``<home>/images.db``): its digest (its image id
in the engine), the reference it was pulled for, its bytes, when it was pulled and last
used. Before a pull the cache makes room: it removes the least recently used pulled
images that no container uses (running or stopped), and none that a job or service of
this agent still needs, until the new image fits the quota; if it cannot fit, the pull is
refused. Only images recorded here are ever removed, never the operator's own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors

from agents.errors import AgentError, RefusedError
from agents.provider.local_db import LocalDB
from agents.provider.services.engine import engine as _engine

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    pulled_at REAL NOT NULL,
    last_used REAL NOT NULL
);
"""


@dataclass(frozen=True)
class CachedImage:
    digest: str
    ref: str
    bytes: int
    pulled_at: float
    last_used: float


class ImageStore(LocalDB):
    """The pulled images' table; thread-safe."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def record(self, digest: str, ref: str, size: int) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO images (digest, ref, bytes, pulled_at, last_used) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(digest) DO UPDATE SET "
                "ref = excluded.ref, bytes = excluded.bytes, last_used = excluded.last_used",
                (digest, ref, size, now, now),
            )

    def touch(self, digest: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE images SET last_used = ? WHERE digest = ?", (time.time(), digest)
            )

    def get(self, digest: str) -> CachedImage | None:
        with self._lock:
            row = self._db.execute(
                "SELECT digest, ref, bytes, pulled_at, last_used FROM images WHERE digest = ?",
                (digest,),
            ).fetchone()
        return CachedImage(*row) if row else None

    def all(self) -> list[CachedImage]:
        """Most recently used first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT digest, ref, bytes, pulled_at, last_used FROM images "
                "ORDER BY last_used DESC"
            ).fetchall()
        return [CachedImage(*r) for r in rows]

    def remove(self, digest: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM images WHERE digest = ?", (digest,))


class ImageCache:
    """Pulled images in the engine, under `quota_bytes`.

    Args:
        needed: the digests this agent's unfinished jobs and live services name (their
            containers may not exist yet); never evicted.
    """

    def __init__(
        self,
        *,
        client: Any,
        store: ImageStore,
        quota_bytes: int,
        needed: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.client = client
        self.store = store
        self.quota_bytes = quota_bytes
        self.needed = needed

    def present(self, digest: str) -> bool:
        """Whether the engine holds an image whose id is `digest`."""
        with _engine("look up an image"):
            try:
                image = self.client.images.get(digest)
            except docker.errors.APIError as exc:
                if exc.is_client_error():
                    return False
                raise
        return str(image.id) == digest

    def held(self, limit: int = 100) -> list[str]:
        """Digests of pulled images the engine holds, most recently used first."""
        with _engine("list images"):
            ids = {str(i) for i in self.client.api.images(all=True, quiet=True)}
        return [c.digest for c in self.store.all() if c.digest in ids][:limit]

    def in_use(self) -> set[str]:
        """Image ids used by any container (running or not), and the ones still needed."""
        with _engine("list containers"):
            found = self.client.containers.list(all=True, sparse=True)
        return {str(c.attrs.get("ImageID", "")) for c in found} | set(self.needed())

    def used_bytes(self) -> int:
        """Bytes of the pulled images the engine still holds."""
        held = set(self.held(limit=1_000_000))
        return sum(c.bytes for c in self.store.all() if c.digest in held)

    def make_room(self, size: int, *, keep: str = "") -> list[str]:
        """Evict least recently used pulled images no container uses until `size` more
        bytes fit the quota; returns the digests removed.

        Raises:
            RefusedError: the image cannot fit even with every unused pulled image gone.
        """
        if size > self.quota_bytes:
            raise RefusedError(self._too_big(size, 0))
        held = self.held(limit=1_000_000)
        entries = {c.digest: c for c in self.store.all()}
        used = sum(entries[d].bytes for d in held)
        if used + size <= self.quota_bytes:
            return []
        busy = self.in_use() | {keep}
        evictable = [d for d in reversed(held) if d not in busy]  # least recently used first
        free_after = self.quota_bytes - used + sum(entries[d].bytes for d in evictable)
        if size > free_after:
            raise RefusedError(self._too_big(size, used - sum(entries[d].bytes for d in evictable)))
        removed: list[str] = []
        for digest in evictable:
            if used + size <= self.quota_bytes:
                break
            self.evict(digest)
            used -= entries[digest].bytes
            removed.append(digest)
        return removed

    def evict(self, digest: str) -> None:
        """Remove a pulled image from the engine and the table (never another image)."""
        if self.store.get(digest) is None:
            raise AgentError(f"{digest} was not pulled by this agent; it is not removed")
        logger.info("evicting a pulled image", extra={"digest": digest})
        with _engine("remove a pulled image"), contextlib.suppress(docker.errors.NotFound):
            self.client.images.remove(digest, force=True, noprune=False)
        self.store.remove(digest)

    def _too_big(self, size: int, pinned: int) -> str:
        return (
            f"the image needs {size / 2**20:.1f} MB and this provider's image cache holds "
            f"{self.quota_bytes / 2**20:.0f} MB, {pinned / 2**20:.1f} MB of it for images in "
            "use: it cannot fit now; pick another provider (or, as its owner, raise "
            "image_cache_mb)"
        )
