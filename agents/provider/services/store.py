"""The provider's durable service records (SQLite), so a restarted agent finds its services.

One row per leased service this agent runs: the lease, the spec, the container, the host
port it publishes (reserved for the lease: a restarted agent publishes the same one), the
data area, and the supervisor's view (state, restarts, healthy since, last error). A row
is written before its container is created, so a crash never leaves a container the
records do not name; it is deleted only after the container, network and data area are
gone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.provider.local_db import LocalDB
from protocol.services import ServiceSpec

# A service's state on the provider (see health.py for the transitions).
STARTING = "starting"  # the container runs; no check has passed yet since it (re)started
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"  # it runs, but its checks fail
RESTARTING = "restarting"  # stopped (exited, killed, or failing checks); restarted after a backoff
FAILED = "failed"  # will not be restarted (its /data overflowed, say); the lease should end
STATES = (STARTING, HEALTHY, UNHEALTHY, RESTARTING, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    lease TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    container_id TEXT NOT NULL DEFAULT '',
    host_port INTEGER NOT NULL UNIQUE,
    data_area TEXT NOT NULL,
    area_kind TEXT NOT NULL DEFAULT '',
    network TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    restarts INTEGER NOT NULL DEFAULT 0,
    healthy_since REAL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""
_COLUMNS = (
    "lease, spec, container_id, host_port, data_area, area_kind, network, state, restarts, "
    "healthy_since, last_error, created_at, updated_at"
)


@dataclass
class ServiceRecord:
    """A service as the agent last recorded it.

    `network` names the service's own Docker network ('' when it has no network at all);
    `healthy_since` is when its current run first passed a check (None while starting,
    unhealthy or stopped): the service's uptime counts from there.
    """

    lease: str
    spec: ServiceSpec
    host_port: int
    data_area: str
    state: str = STARTING
    container_id: str = ""
    area_kind: str = ""
    network: str = ""
    restarts: int = 0
    healthy_since: float | None = None
    last_error: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    def uptime(self, now: float | None = None) -> float:
        """Seconds since the current run first passed a health check; 0 when not up."""
        if self.healthy_since is None or self.state not in (HEALTHY, UNHEALTHY):
            return 0.0
        return max(0.0, (now or time.time()) - self.healthy_since)


class ServiceStore(LocalDB):
    """Thread-safe; one file per agent (``<home>/services.db``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def add(self, rec: ServiceRecord) -> bool:
        """Insert `rec`; False when the lease or its host port is already recorded."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                f"INSERT OR IGNORE INTO services ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.lease,
                    rec.spec.model_dump_json(),
                    rec.container_id,
                    rec.host_port,
                    rec.data_area,
                    rec.area_kind,
                    rec.network,
                    rec.state,
                    rec.restarts,
                    rec.healthy_since,
                    rec.last_error,
                    now,
                    now,
                ),
            )
            return cur.rowcount == 1

    def get(self, lease: str) -> ServiceRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM services WHERE lease = ?", (lease,)
            ).fetchone()
        return _record(row) if row else None

    def all(self) -> list[ServiceRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM services ORDER BY lease").fetchall()
        return [_record(r) for r in rows]

    def update(self, lease: str, **fields: Any) -> None:
        bad = set(fields) - set(_COLUMNS.split(", ")) or {"lease", "spec"} & set(fields)
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE services SET {cols} WHERE lease = ?", (*fields.values(), lease)
            )

    def remove(self, lease: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM services WHERE lease = ?", (lease,))

    def ports(self) -> set[int]:
        """Host ports reserved by recorded services."""
        with self._lock:
            rows = self._db.execute("SELECT host_port FROM services").fetchall()
        return {int(r[0]) for r in rows}

    def leases(self) -> Iterable[str]:
        return [r.lease for r in self.all()]


def _record(row: tuple[Any, ...]) -> ServiceRecord:
    return ServiceRecord(
        lease=row[0],
        spec=ServiceSpec.model_validate_json(row[1]),
        container_id=row[2],
        host_port=int(row[3]),
        data_area=row[4],
        area_kind=row[5],
        network=row[6],
        state=row[7],
        restarts=int(row[8]),
        healthy_since=row[9],
        last_error=row[10],
        created_at=row[11],
        updated_at=row[12],
    )
