"""The prober: checks each service where its provider publishes it, records what it saw,
and has the first healthy answer of a leased service reported serving on chain.

Every ``DCLOUD_SERVICE_PROBE_INTERVAL_S`` the services worker (:func:`start_worker`)
expires due reservations and probes every live service with a reported host port, at
the host of its provider's endpoint: an HTTP GET of the spec's health path (healthy on a
2xx or 3xx answer) or a TCP connection (``health.kind`` "tcp"), within the spec's
timeout. The result is recorded on the service (``probe_healthy``, ``probed_at``,
``probe_detail``, ``first_healthy_at``). A leased service whose lease was accepted and
not yet reported serving, seen healthy, gets ``reportServing(leaseId)`` sent with the
matcher key (:mod:`marketplace.services.serving`). A serving lease's looks feed the
watcher (:mod:`marketplace.services.watch`), which posts down stretches on chain; the
failover worker (:mod:`marketplace.services.failover`) moves or ends the leases that
failed past the grace period.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.service import Service
from marketplace.services import catalog, expiry
from marketplace.services.failover import Failover
from marketplace.services.serving import Outcome, ServingReporter
from marketplace.services.watch import DownWatch, Look
from marketplace.store.models import ChainLeaseRow, ServiceRow
from protocol.leases import Leases
from protocol.services import HealthCheck, ServiceSpec

logger = logging.getLogger(__name__)

MAX_PARALLEL_PROBES = 16
DETAIL_CHARS = 300


@dataclass(frozen=True)
class Target:
    """One service to probe: where, how, and whether a healthy answer should be attested."""

    service_id: str
    name: str
    host: str
    port: int
    health: HealthCheck
    lease_to_report: int | None
    lease_to_watch: int | None = None  # a serving lease whose down time is reported


@dataclass(frozen=True)
class Probe:
    target: Target
    healthy: bool
    detail: str


def probe(target: Target) -> Probe:
    """Check `target` once (never raises)."""
    health = target.health
    try:
        if health.kind == "tcp":
            with socket.create_connection((target.host, target.port), timeout=health.timeout_s):
                return Probe(target, True, "TCP connection accepted")
        url = f"http://{_host(target.host)}:{target.port}{health.path}"
        response = httpx.get(url, timeout=health.timeout_s, follow_redirects=False)
        healthy = 200 <= response.status_code < 400
        return Probe(target, healthy, f"GET {health.path}: HTTP {response.status_code}")
    except (OSError, httpx.HTTPError) as exc:
        return Probe(target, False, f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS])


def targets(service: Service) -> list[Target]:
    """Every live service with a reported host port."""
    with service.sessions() as session:
        rows = session.scalars(
            select(ServiceRow).where(
                ServiceRow.status.in_(catalog.LIVE), ServiceRow.host_port.is_not(None)
            )
        ).all()
        out: list[Target] = []
        for row in rows:
            host = urlsplit(row.endpoint).hostname
            if not host or row.host_port is None:
                continue
            spec = ServiceSpec.model_validate(row.spec)
            out.append(
                Target(
                    service_id=row.id,
                    name=row.name,
                    host=host,
                    port=row.host_port,
                    health=spec.health,
                    lease_to_report=_lease_to_report(session, row),
                    lease_to_watch=_lease_to_watch(session, row),
                )
            )
    return out


def _lease_to_report(session: Session, row: ServiceRow) -> int | None:
    """The lease to report serving at the service's first healthy answer, if any: linked,
    accepted on chain, not serving yet, not reported by us."""
    if row.lease_id is None or row.serving_reported_at is not None:
        return None
    lease = session.get(ChainLeaseRow, row.lease_id)
    if lease is None or lease.state != "running" or lease.serving_at:
        return None
    return row.lease_id


def _lease_to_watch(session: Session, row: ServiceRow) -> int | None:
    """The lease whose down time the watchers report: running, serving, not failed."""
    lease = session.get(ChainLeaseRow, row.lease_id) if row.lease_id is not None else None
    if lease is None or lease.state != "running" or not lease.serving_at or lease.failed_at:
        return None
    return lease.lease_id


def record(service: Service, probes: list[Probe], *, now: float) -> None:
    """Store what each probe saw on its service."""
    if not probes:
        return
    with service.writing(), service.sessions() as session, session.begin():
        for p in probes:
            row = session.get(ServiceRow, p.target.service_id)
            if row is None:
                continue
            changed = row.probe_healthy != p.healthy
            row.probe_healthy, row.probed_at, row.probe_detail = p.healthy, now, p.detail
            if p.healthy and row.first_healthy_at is None:
                row.first_healthy_at = now
            if changed:
                catalog.touch(row, now)


def mark_reported(service: Service, service_id: str, *, now: float) -> None:
    with service.writing(), service.sessions() as session, session.begin():
        row = session.get(ServiceRow, service_id)
        if row is not None:
            row.serving_reported_at = now


class Prober:
    """One round: probe every target in parallel, record, attest the newly healthy."""

    def __init__(self, service: Service, reporter: ServingReporter | None = None) -> None:
        self.service = service
        self.reporter = reporter or ServingReporter(service)
        self.watch = DownWatch(service, self.reporter.send)
        self._pool = ThreadPoolExecutor(MAX_PARALLEL_PROBES, thread_name_prefix="probe")

    def run_once(self) -> list[Probe]:
        found = targets(self.service)
        at = self.watch.now() if any(t.lease_to_watch for t in found) else 0
        probes = list(self._pool.map(probe, found))
        record(self.service, probes, now=time.time())
        watched = {t.lease_to_watch for t in found if t.lease_to_watch is not None}
        self.watch.observe(
            (
                Look(p.target.lease_to_watch, at, p.healthy, p.target.name)
                for p in probes
                if p.target.lease_to_watch
            ),
            watched=watched,
        )
        for p in probes:
            lease_id = p.target.lease_to_report
            if p.healthy and lease_id is not None:
                outcome = self.reporter.report(lease_id)
                if outcome in (Outcome.REPORTED, Outcome.ALREADY, Outcome.REFUSED):
                    mark_reported(self.service, p.target.service_id, now=time.time())
        return probes

    def claim_never_served(self) -> list[int]:
        """Claim every lease accepted whose serve window passed with no serving report, so
        the renter's deposit comes back without the renter having to act."""
        chain = self.service.chain
        if chain is None or not self.reporter.available():
            return []
        window = Leases(chain.w3, chain.deployment).parameters().serve_window
        now = chain.now()
        with self.service.sessions() as session:
            due = session.scalars(
                select(ChainLeaseRow.lease_id).where(
                    ChainLeaseRow.state == "running",
                    ChainLeaseRow.serving_at == 0,
                    ChainLeaseRow.accepted_at > 0,
                    ChainLeaseRow.accepted_at + window < now,
                )
            ).all()
        return [i for i in due if self.reporter.claim_never_served(i) == Outcome.REPORTED]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def work_forever(service: Service, stop: threading.Event, prober: Prober | None = None) -> None:
    """Expire due reservations and probe services every interval until `stop` is set."""
    prober = prober or Prober(service)
    failover = Failover(service, prober.reporter)
    every_s = service.settings.service_probe_interval_s
    try:
        while not stop.wait(every_s):
            try:
                expiry.expire_due(service)
                prober.run_once()
                if prober.reporter.available():
                    prober.watch.post_due()
                    failover.run_once()
                prober.claim_never_served()
            except Exception:  # a failed round must not end the worker
                if stop.is_set():
                    return
                logger.exception("services round failed; retrying in %g s", every_s)
    finally:
        prober.close()
        failover.close()


def start_worker(service: Service, stop: threading.Event) -> Prober:
    """Run :func:`work_forever` in a daemon thread that ends once `stop` is set; its
    prober (whose down watch the API shares with other watchers)."""
    prober = Prober(service)
    thread = threading.Thread(
        target=work_forever, args=(service, stop, prober), name="services", daemon=True
    )
    thread.start()
    return prober


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
