"""The composition root: `create_app(settings)` builds the service and the FastAPI app,
and its lifespan runs the background workers (chain indexer, scheduler)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from marketplace.api import errors
from marketplace.api.limits import JsonDepthLimit
from marketplace.api.routes import health, jobs, network, providers, regions
from marketplace.api.routes import services as service_routes
from marketplace.api.routes import storage as storage_routes
from marketplace.api.routes import watch as watch_routes
from marketplace.chain.indexer import Indexer
from marketplace.compute import expiry
from marketplace.compute.scheduler import Scheduler
from marketplace.dashboard import router as dashboard_router
from marketplace.service import Service
from marketplace.services import prober
from marketplace.settings import Settings
from protocol.ratelimit import OPENAPI_429, RateLimit

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
WORKER_JOIN_TIMEOUT_S = 10


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """Build the FastAPI app; on startup the service opens (migrations, chain) and the
    workers start; on shutdown they stop before the service closes."""
    service = service or Service(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.open()
        stop = threading.Event()
        indexer_thread: threading.Thread | None = None
        if service.chain is not None:
            indexer = Indexer(service.settings, service.sessions, service.chain)
            indexer_thread = threading.Thread(
                target=indexer.run_forever, args=(stop,), name="indexer", daemon=True
            )
            indexer_thread.start()
            app.state.indexer = indexer
        scheduler = Scheduler(service)
        scheduler.start()
        app.state.scheduler = scheduler
        expiry.start_sweeper(service, stop)  # ends when `stop` is set below
        # services: reservations expire, health probes, down reports, failover
        app.state.down_watch = prober.start_worker(service, stop).watch
        try:
            yield
        finally:
            app.state.scheduler = app.state.indexer = None
            await scheduler.stop()
            stop.set()
            if indexer_thread is not None:
                indexer_thread.join(timeout=WORKER_JOIN_TIMEOUT_S)
            service.close()

    app = FastAPI(
        title="dcloud marketplace",
        version=VERSION,
        description="Matches renters' jobs to providers by distance and grid energy price, "
        "packs them into free capacity, and follows the escrow contracts on chain.",
        lifespan=lifespan,
        responses=OPENAPI_429,
    )
    app.state.service = service
    app.state.scheduler = None  # set while the app runs (lifespan)
    app.state.indexer = None  # set while the app runs, when a chain is configured
    app.state.down_watch = None  # the services worker's, while the app runs
    errors.install(app)
    app.add_middleware(JsonDepthLimit)
    app.add_middleware(RateLimit, limiter=service.settings.rate_limiter())
    app.add_middleware(service.metrics.middleware)
    for router in (health.router, network.router, providers.router, jobs.router, regions.router):
        app.include_router(router)
    app.include_router(storage_routes.router)
    app.include_router(service_routes.router)
    app.include_router(watch_routes.router)
    app.include_router(dashboard_router)
    return app
