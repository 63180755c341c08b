"""A storage node's shards on disk, under the quota its owner set.

Layout under the node's folder::

    shards/<id[:2]>/<id>        the shard's bytes
    shards/<id[:2]>/<id>.json   its record: owner, size, sha256, stored_at

A shard is written to a temporary file, fsynced and renamed into place, then its record
likewise; a shard without a record (a crash between the two) is not counted and is
removed at start. The quota counts shard bytes; space is reserved before a write starts,
so concurrent writes can never together pass it. A shard is never overwritten: storing
the same bytes again under the same id is a no-op, other bytes are refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agents.errors import AgentError

logger = logging.getLogger(__name__)


class ShardError(AgentError):
    """Base of the shard store's refusals; ``status`` is the HTTP status that says it."""

    status = 400


class QuotaExceededError(ShardError):
    status = 507


class ShardNotFoundError(ShardError):
    status = 404


class NotOwnerError(ShardError):
    status = 403


class ShardConflictError(ShardError):
    status = 409


class ShardMismatchError(ShardError):
    status = 422


class InvalidShardRequestError(ShardError):
    status = 422


@dataclass(frozen=True)
class ShardRecord:
    id: str
    owner: str
    size: int
    sha256: str
    stored_at: float


class ShardStore:
    """Shards on disk with owners and a byte quota (thread-safe)."""

    def __init__(self, root: Path, *, quota_bytes: int, fsync: bool = True) -> None:
        self.root = root
        self.quota_bytes = quota_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._used = 0
        self._reserved = 0
        self._count = 0
        self._busy: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)
        self._scan()

    # -------------------------------------------------------------- accounting

    def _scan(self) -> None:
        for data in self.root.glob("??/*"):
            if data.name.startswith("."):
                data.unlink(missing_ok=True)  # a write interrupted by a crash
                continue
            if data.suffix == ".json":
                continue
            record = self._record_path(data.name)
            if not record.exists():
                logger.warning("removing shard %s stored without a record", data.name)
                data.unlink(missing_ok=True)
                continue
            self._used += data.stat().st_size
            self._count += 1

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._used

    @property
    def free_bytes(self) -> int:
        with self._lock:
            return max(0, self.quota_bytes - self._used - self._reserved)

    @property
    def shard_count(self) -> int:
        with self._lock:
            return self._count

    def _data_path(self, shard_id: str) -> Path:
        return self.root / shard_id[:2] / shard_id

    def _record_path(self, shard_id: str) -> Path:
        return self.root / shard_id[:2] / f"{shard_id}.json"

    # -------------------------------------------------------------- operations

    def record(self, shard_id: str) -> ShardRecord:
        try:
            body = json.loads(self._record_path(shard_id).read_text())
        except FileNotFoundError:
            raise ShardNotFoundError(f"no shard {shard_id} on this node") from None
        return ShardRecord(**body)

    def reserve(self, shard_id: str, size: int) -> None:
        """Hold `size` bytes of the quota for a write of `shard_id` about to start.

        Raises:
            QuotaExceededError: the quota cannot hold it.
            ShardConflictError: another write of the same id is in progress.
        """
        with self._lock:
            if shard_id in self._busy:
                raise ShardConflictError(f"shard {shard_id} is being written by another request")
            free = self.quota_bytes - self._used - self._reserved
            if size > free:
                raise QuotaExceededError(
                    f"this node's quota is full: the shard needs {size} bytes and "
                    f"{max(0, free)} of {self.quota_bytes} are free; store it on another node"
                )
            self._reserved += size
            self._busy.add(shard_id)

    def release(self, shard_id: str, size: int) -> None:
        with self._lock:
            self._reserved -= size
            self._busy.discard(shard_id)

    def put(self, shard_id: str, *, owner: str, data: bytes, sha256: str) -> bool:
        """Store a shard (after :meth:`reserve`); False when the same bytes were there.

        Raises:
            ShardMismatchError: `data` does not hash to `sha256`.
            ShardConflictError: the id holds other bytes or belongs to another owner.
        """
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ShardMismatchError(
                f"the body hashes to {actual}, not the signed sha256 {sha256}; send it again"
            )
        try:
            existing = self.record(shard_id)
        except ShardNotFoundError:
            existing = None
        if existing is not None:
            if existing.owner == owner and existing.sha256 == sha256:
                return False
            raise ShardConflictError(
                f"shard {shard_id} already holds other content; shards are never overwritten "
                "(use a new id)"
            )
        path = self._data_path(shard_id)
        path.parent.mkdir(exist_ok=True)
        self._write(path, data)
        record = ShardRecord(
            id=shard_id, owner=owner, size=len(data), sha256=sha256, stored_at=time.time()
        )
        self._write(self._record_path(shard_id), json.dumps(record.__dict__).encode())
        with self._lock:
            self._used += len(data)
            self._count += 1
        return True

    def get(self, shard_id: str, *, owner: str) -> tuple[ShardRecord, bytes]:
        """The shard's record and bytes, for its owner only."""
        record = self.owned(shard_id, owner)
        return record, self.read(shard_id)

    def read(self, shard_id: str) -> bytes:
        """The shard's bytes as they are on disk, for anyone in this process (audits)."""
        try:
            return self._data_path(shard_id).read_bytes()
        except FileNotFoundError:
            raise ShardNotFoundError(f"no shard {shard_id} on this node") from None

    def verify(self, shard_id: str, *, owner: str) -> tuple[ShardRecord, str]:
        """The record and the sha256 of the bytes on disk now (detects rot)."""
        record = self.owned(shard_id, owner)
        return record, hashlib.sha256(self.read(shard_id)).hexdigest()

    def delete(self, shard_id: str, *, owner: str) -> None:
        record = self.owned(shard_id, owner)
        with self._lock:
            if shard_id in self._busy:
                raise ShardConflictError(f"shard {shard_id} is being written by another request")
            self._busy.add(shard_id)
        try:
            self._record_path(shard_id).unlink(missing_ok=True)
            self._data_path(shard_id).unlink(missing_ok=True)
            with self._lock:
                self._used -= record.size
                self._count -= 1
        finally:
            with self._lock:
                self._busy.discard(shard_id)

    def owned(self, shard_id: str, owner: str) -> ShardRecord:
        """The shard's record, if `owner` owns it."""
        record = self.record(shard_id)
        if record.owner != owner:
            raise NotOwnerError(f"shard {shard_id} belongs to another account; only its owner may")
        return record

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
