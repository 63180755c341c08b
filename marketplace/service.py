"""What one marketplace process holds: database, grid, chain, matcher key, metrics.

Plain state shared by the API handlers and the background workers; the workers
themselves (chain indexer, scheduler) are built and run by the composition root
(:mod:`marketplace.app`), so this module knows nothing of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from marketplace.chain.client import ChainClient
from marketplace.chain.matcher import MatcherSigner
from marketplace.energy.grid import Grid
from marketplace.energy.levels import EnergyBasis
from marketplace.energy.sources import BundledPriceSource
from marketplace.metrics import Metrics
from marketplace.settings import Settings
from marketplace.store.db import make_engine, migrate, session_factory
from protocol.assignments import DEV_CHAIN_IDS, DEV_MATCHER_KEY

logger = logging.getLogger(__name__)


class Service:
    """State shared by the API handlers and the background workers of one process."""

    def __init__(self, settings: Settings, *, grid: Grid | None = None) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.grid = grid or Grid(
            BundledPriceSource(folder=settings.energy_series_dir),
            basis=EnergyBasis(settings.energy_basis, settings.energy_carbon_weight),
        )
        self.chain: ChainClient | None = None
        self.matcher: MatcherSigner | None = None
        self.metrics = Metrics()
        # SQLite takes one writer at a time and makes the others sleep in its busy handler;
        # queueing writers on a lock in this process wakes each as soon as it may write.
        self._write_lock: threading.Lock | None = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else None
        )
        self._providers_version = 0
        self._capacity_version = 0
        # Held while free capacity is chosen and reserved (the scheduler's batches, service
        # placements), so two deciders never count the same free room twice.
        self.placing = threading.Lock()

    def open(self) -> None:
        """Migrate the schema and connect the chain (when configured) with the matcher key."""
        migrate(self.engine)
        if not self.settings.rpc_url:
            logger.warning("no chain configured (DCLOUD_RPC_URL unset): stake is not verified")
            return
        self.chain = ChainClient(
            self.settings.rpc_url,
            deployments=str(self.settings.deployments) if self.settings.deployments else None,
        )
        key = (
            self.settings.matcher_key.get_secret_value()
            if self.settings.matcher_key is not None
            else DEV_MATCHER_KEY
            if self.chain.deployment.chain_id in DEV_CHAIN_IDS
            else None
        )
        if key is not None:
            self.matcher = MatcherSigner(
                key,
                chain_id=self.chain.deployment.chain_id,
                escrow=self.chain.escrow.address,
                on_chain_matcher=self.chain.escrow.functions.matcher().call(),
                now=self.chain.now,
            )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold while a transaction writes (serialises writers on SQLite, free otherwise)."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    def providers_changed(self) -> None:
        """Note that provider data changed; the matcher rebuilds its index before next use."""
        self._providers_version += 1

    def capacity_changed(self) -> None:
        """Note that a heartbeat reported free capacity; the matcher folds such reports
        into its index at most every ``CAPACITY_REFRESH_S`` (see the scheduler), so a
        storm of heartbeats does not rebuild it for every request."""
        self._capacity_version += 1

    @property
    def capacity_version(self) -> int:
        return self._capacity_version

    @property
    def providers_version(self) -> int:
        return self._providers_version

    @property
    def stake_verified(self) -> bool:
        return self.chain is not None
