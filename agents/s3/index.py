"""The S3 view's records: buckets, objects, multipart uploads and their parts, in SQLite.

An object is a list of *blobs*, each a stored object of the renter's storage client
(encrypted, erasure-coded, its manifest and key in the S3 folder); a single PUT makes one
blob, a multipart upload one per part. Blobs are counted by reference, so CopyObject and
a completed upload point at blobs instead of copying bytes; a blob whose count falls to
zero is returned to the caller to delete from the nodes, and one whose deletion failed
waits in ``garbage`` for the next sweep. Keys sort by their UTF-8 bytes (SQLite's binary
collation), as S3 lists them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
  bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
  modified REAL NOT NULL, info TEXT NOT NULL, blobs TEXT NOT NULL, PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
  info TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
  upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
  modified REAL NOT NULL, blob TEXT NOT NULL, checksums TEXT NOT NULL,
  PRIMARY KEY (upload_id, number));
CREATE TABLE IF NOT EXISTS blobs (object_id TEXT PRIMARY KEY, refs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS garbage (object_id TEXT PRIMARY KEY, pending INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Blob:
    object_id: str
    size: int


@dataclass
class Info:
    """What an object (or an upload, for its object) keeps beside its bytes."""

    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)  # cache-control, content-encoding...
    meta: dict[str, str] = field(default_factory=dict)  # x-amz-meta-*
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64
    checksum_algorithm: str | None = None  # an upload's declared algorithm

    def dump(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def load(cls, text: str) -> Info:
        return cls(**json.loads(text))


@dataclass
class ObjectRow:
    bucket: str
    key: str
    size: int
    etag: str
    modified: float
    info: Info
    blobs: list[Blob]


@dataclass
class UploadRow:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    info: Info


@dataclass
class PartRow:
    number: int
    size: int
    etag: str
    modified: float
    blob: str
    checksums: dict[str, str]


def _object(row: sqlite3.Row) -> ObjectRow:
    return ObjectRow(
        bucket=row["bucket"],
        key=row["key"],
        size=row["size"],
        etag=row["etag"],
        modified=row["modified"],
        info=Info.load(row["info"]),
        blobs=[Blob(oid, size) for oid, size in json.loads(row["blobs"])],
    )


class Index:
    """The records in ``<folder>/index.db`` (thread-safe: one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # ------------------------------------------------------------------ blobs

    @staticmethod
    def _ref(db: sqlite3.Connection, object_ids: list[str], delta: int) -> list[str]:
        """Add `delta` to each blob's count; the blobs left with none (forgotten here)."""
        freed: list[str] = []
        for oid in object_ids:
            db.execute(
                "INSERT INTO blobs (object_id, refs) VALUES (?, ?) "
                "ON CONFLICT (object_id) DO UPDATE SET refs = refs + excluded.refs",
                (oid, delta),
            )
            (refs,) = db.execute("SELECT refs FROM blobs WHERE object_id = ?", (oid,)).fetchone()
            if refs <= 0:
                db.execute("DELETE FROM blobs WHERE object_id = ?", (oid,))
                freed.append(oid)
        return freed

    def pending_blob(self, object_id: str) -> None:
        """Note a freshly stored blob before a record holds it, so a crash in between leaves
        garbage the next start sweeps, never a stranded blob."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO garbage (object_id, pending) VALUES (?, 1) ON CONFLICT DO NOTHING",
                (object_id,),
            )

    @staticmethod
    def _claim(db: sqlite3.Connection, object_id: str) -> None:
        db.execute("DELETE FROM garbage WHERE object_id = ?", (object_id,))

    def garbage(self, *, with_pending: bool = False) -> list[str]:
        """Blobs to delete from the nodes (`with_pending`: at start, also those of puts that
        never finished)."""
        sql = "SELECT object_id FROM garbage" + ("" if with_pending else " WHERE pending = 0")
        return [r[0] for r in self._all(sql)]

    def forget_garbage(self, object_id: str) -> None:
        with self._tx() as db:
            self._claim(db, object_id)

    def add_garbage(self, object_ids: list[str]) -> None:
        with self._tx() as db:
            for oid in object_ids:
                db.execute(
                    "INSERT INTO garbage (object_id, pending) VALUES (?, 0) "
                    "ON CONFLICT (object_id) DO UPDATE SET pending = 0",
                    (oid,),
                )

    # ------------------------------------------------------------------ buckets

    def create_bucket(self, name: str) -> bool:
        """Whether the bucket is new (False: it existed already)."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO buckets (name, created) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (name, time.time()),
            )
            return cur.rowcount == 1

    def buckets(self) -> list[tuple[str, float]]:
        return [(r["name"], r["created"]) for r in self._all("SELECT * FROM buckets ORDER BY name")]

    def bucket_exists(self, name: str) -> bool:
        return bool(self._all("SELECT 1 FROM buckets WHERE name = ?", name))

    def delete_bucket(self, name: str) -> tuple[str, list[str]]:
        """'deleted', 'missing' or 'not-empty'; with the blobs of uploads it aborted."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
                return "missing", []
            if db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                return "not-empty", []
            freed: list[str] = []
            for (upload_id,) in db.execute(
                "SELECT upload_id FROM uploads WHERE bucket = ?", (name,)
            ).fetchall():
                freed += self._drop_upload(db, upload_id)
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            return "deleted", freed

    # ------------------------------------------------------------------ objects

    def get(self, bucket: str, key: str) -> ObjectRow | None:
        rows = self._all("SELECT * FROM objects WHERE bucket = ? AND key = ?", bucket, key)
        return _object(rows[0]) if rows else None

    def put(self, row: ObjectRow) -> list[str]:
        """Record the object (replacing one of its key); the blobs no longer used."""
        with self._tx() as db:
            for blob in row.blobs:
                self._claim(db, blob.object_id)
            self._ref(db, [b.object_id for b in row.blobs], +1)
            return self._put(db, row)

    def _put(self, db: sqlite3.Connection, row: ObjectRow) -> list[str]:
        old = db.execute(
            "SELECT * FROM objects WHERE bucket = ? AND key = ?", (row.bucket, row.key)
        ).fetchone()
        db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.bucket,
                row.key,
                row.size,
                row.etag,
                row.modified,
                row.info.dump(),
                json.dumps([[b.object_id, b.size] for b in row.blobs]),
            ),
        )
        return [] if old is None else self._ref(db, [b.object_id for b in _object(old).blobs], -1)

    def delete(self, bucket: str, key: str) -> list[str] | None:
        """Forget the object; its blobs no longer used (None: there was no such object)."""
        with self._tx() as db:
            old = db.execute(
                "SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
            if old is None:
                return None
            db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            return self._ref(db, [b.object_id for b in _object(old).blobs], -1)

    def keys_from(self, bucket: str, *, prefix: str, after: str, limit: int) -> list[ObjectRow]:
        """Up to `limit` objects whose keys start with `prefix` and sort after `after`."""
        rows = self._all(
            "SELECT * FROM objects WHERE bucket = ? AND key > ? AND key >= ? ORDER BY key LIMIT ?",
            bucket,
            after,
            prefix,
            limit,
        )
        out = [_object(r) for r in rows]
        return [r for r in out if r.key.startswith(prefix)]

    # ------------------------------------------------------------------ uploads

    def create_upload(self, upload: UploadRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
                (upload.upload_id, upload.bucket, upload.key, upload.initiated, upload.info.dump()),
            )

    def upload(self, upload_id: str) -> UploadRow | None:
        rows = self._all("SELECT * FROM uploads WHERE upload_id = ?", upload_id)
        if not rows:
            return None
        r = rows[0]
        return UploadRow(
            r["upload_id"], r["bucket"], r["key"], r["initiated"], Info.load(r["info"])
        )

    def uploads(self, bucket: str, *, prefix: str) -> list[UploadRow]:
        rows = self._all("SELECT * FROM uploads WHERE bucket = ? ORDER BY key, initiated", bucket)
        return [
            UploadRow(r["upload_id"], r["bucket"], r["key"], r["initiated"], Info.load(r["info"]))
            for r in rows
            if r["key"].startswith(prefix)
        ]

    def put_part(self, upload_id: str, part: PartRow) -> list[str] | None:
        """Record a part (replacing one of its number); None when the upload is gone."""
        with self._tx() as db:
            if (
                db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
                is None
            ):
                return None
            self._claim(db, part.blob)
            self._ref(db, [part.blob], +1)
            old = db.execute(
                "SELECT blob FROM parts WHERE upload_id = ? AND number = ?",
                (upload_id, part.number),
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload_id,
                    part.number,
                    part.size,
                    part.etag,
                    part.modified,
                    part.blob,
                    json.dumps(part.checksums),
                ),
            )
            return [] if old is None else self._ref(db, [old[0]], -1)

    def parts(self, upload_id: str) -> list[PartRow]:
        rows = self._all("SELECT * FROM parts WHERE upload_id = ? ORDER BY number", upload_id)
        return [
            PartRow(
                r["number"],
                r["size"],
                r["etag"],
                r["modified"],
                r["blob"],
                json.loads(r["checksums"]),
            )
            for r in rows
        ]

    def _drop_upload(self, db: sqlite3.Connection, upload_id: str) -> list[str]:
        blobs = [
            r[0] for r in db.execute("SELECT blob FROM parts WHERE upload_id = ?", (upload_id,))
        ]
        db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        return self._ref(db, blobs, -1)

    def abort(self, upload_id: str) -> list[str] | None:
        """Forget the upload and its parts; the blobs freed (None: no such upload)."""
        with self._tx() as db:
            if (
                db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
                is None
            ):
                return None
            return self._drop_upload(db, upload_id)

    def complete(self, upload_id: str, row: ObjectRow) -> list[str] | None:
        """The upload becomes the object `row` (its blobs are the chosen parts') in one step;
        the blobs freed: unused parts, and the replaced object's (None: no such upload)."""
        with self._tx() as db:
            if (
                db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
                is None
            ):
                return None
            self._ref(db, [b.object_id for b in row.blobs], +1)
            freed = self._drop_upload(db, upload_id)
            return freed + self._put(db, row)
