"""Prometheus metrics: request counts and latency per route, and state gauges at scrape."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketplace.store.models import JobRow, ProviderRow


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

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Pure ASGI middleware counting requests and timing them per route template."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                path = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                self.requests.labels(method, path, str(status)).inc()
                self.latency.labels(method, path).observe(time.perf_counter() - start)

        return measured


def render(
    m: Metrics,
    session: Session,
    *,
    offline_after_s: float,
    indexed_block: int | None,
    now: float | None = None,
) -> tuple[bytes, str]:
    """Refresh the state gauges from the database and return the text format to serve."""
    now = time.time() if now is None else now
    cutoff = now - offline_after_s
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
    if indexed_block is not None:
        m.indexed_block.set(indexed_block)
    return generate_latest(m.registry), CONTENT_TYPE_LATEST
