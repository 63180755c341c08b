"""The provider's durable job state (SQLite), so a restart picks up where it was.

One row per on-chain job this agent took on. Each step writes its outcome before the
next begins (the salt before the commit is sent, the result before it is committed), so
after a crash the agent can always tell which step to do next, and never runs a job or
sends a transaction twice when the chain already shows it done.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.provider.local_db import LocalDB
from protocol.provider_api import FAILED, SETTLED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    chain_job_id INTEGER PRIMARY KEY,
    renter TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    salt TEXT,
    result_hash TEXT,
    run TEXT,
    start_at INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class JobRecord:
    chain_job_id: int
    renter: str
    spec: dict[str, Any]
    state: str
    detail: str = ""
    salt: str | None = None
    result_hash: str | None = None
    run: dict[str, Any] = field(default_factory=dict)
    start_at: int = 0  # a held job's start on chain (unix s); 0: it starts when received
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def final(self) -> bool:
        return self.state in (SETTLED, FAILED)


class JobStore(LocalDB):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "start_at" not in columns:  # a store from before held jobs
            self._db.execute("ALTER TABLE jobs ADD COLUMN start_at INTEGER NOT NULL DEFAULT 0")

    def add(self, rec: JobRecord) -> bool:
        """Insert `rec`; False when the job is already known (nothing changes)."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO jobs (chain_job_id, renter, spec, state, detail, "
                "start_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.chain_job_id,
                    rec.renter,
                    json.dumps(rec.spec),
                    rec.state,
                    rec.detail,
                    rec.start_at,
                    now,
                    now,
                ),
            )
            return cur.rowcount == 1

    def get(self, job_id: int) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT chain_job_id, renter, spec, state, detail, salt, result_hash, run, "
                "created_at, updated_at, start_at FROM jobs WHERE chain_job_id = ?",
                (job_id,),
            ).fetchone()
        return _record(row) if row else None

    def update(self, job_id: int, **fields: Any) -> None:
        if "run" in fields:
            fields["run"] = json.dumps(fields["run"])
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {cols} WHERE chain_job_id = ?", (*fields.values(), job_id)
            )

    def all(self, *, unfinished: bool = False, limit: int = 1000) -> list[JobRecord]:
        where = f"WHERE state NOT IN ('{SETTLED}', '{FAILED}')" if unfinished else ""
        with self._lock:
            rows = self._db.execute(
                "SELECT chain_job_id, renter, spec, state, detail, salt, result_hash, run, "
                f"created_at, updated_at, start_at FROM jobs {where} "
                "ORDER BY chain_job_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_record(r) for r in rows]

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _record(row: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        chain_job_id=int(row[0]),
        renter=row[1],
        spec=json.loads(row[2]),
        state=row[3],
        detail=row[4],
        salt=row[5],
        result_hash=row[6],
        run=json.loads(row[7]) if row[7] else {},
        created_at=row[8],
        updated_at=row[9],
        start_at=int(row[10]),
    )
