"""One leader among the marketplace replicas that share a database.

Replicas behind a load balancer on one PostgreSQL all serve the API (registrations,
heartbeats, reads), but some background work must run exactly once: the chain indexer
(it applies each event once), the job scheduler's batches and service placements (they
reserve providers' free capacity from one in-memory view, so two deciders could count the
same room twice), the expiry sweep, and the services worker (it sends ``reportServing``,
``reportDown`` and failover transactions with the marketplace's keys). That work runs on
the leader only.

The leader is whoever holds a PostgreSQL session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own. A replica that cannot take it
follows and asks again every :data:`CAMPAIGN_EVERY_S`; when the leader's process dies its
connection closes, PostgreSQL releases the lock and a follower takes over within one
campaign period. A leader that finds its lock connection gone stops leading at once.
On SQLite there is one process, which always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, Engine, text

logger = logging.getLogger(__name__)

LOCK_KEY = 0x64636C6F75644C45  # "dcloudLE": one fixed key per database
CAMPAIGN_EVERY_S = 1.0


class Leadership:
    """Whether this process leads, and the lock that makes it so.

    Args:
        engine: the service's engine; on PostgreSQL one connection is taken out of its
            pool and kept while this process leads.
        key: the advisory lock's key (replicas of one marketplace share it).
    """

    def __init__(self, engine: Engine, *, key: int = LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: Connection | None = None
        self.shared = engine.dialect.name == "postgresql"
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process leads (now or already)."""
        if self._leading:
            return True
        if not self.shared:
            self._leading = True
            return True
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.detach()  # closing it must close it: the lock lives as long as the connection
        try:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}))
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self._leading = conn, True
        logger.info("this replica leads (advisory lock %d taken)", self._key)
        return True

    def still_held(self) -> bool:
        """Check that the lock is still ours (its connection alive); if not, stop leading."""
        if not self._leading or not self.shared:
            return self._leading
        assert self._conn is not None
        try:
            held = self._conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": self._key},
            )
        except Exception as exc:
            logger.warning("lost the leader lock's connection (%s)", exc)
            held = 0
        if not held:
            self._drop()
        return self._leading

    def release(self) -> None:
        """Give the lock up (on shutdown), so a follower takes over at once."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection gone, so is the lock
                self._conn.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn, self._leading = None, False


async def campaign(
    leadership: Leadership,
    *,
    elected: Callable[[], None],
    deposed: Callable[[], Awaitable[None]],
    every_s: float = CAMPAIGN_EVERY_S,
) -> None:
    """Until cancelled: follow until the lock is free, then lead until it is lost.

    `elected` starts the leader's work (on the event loop); `deposed` stops it. Lock
    checks run off the event loop.
    """
    while True:
        if leadership.leading:
            if not await asyncio.to_thread(leadership.still_held):
                logger.warning("this replica no longer leads; stopping the leader's work")
                await deposed()
        else:
            try:
                if await asyncio.to_thread(leadership.try_acquire):
                    elected()
            except Exception as exc:  # the database being away: ask again later
                logger.warning("cannot ask for the leader lock (%s); retrying", exc)
        await asyncio.sleep(every_s)
