"""nginx as a child process: started with a generated config, reloaded live, stopped by PID.

:class:`Nginx` runs Debian's ``nginx`` binary in the foreground (``daemon off``) with its
own folder: config, PID file, error log and temp files (nothing under ``/etc/nginx`` or
``/var``). :meth:`Nginx.apply` writes a new config, checks it (``nginx -t``), sends the
master SIGHUP and returns once the new config answers: new workers take new
connections while the old ones finish what they serve, WebSockets and streams included
(up to an hour), so a route change drops nothing in flight. :meth:`Nginx.stop` ends the
master by PID (SIGTERM to its process group, SIGKILL after a timeout); its workers go
with it.

On Linux the master also gets a parent-death signal, so it ends with the process that
started it even when that one is killed; a PID file left by a crash is cleaned at the
next start from the same folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from agents.errors import AgentError, UserError
from agents.ingress.nginxconf import GENERATION_PATH, Paths, nginx_config
from protocol.services import ServiceRoute

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
_PR_SET_PDEATHSIG = 1


class GatewayError(AgentError):
    """nginx would not start or refused a config; the message says why."""


def check_port(host: str, port: int) -> None:
    """Raise :class:`UserError` if something listens on ``host:port`` already."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is a gateway running there "
                "already? Stop it, or pick another port with --port"
            ) from None


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if not found:
        raise UserError("nginx is not installed: run tools/setup.sh (or apt-get install nginx)")
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _is_ours(pid: int, folder: Path) -> bool:
    """Does `pid` run an nginx master with its config in `folder`?"""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return argv.startswith(b"nginx: master") and str(folder).encode() in argv


class Nginx:
    """One nginx master serving the gateway; see the module docstring."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        domain: str = "localhost",
        workers: int | str = "auto",
    ) -> None:
        self.folder = folder.resolve()
        self.host = host
        self.port = port
        self.domain = domain
        self.workers = workers
        self.popen: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.conf = self.folder / "nginx.conf"
        self.log = self.folder / "nginx.log"
        self.pidfile = self.folder / "nginx.pid"
        self.paths = Paths(
            pid=str(self.pidfile), error_log=str(self.log), temp=str(self.folder / "tmp")
        )

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Where this machine reaches the gateway."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def render(self, routes: Iterable[ServiceRoute], generation: int) -> str:
        return nginx_config(
            routes,
            listen=self.listen,
            paths=self.paths,
            domain=self.domain,
            generation=generation,
            workers=self.workers,
            user="nobody nogroup" if os.geteuid() == 0 else None,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self, routes: Iterable[ServiceRoute] = ()) -> None:
        """Start nginx serving `routes`; return once it answers."""
        if self.alive():
            raise GatewayError(f"nginx already runs (pid {self.pid})")
        binary = nginx_binary()
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        self._clean_leftover()
        check_port(self.host, self.port)
        self.generation = 1
        self._write(self.render(routes, self.generation))
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                [binary, "-p", str(self.folder), "-e", str(self.log), "-c", str(self.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_generation(self.generation)
        except BaseException:
            self.stop()
            raise
        logger.info("nginx pid %d serves %s", self.popen.pid, self.url)

    def apply(self, routes: Iterable[ServiceRoute]) -> float:
        """Serve `routes` from now on (graceful reload); the seconds it took to take effect."""
        if not self.alive():
            raise GatewayError(f"nginx is not running; its log ends:\n{self.tail()}")
        assert self.popen is not None
        started = time.monotonic()
        generation = self.generation + 1
        self._write(self.render(routes, generation))
        self.popen.send_signal(signal.SIGHUP)
        self._wait_generation(generation)
        self.generation = generation
        return time.monotonic() - started

    def _write(self, text: str) -> None:
        """Write the config atomically, after `nginx -t` accepted it."""
        candidate = self.conf.with_suffix(".conf.new")
        candidate.write_text(text)
        argv = [nginx_binary(), "-t", "-q", "-p", str(self.folder), "-e", str(self.log)]
        check = subprocess.run(
            [*argv, "-c", str(candidate)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise GatewayError(f"nginx refused the generated config:\n{check.stderr.strip()}")
        candidate.replace(self.conf)

    def _wait_generation(self, generation: int) -> None:
        """Wait until a new connection is answered by the config of `generation`."""
        url = self.url + GENERATION_PATH
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            if not self.alive():
                raise GatewayError(f"nginx exited; its log ends:\n{self.tail()}")
            try:
                answer = httpx.get(url, timeout=1.0, headers={"Connection": "close"})
                if answer.status_code == 200 and answer.text.strip() == str(generation):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.005)
        raise GatewayError(
            f"nginx did not serve config {generation} within {START_TIMEOUT_S:.0f} s; "
            f"its log ends:\n{self.tail()}"
        )

    def _clean_leftover(self) -> None:
        """Stop an nginx that an earlier, crashed run from this folder left behind."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if _is_ours(pid, self.folder):
            logger.warning("stopping nginx pid %d left by an earlier run", pid)
            _stop_pid(pid)
        self.pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop nginx by PID (SIGTERM to its group, SIGKILL after a timeout); idempotent."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("nginx pid %d ignored SIGTERM; killing it", self.popen.pid)
                self.popen.kill()
                self.popen.wait()
            # workers left by a killed master (or still finishing) go with the group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    end = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
