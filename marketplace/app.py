"""The composition root: `create_app(settings)` builds the service and the FastAPI app,
and its lifespan runs the background workers (chain indexer, scheduler, expiry, services)
while this replica leads (:mod:`marketplace.leader`; a lone replica always does)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from marketplace.api import errors
from marketplace.api.deps import Pages
from marketplace.api.follower import LeaderOnly
from marketplace.api.limits import JsonDepthLimit
from marketplace.api.methods import DeclaredMethods
from marketplace.api.routes import health, jobs, network, providers, regions
from marketplace.api.routes import leader as leader_routes
from marketplace.api.routes import services as service_routes
from marketplace.api.routes import storage as storage_routes
from marketplace.api.routes import watch as watch_routes
from marketplace.api.strict import strict_body
from marketplace.chain.indexer import Indexer
from marketplace.compute import expiry
from marketplace.compute.providers import Listing
from marketplace.compute.scheduler import Scheduler
from marketplace.dashboard import router as dashboard_router
from marketplace.errors import MarketplaceError
from marketplace.leader import Leadership, campaign
from marketplace.service import Service
from marketplace.services import prober
from marketplace.settings import Settings
from marketplace.store.batch import BatchWriter
from protocol.ratelimit import OPENAPI_429, RateLimit

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
WORKER_JOIN_TIMEOUT_S = 10
# A heartbeat batch waits this long for more after its first: a few ms of latency for
# fewer, larger transactions (the writer thread's per-batch reads and commit dominate).
HEARTBEAT_LINGER_S = 0.002


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """Build the FastAPI app; on startup the service opens (migrations, chain) and the
    workers start; on shutdown they stop before the service closes."""
    service = service or Service(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.open()
        leadership = app.state.leadership = Leadership(service.engine)
        work: list[LeaderWork] = []

        def elected() -> None:
            work.append(LeaderWork(app, service))

        async def deposed() -> None:
            while work:
                await work.pop().stop()

        if leadership.try_acquire():  # a lone replica leads before it serves
            elected()
        campaigning = asyncio.create_task(
            campaign(leadership, elected=elected, deposed=deposed), name="leader-campaign"
        )
        try:
            yield
        finally:
            campaigning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await campaigning
            await deposed()
            leadership.release()
            service.close()

    app = FastAPI(
        title="dcloud marketplace",
        version=VERSION,
        description="Matches renters' jobs to providers by distance and grid energy price, "
        "packs them into free capacity, and follows the escrow contracts on chain.",
        lifespan=lifespan,
        responses=OPENAPI_429,
        dependencies=[Depends(strict_body)],
    )
    app.state.service = service
    app.state.scheduler = None  # set while the app runs (lifespan)
    app.state.indexer = None  # set while the app runs, when a chain is configured
    app.state.down_watch = None  # the services worker's, while the app runs
    app.state.database_probe = health.DatabaseProbe(service.engine)
    app.state.provider_listing = Listing()
    app.state.provider_pages = Pages()
    # heartbeats arriving together share a transaction (its thread starts on the first)
    heartbeat_writer = BatchWriter(
        service.sessions,
        writing=service.writing,
        refusals=(MarketplaceError,),
        prepare=providers.read_heartbeat_batch,
        name="heartbeats",
        linger_s=HEARTBEAT_LINGER_S,
    )
    app.state.heartbeat_writer = heartbeat_writer
    app.state.leadership = None  # set while the app runs
    errors.install(app)
    app.add_middleware(JsonDepthLimit)
    app.add_middleware(DeclaredMethods, openapi=lambda: app.openapi())
    app.add_middleware(LeaderOnly, leadership=lambda: app.state.leadership)
    app.add_middleware(RateLimit, limiter=service.settings.rate_limiter())
    app.add_middleware(service.metrics.middleware)
    for router in (health.router, network.router, providers.router, jobs.router, regions.router):
        app.include_router(router)
    app.include_router(storage_routes.router)
    app.include_router(service_routes.router)
    app.include_router(watch_routes.router)
    app.include_router(leader_routes.router)
    app.include_router(dashboard_router)
    errors.document(app, regions=service.grid.region_ids())
    return app


class LeaderWork:
    """The background work only the leader runs (:mod:`marketplace.leader`): the chain
    indexer, the scheduler's batches, the expiry sweep and the services worker."""

    def __init__(self, app: FastAPI, service: Service) -> None:
        self.app = app
        self.stopping = threading.Event()
        self.indexer_thread: threading.Thread | None = None
        if service.chain is not None:
            indexer = Indexer(service.settings, service.sessions, service.chain)
            self.indexer_thread = threading.Thread(
                target=indexer.run_forever, args=(self.stopping,), name="indexer", daemon=True
            )
            self.indexer_thread.start()
            app.state.indexer = indexer
        self.scheduler = Scheduler(service)
        self.scheduler.start()
        app.state.scheduler = self.scheduler
        expiry.start_sweeper(service, self.stopping)  # ends when `stopping` is set
        # services: reservations expire, health probes, down reports, failover
        app.state.down_watch = prober.start_worker(service, self.stopping).watch

    async def stop(self) -> None:
        self.app.state.scheduler = self.app.state.indexer = self.app.state.down_watch = None
        await self.scheduler.stop()
        self.stopping.set()
        if self.indexer_thread is not None:
            await asyncio.to_thread(self.indexer_thread.join, WORKER_JOIN_TIMEOUT_S)
