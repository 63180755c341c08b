"""Liveness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import text

from marketplace.api.deps import IndexerDep, ServiceDep
from marketplace.api.schemas import Health
from marketplace.metrics import render

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def health(service: ServiceDep, indexer: IndexerDep) -> Health:
    """Whether the database answers and how far the chain indexer is."""
    try:
        with service.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # report, do not fail the probe with a 500
        database = f"error: {type(exc).__name__}"
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
