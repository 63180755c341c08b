"""The agent's local SQLite files (jobs, leases, services): one connection per file, shared
by the agent's threads under a lock, in WAL mode, with its schema created on open."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class LocalDB:
    """Base of the agent's stores: ``_db`` and ``_lock`` for subclasses' queries."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(schema)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()
