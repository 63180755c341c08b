"""Prometheus metrics: request counts and latency per route, and state gauges at scrape."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from marketplace.store.models import JobRow, ProviderRow

if TYPE_CHECKING:
    from marketplace.service import Service


class Metrics:
    """One registry per service, so several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dcloud_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dcloud_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.providers = Gauge(
            "dcloud_providers", "Providers by state", ["state"], registry=self.registry
        )
        self.jobs = Gauge("dcloud_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.indexed_block = Gauge(
            "dcloud_indexed_block", "Last block the indexer applied", registry=self.registry
        )
        self.matches = Counter(
            "dcloud_jobs_matched_total", "Jobs matched", ["outcome"], registry=self.registry
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, path, str(response.status_code)).inc()
        self.latency.labels(request.method, path).observe(time.perf_counter() - start)
        return response


def render(service: Service) -> tuple[bytes, str]:
    m: Metrics = service.metrics
    now = time.time()
    cutoff = now - service.settings.offline_after_s
    with service.sessions() as session:
        online = (
            session.scalar(select(func.count()).where(ProviderRow.last_heartbeat_at >= cutoff)) or 0
        )
        total = session.scalar(select(func.count()).select_from(ProviderRow)) or 0
        by_status = dict(
            session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
        )
    m.providers.labels("online").set(online)
    m.providers.labels("offline").set(total - online)
    for status_name, count in by_status.items():
        m.jobs.labels(status_name).set(count)
    indexer = getattr(service, "indexer", None)
    if indexer is not None and getattr(indexer, "indexed_block", None) is not None:
        m.indexed_block.set(indexer.indexed_block)
    return generate_latest(m.registry), CONTENT_TYPE_LATEST
