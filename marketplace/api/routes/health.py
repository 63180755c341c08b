"""Liveness and Prometheus metrics."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, text

from marketplace.api.deps import IndexerDep, ServiceDep
from marketplace.api.schemas import Health
from marketplace.metrics import render

router = APIRouter(tags=["health"])

DATABASE_CHECK_MAX_AGE_S = 1.0


class DatabaseProbe:
    """Whether the database answers, asked at most once per `max_age_s`.

    A liveness probe polled hard would otherwise cost a pooled connection and a query per
    request; the answer it reports is never older than `max_age_s`.
    """

    def __init__(self, engine: Engine, *, max_age_s: float = DATABASE_CHECK_MAX_AGE_S) -> None:
        self.engine = engine
        self.max_age_s = max_age_s
        self._answer = ""
        self._asked_at = -float("inf")
        self._lock = threading.Lock()

    def fresh(self) -> str | None:
        """The last answer if it is recent enough, else None."""
        if time.monotonic() - self._asked_at <= self.max_age_s:
            return self._answer
        return None

    def ask(self) -> str:
        """Query the database now ("ok" or "error: <type>"); blocking."""
        with self._lock:
            if (answer := self.fresh()) is not None:  # another request just asked
                return answer
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                answer = "ok"
            except Exception as exc:  # report, do not fail the probe with a 500
                answer = f"error: {type(exc).__name__}"
            self._answer, self._asked_at = answer, time.monotonic()
            return answer


async def get_probe(request: Request) -> DatabaseProbe:
    probe: DatabaseProbe = request.app.state.database_probe
    return probe


ProbeDep = Annotated[DatabaseProbe, Depends(get_probe)]


@router.get("/healthz", response_model=Health)
async def health(service: ServiceDep, indexer: IndexerDep, probe: ProbeDep) -> Health:
    """Whether the database answers (asked at most once a second) and how far the chain
    indexer is."""
    database = probe.fresh()
    if database is None:
        database = await run_in_threadpool(probe.ask)
    chain: dict[str, Any] | None = None
    if service.chain is not None:
        chain = {
            "chain_id": service.chain.deployment.chain_id,
            "indexed_block": indexer.indexed_block if indexer else None,
            "head_block": indexer.head_block if indexer else None,
            "status": indexer.status if indexer else "starting",
            "matcher": service.matcher.address if service.matcher else None,
        }
    return Health(status="ok" if database == "ok" else "degraded", database=database, chain=chain)


@router.get("/metrics", response_class=Response)
def metrics(service: ServiceDep, indexer: IndexerDep) -> Response:
    """Prometheus text format."""
    with service.sessions() as session:
        body, content_type = render(
            service.metrics,
            session,
            offline_after_s=service.settings.offline_after_s,
            indexed_block=indexer.indexed_block if indexer is not None else None,
        )
    return Response(body, media_type=content_type)
