"""The provider's durable lease records (SQLite): which leases it took, for whom, and what
for, so a restarted agent knows which services to keep and which leases to watch.

One row per lease this agent took on: the renter, the spec and inputs it pushed (to
deploy the service again if its container record is lost), and where the lease stands
here. A row is written, under the capacity lock, before the service is deployed, so the
capacity it holds is counted at once; it is marked ended (never deleted) once the lease
ended on chain and the service was removed, and deleted only when the take failed
before the lease was accepted (a later push checks it afresh).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.provider.local_db import LocalDB
from protocol.services import ServiceSpec

# A lease's state on the provider.
RECEIVED = "received"  # checked and its service deployed; the accept is not on chain yet
LIVE = "live"  # accepted on chain: the service runs and earns
ENDED = "ended"  # the lease ended on chain; the service is removed
STATES = (RECEIVED, LIVE, ENDED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    lease_id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    renter TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    inputs TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""
_COLUMNS = "lease_id, key, renter, name, spec, inputs, state, detail, created_at, updated_at"


@dataclass
class LeaseRecord:
    """A lease as this agent recorded it; `key` names its service at the runtime and
    `inputs` are the pushed files, base64-encoded, by path."""

    lease_id: int
    key: str
    renter: str
    spec: ServiceSpec
    state: str = RECEIVED
    inputs: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def live(self) -> bool:
        return self.state != ENDED


class LeaseStore(LocalDB):
    """Thread-safe; one file per agent (``<home>/leases.db``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def add(self, rec: LeaseRecord) -> bool:
        """Insert `rec`; False when the lease is already recorded."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                f"INSERT OR IGNORE INTO leases ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.lease_id,
                    rec.key,
                    rec.renter,
                    rec.name,
                    rec.spec.model_dump_json(),
                    json.dumps(rec.inputs),
                    rec.state,
                    rec.detail,
                    now,
                    now,
                ),
            )
            return cur.rowcount == 1

    def get(self, lease_id: int) -> LeaseRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM leases WHERE lease_id = ?", (lease_id,)
            ).fetchone()
        return _record(row) if row else None

    def all(self, *, live: bool = False, limit: int | None = None) -> list[LeaseRecord]:
        """Newest first; only leases not ended when `live`."""
        sql = f"SELECT {_COLUMNS} FROM leases"
        if live:
            sql += f" WHERE state != '{ENDED}'"
        sql += " ORDER BY lease_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql).fetchall()
        return [_record(r) for r in rows]

    def update(self, lease_id: int, **fields: Any) -> None:
        bad = set(fields) - {"state", "detail"}
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE leases SET {cols} WHERE lease_id = ?", (*fields.values(), lease_id)
            )

    def remove(self, lease_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM leases WHERE lease_id = ?", (lease_id,))


def _record(row: tuple[Any, ...]) -> LeaseRecord:
    return LeaseRecord(
        lease_id=int(row[0]),
        key=row[1],
        renter=row[2],
        spec=ServiceSpec.model_validate_json(row[4]),
        inputs=json.loads(row[5]),
        state=row[6],
        detail=row[7],
        created_at=row[8],
        updated_at=row[9],
    )
