"""The marketplace application: `create_app(settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from marketplace.api import errors
from marketplace.api.limits import JsonDepthLimit
from marketplace.api.routes import health, jobs, providers, regions
from marketplace.api.routes import storage as storage_routes
from marketplace.dashboard import router as dashboard_router
from marketplace.service import Service
from marketplace.settings import Settings

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """Build the FastAPI app; the service starts (migrations, chain, workers) on startup."""
    service = service or Service(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        await jobs.start_scheduler(service)
        try:
            yield
        finally:
            await jobs.stop_scheduler(service)
            service.stop()

    app = FastAPI(
        title="dcloud marketplace",
        version=VERSION,
        description="Matches renters' jobs to providers by distance and grid energy price, "
        "packs them into free capacity, and follows the escrow contracts on chain.",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install(app)
    app.add_middleware(JsonDepthLimit)
    app.add_middleware(service.metrics.middleware)
    for router in (health.router, providers.router, jobs.router, regions.router):
        app.include_router(router)
    app.include_router(storage_routes.router)
    app.include_router(dashboard_router)
    return app
