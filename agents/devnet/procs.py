"""Child processes of a local network: started with their logs in one folder, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from agents.errors import AgentError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Signal the process group and wait; SIGKILL if it does not exit in time."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def spawn(name: str, argv: list[str], *, logs: Path, env: dict[str, str] | None = None) -> Proc:
    """Start `argv` in its own session, stdout+stderr appended to ``logs/<name>.log``."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as fh:
        popen = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return Proc(name, popen, log)


def python(*args: str) -> list[str]:
    """argv running this interpreter (so children use the same environment)."""
    return [sys.executable, *args]


def wait_http(proc: Proc, url: str, *, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200; raise with the log's tail if the process dies first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not proc.alive():
            raise AgentError(f"{proc.name} exited at start:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AgentError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.tail()}")
