"""A service's health: the check itself, and the state machine the supervisor drives.

States (``store.py``)::

    starting ──check passes──► healthy ◄──check passes── unhealthy
        │                         │ `failures` checks fail    ▲ │
        │ start period over and   └───────────────────────────┘ │ `restart_after` checks
        │ `failures` checks fail ──────────────► unhealthy      │ fail in a row
        ▼                                                       ▼
    (container exits, is killed, or is stopped for failing) ─► restarting
    restarting ──backoff elapsed, container started again──► starting

The restart backoff doubles with each restart in a row (``base_s``, twice that, and so on
up to ``cap_s``) and starts over once the service has stayed healthy for
``reset_after_s``. The machine is plain data and logic, with no I/O: the supervisor
(``supervisor.py``) feeds it what it sees.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.provider.services.store import (
    FAILED,
    HEALTHY,
    RESTARTING,
    STARTING,
    UNHEALTHY,
)
from protocol.services import HealthCheck


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``min(cap_s, base_s * 2**n)`` for the n-th restart in a row."""

    base_s: float = 1.0
    cap_s: float = 60.0
    reset_after_s: float = 60.0  # healthy this long: the next restart waits base_s again

    def delay(self, streak: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** min(streak, 32)))


@dataclass
class Health:
    """One service's health as the supervisor sees it; times are Unix seconds."""

    check: HealthCheck
    backoff: Backoff = field(default_factory=Backoff)
    state: str = STARTING
    started_at: float = 0.0
    failures: int = 0  # failed checks in a row
    restarts: int = 0  # every restart since the service was deployed
    streak: int = 0  # restarts since it last stayed healthy for backoff.reset_after_s
    healthy_since: float | None = None
    last_error: str = ""
    restart_at: float | None = None

    def checked(self, error: str, now: float) -> bool:
        """Record a check's outcome ('' = passed); True when the container should be
        stopped and restarted (it failed `restart_after` checks in a row)."""
        if self.state in (RESTARTING, FAILED):
            return False
        if not error:
            self.failures = 0
            if self.healthy_since is None:
                self.healthy_since = now
            self.state = HEALTHY
            if now - self.healthy_since >= self.backoff.reset_after_s:
                self.streak = 0
            return False
        if self.state == STARTING and now - self.started_at < self.check.start_period_s:
            return False  # still starting up: failures do not count yet
        self.last_error = error
        self.failures += 1
        if self.failures >= self.check.failures:
            self.state = UNHEALTHY
        limit = self.check.restart_after
        if limit and self.failures >= limit:
            self.last_error = f"failed {self.failures} health checks in a row: {error}"
            return True
        return False

    def exited(self, error: str, now: float) -> None:
        """The container stopped (or was stopped for failing): restart it after a backoff."""
        if self.state == FAILED:
            return
        if self.state != RESTARTING:  # the first word on why it stopped is kept
            self.restart_at = now + self.backoff.delay(self.streak)
            self.last_error = error or self.last_error
        self.state = RESTARTING
        self.healthy_since = None
        self.failures = 0

    def due(self, now: float) -> bool:
        """Whether a stopped service's backoff has elapsed."""
        return self.state == RESTARTING and self.restart_at is not None and now >= self.restart_at

    def restarted(self, now: float) -> None:
        """Its container was started again."""
        self.restarts += 1
        self.streak += 1
        self.state = STARTING
        self.started_at = now
        self.failures = 0
        self.healthy_since = None
        self.restart_at = None

    def failed(self, error: str) -> None:
        """It will not be restarted (until the lease ends and it is removed)."""
        self.state = FAILED
        self.last_error = error
        self.healthy_since = None
        self.restart_at = None


def probe(connect: Callable[[float], socket.socket], check: HealthCheck, port: int) -> str:
    """Run one check; '' when it passed, else why not (one short sentence).

    `connect(timeout)` opens a connection to the service's port (see ``netns.py``).
    """
    try:
        sock = connect(check.timeout_s)
    except ConnectionRefusedError:
        return f"nothing accepts connections on port {port}"
    except TimeoutError:
        return f"port {port} did not accept a connection within {check.timeout_s:g} s"
    except OSError as exc:
        return f"port {port} is not reachable: {exc.strerror or exc}"
    if check.kind == "tcp":
        sock.close()
        return ""
    conn = http.client.HTTPConnection("localhost", port, timeout=check.timeout_s)
    sock.settimeout(check.timeout_s)
    conn.sock = sock
    try:
        conn.request("GET", check.path, headers={"User-Agent": "dcloud-health-check"})
        status = conn.getresponse().status
    except TimeoutError:
        return f"GET {check.path} got no answer within {check.timeout_s:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return f"GET {check.path} failed: {exc.__class__.__name__}: {exc}"
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    if 200 <= status < 400:
        return ""
    return f"GET {check.path} answered {status}"
