"""FastAPI dependencies: the service, its workers, a database session, the raw request body.

Dependencies that only look something up are ``async def``: FastAPI runs a plain ``def``
dependency on its thread pool, a hop that cost more than the lookup on every request.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from marketplace.chain.indexer import Indexer
from marketplace.compute.providers import Listing
from marketplace.compute.scheduler import Scheduler
from marketplace.errors import InvalidInputError, UnavailableError
from marketplace.service import Service
from marketplace.store.batch import BatchWriter


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_scheduler(request: Request) -> Scheduler:
    """The running scheduler (the composition root starts it in the app's lifespan)."""
    scheduler: Scheduler | None = request.app.state.scheduler
    if scheduler is None:
        raise UnavailableError("the marketplace is starting or stopping; try again shortly")
    return scheduler


SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


async def get_indexer(request: Request) -> Indexer | None:
    """The chain indexer, or None when no chain is configured."""
    indexer: Indexer | None = request.app.state.indexer
    return indexer


IndexerDep = Annotated[Indexer | None, Depends(get_indexer)]


async def get_listing(request: Request) -> Listing:
    """The providers' listing copy (see :class:`marketplace.compute.providers.Listing`)."""
    listing: Listing = request.app.state.provider_listing
    return listing


ListingDep = Annotated[Listing, Depends(get_listing)]


class Pages:
    """Listing pages as sent, built from one copy of the rows and at most `max_age_s` old
    (their online flags, uptime and reputation are as of when they were built)."""

    def __init__(self, *, max_age_s: float = 1.0, max_pages: int = 64) -> None:
        self.max_age_s = max_age_s
        self.max_pages = max_pages
        self._rows: object = None
        self._pages: dict[Hashable, tuple[float, bytes]] = {}

    def get(self, rows: object, key: Hashable) -> bytes | None:
        if rows is not self._rows:
            return None
        found = self._pages.get(key)
        if found is None or time.monotonic() - found[0] > self.max_age_s:
            return None
        return found[1]

    def put(self, rows: object, key: Hashable, body: bytes) -> None:
        if rows is not self._rows or len(self._pages) >= self.max_pages:
            self._rows, self._pages = rows, {}
        self._pages[key] = (time.monotonic(), body)


async def get_pages(request: Request) -> Pages:
    """The providers listing's pages (see :class:`Pages`)."""
    pages: Pages = request.app.state.provider_pages
    return pages


PagesDep = Annotated[Pages, Depends(get_pages)]


async def get_heartbeat_writer(request: Request) -> BatchWriter:
    """The writer that applies heartbeats in shared transactions."""
    writer: BatchWriter = request.app.state.heartbeat_writer
    return writer


HeartbeatWriterDep = Annotated[BatchWriter, Depends(get_heartbeat_writer)]


def get_session(service: ServiceDep, request: Request) -> Iterator[Session]:
    """A session whose work commits when the handler returns and rolls back on error.

    Requests that write (anything but GET/HEAD) hold the service's write slot meanwhile.
    """
    if request.method in ("GET", "HEAD"):
        with service.sessions() as session, session.begin():
            yield session
        return
    with service.writing(), service.sessions() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a failed commit is answered as
# an error rather than after a success status already went out (a lost write).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_raw_body(request: Request) -> dict[str, Any]:
    """The JSON body exactly as sent (signatures cover it, not its re-serialisation)."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInputError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInputError("the request body must be a JSON object")
    return body


RawBodyDep = Annotated[dict[str, Any], Depends(get_raw_body)]
