"""Read grants a storage node holds: which accounts may read which of an owner's shards.

A renter lets one provider read the shards of its image's layers on this node with a
:class:`protocol.images.SignedGrant` (the owner signs: these shards, this grantee, this
node, until then). The grantee posts it (``POST /v1/grants``); the node checks it and
keeps it in memory until it expires. ``GET /v1/shards/{id}`` signed by the grantee then
succeeds while an unexpired grant *from the shard's owner* lists that shard; a grant
never gives meta, proofs or deletion, and an owner cannot grant what it does not own
(the owner is compared with the shard's record when it is read).

The book is bounded: at most :data:`MAX_GRANTS` grants and :data:`MAX_ENTRIES` (grantee,
shard) entries in all, and :data:`MAX_ENTRIES_PER_GRANTEE` for one grantee; expired
grants are dropped first, then a full book refuses new grants (the grantee retries after
some expire). Grants are lost when the node restarts; the grantee posts them again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from agents.storage.node.store import ShardError
from protocol.images import ReadGrant

MAX_GRANTS = 100_000
MAX_ENTRIES = 4_000_000
MAX_ENTRIES_PER_GRANTEE = 1_000_000
PRUNE_EVERY_MS = 10_000


class GrantBookFullError(ShardError):
    """The node holds as many grants as it will; try again when some expire."""

    status = 503


@dataclass(frozen=True)
class _Held:
    owner: str
    grantee: str
    expires_ms: int
    shards: frozenset[str]


class GrantBook:
    """Unexpired read grants by (grantee, shard); thread-safe."""

    def __init__(
        self,
        *,
        max_grants: int = MAX_GRANTS,
        max_entries: int = MAX_ENTRIES,
        max_per_grantee: int = MAX_ENTRIES_PER_GRANTEE,
    ) -> None:
        self.max_grants = max_grants
        self.max_entries = max_entries
        self.max_per_grantee = max_per_grantee
        self._lock = threading.Lock()
        self._grants: dict[tuple[str, str, int, frozenset[str]], _Held] = {}
        self._index: dict[tuple[str, str], list[_Held]] = {}
        self._per_grantee: dict[str, int] = {}
        self._entries = 0
        self._pruned_ms = 0

    @property
    def size(self) -> tuple[int, int]:
        """(grants, entries) held now."""
        with self._lock:
            return len(self._grants), self._entries

    def add(self, grant: ReadGrant, *, now_ms: int | None = None) -> None:
        """Hold a checked grant (``protocol.images.verify_grant``) until it expires.

        Raises:
            GrantBookFullError: the book is full even after dropping expired grants.
        """
        now = _now_ms() if now_ms is None else now_ms
        held = _Held(
            owner=grant.owner.lower(),
            grantee=grant.grantee.lower(),
            expires_ms=grant.expires_ms,
            shards=frozenset(grant.shards),
        )
        key = (held.owner, held.grantee, held.expires_ms, held.shards)
        with self._lock:
            if key in self._grants:
                return  # posted again (a retry): nothing changes
            if now - self._pruned_ms > PRUNE_EVERY_MS or self._full(held, now):
                self._prune(now)
            if self._full(held, now):
                raise GrantBookFullError(
                    "this node holds as many read grants as it will now; post the grant "
                    "again in a few minutes, when older ones have expired"
                )
            self._grants[key] = held
            for shard in held.shards:
                self._index.setdefault((held.grantee, shard), []).append(held)
            self._per_grantee[held.grantee] = self._per_grantee.get(held.grantee, 0) + len(
                held.shards
            )
            self._entries += len(held.shards)

    def allows(self, shard_id: str, *, owner: str, reader: str, now_ms: int | None = None) -> bool:
        """Whether an unexpired grant from `owner` lets `reader` read `shard_id`."""
        now = _now_ms() if now_ms is None else now_ms
        with self._lock:
            held = self._index.get((reader.lower(), shard_id), [])
            return any(h.owner == owner.lower() and h.expires_ms > now for h in held)

    def _full(self, held: _Held, now: int) -> bool:
        """Whether `held` does not fit (under the lock)."""
        return (
            len(self._grants) >= self.max_grants
            or self._entries + len(held.shards) > self.max_entries
            or self._per_grantee.get(held.grantee, 0) + len(held.shards) > self.max_per_grantee
        )

    def _prune(self, now: int) -> None:
        """Drop expired grants (under the lock)."""
        self._pruned_ms = now
        for key, held in list(self._grants.items()):
            if held.expires_ms > now:
                continue
            del self._grants[key]
            for shard in held.shards:
                entries = self._index.get((held.grantee, shard), [])
                entries[:] = [h for h in entries if h is not held]
                if not entries:
                    self._index.pop((held.grantee, shard), None)
            left = self._per_grantee.get(held.grantee, 0) - len(held.shards)
            if left > 0:
                self._per_grantee[held.grantee] = left
            else:
                self._per_grantee.pop(held.grantee, None)
            self._entries -= len(held.shards)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
