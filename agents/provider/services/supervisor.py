"""Keep services up: check their health, restart them with a backoff, record what happens.

:class:`Supervisor` runs one thread that, every `tick_s`, looks at each recorded service
(in a small pool, so one slow check does not hold up the others): a stopped container is
restarted once its backoff has elapsed (``health.py``), a running one is checked at its
spec's interval, one failing `restart_after` checks in a row is killed and restarted, and
one whose folder-backed /data grew past its limit is stopped for good. Each change of
state, restart count, healthy-since or last error is written to the service's record.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from agents.errors import AgentError
from agents.provider.services import engine as eng
from agents.provider.services.health import Backoff, Health, probe
from agents.provider.services.runtime import ServiceRuntime
from agents.provider.services.store import FAILED, RESTARTING, ServiceRecord

logger = logging.getLogger(__name__)


class Supervisor:
    """Supervises every service of `runtime`; start() it once the runtime is reconciled."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        backoff: Backoff | None = None,
        tick_s: float = 1.0,
        workers: int = 8,
    ) -> None:
        self.runtime = runtime
        self.backoff = backoff or Backoff()
        self.tick_s = tick_s
        self._health: dict[str, Health] = {}
        self._next_check: dict[str, float] = {}
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="service")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="services", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop supervising (the services keep running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def health(self, lease: str) -> Health | None:
        """The supervisor's current view of a service (None before its first pass)."""
        with self._lock:
            return self._health.get(lease)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception:
                logger.exception("service supervision pass failed; retrying")
            self._stop.wait(self.tick_s)

    def _pass(self) -> None:
        records = {r.lease: r for r in self.runtime.records()}
        with self._lock:
            for gone in set(self._health) - set(records):
                del self._health[gone]
                self._next_check.pop(gone, None)
            for lease, rec in records.items():
                if lease not in self._health:
                    self._health[lease] = _from_record(rec, self.backoff)
                if lease in self._busy:
                    continue
                self._busy.add(lease)
                self._pool.submit(self._step_safely, lease)

    def _step_safely(self, lease: str) -> None:
        try:
            self._step(lease)
        except Exception:
            logger.exception("service supervision failed", extra={"lease": lease})
        finally:
            with self._lock:
                self._busy.discard(lease)

    def _step(self, lease: str) -> None:
        rec = self.runtime.get(lease)
        with self._lock:
            h = self._health.get(lease)
        if rec is None or h is None or self._stop.is_set():
            return
        before = _snapshot(h)
        if h.state != FAILED:
            self._watch(rec, h)
        if _snapshot(h) != before and self.runtime.get(lease) is not None:
            self.runtime.update(
                lease,
                state=h.state,
                restarts=h.restarts,
                healthy_since=h.healthy_since,
                last_error=h.last_error,
            )
            if h.state != before[0]:
                logger.info(
                    "service state changed",
                    extra={"lease": lease, "state": h.state, "error": h.last_error},
                )

    def _watch(self, rec: ServiceRecord, h: Health) -> None:
        lease = rec.lease
        port_error = self.runtime.serve_port(lease)
        if port_error:
            h.last_error = port_error
        running, why = self.runtime.running(lease)
        now = time.time()
        if not running:
            h.exited(why, now)
            if h.due(now):
                try:
                    self.runtime.restart(lease)
                    h.restarted(time.time())
                except AgentError as exc:
                    h.restarted(time.time())
                    h.exited(f"restart failed: {exc}", time.time())
                self._next_check[lease] = 0.0
            return
        if h.state == RESTARTING:  # started meanwhile (by reconcile, say)
            h.restarted(now)
        if self.runtime.data_full(lease):
            self.runtime.kill(lease)
            h.failed(f"/data grew past its {eng.data_mb(rec.spec)} MB; stopped")
            return
        if now < self._next_check.get(lease, 0.0):
            return
        check = rec.spec.health
        self._next_check[lease] = now + check.interval_s
        error = probe(lambda t: self.runtime.connect(lease, t), check, rec.spec.port)
        if h.checked(error, time.time()):
            logger.warning("restarting an unhealthy service", extra={"lease": lease})
            self.runtime.kill(lease)
            h.exited(h.last_error, time.time())


def _from_record(rec: ServiceRecord, backoff: Backoff) -> Health:
    """The machine of a service found in the records (at start, or after a restart)."""
    return Health(
        check=rec.spec.health,
        backoff=backoff,
        state=rec.state,
        started_at=time.time(),
        restarts=rec.restarts,
        healthy_since=rec.healthy_since,
        last_error=rec.last_error,
    )


def _snapshot(h: Health) -> tuple[str, int, float | None, str]:
    return (h.state, h.restarts, h.healthy_since, h.last_error)
