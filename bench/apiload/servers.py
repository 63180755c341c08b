"""The two servers the API bench loads: the marketplace and a bare FastAPI hello app.

Each runs under uvicorn in its own process (``python -m bench.api --serve KIND``) on a
free port of 127.0.0.1; :func:`start_server` waits until it answers.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent.parent


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/sync")
    def hello_sync() -> dict[str, str]:
        return {"hello": "world"}

    return app


def serve(kind: str, port: int, db: str | None) -> None:
    """Run one server in this process (the parent starts two of these)."""
    import uvicorn

    if kind == "bare":
        app = bare_app()
    else:
        from marketplace.app import create_app
        from marketplace.settings import Settings

        assert db is not None
        # Heartbeats are signed before the run; a wide clock window keeps a slow run's
        # last envelopes acceptable. The rate limiter stays on (its cost is in the figures)
        # with budgets wrk cannot reach: the bench floods from one loopback address, which
        # the default per-address limit would refuse. Nothing else differs from the defaults.
        settings = Settings(
            database_url=f"sqlite:///{db}",
            host=HOST,
            port=port,
            signature_max_skew_s=3600,
            rate_per_client=1e9,
            rate_burst_per_client=10**9,
            rate_per_signer=1e9,
            rate_burst_per_signer=10**9,
        )
        app = create_app(settings)
    uvicorn.run(app, host=HOST, port=port, workers=1, log_level="warning", access_log=False)


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if not 8545 <= port <= 8559:  # kept free for local chains
            return port


def start_server(kind: str, workdir: Path, *, db: Path | None, ready_path: str) -> Server:
    import httpx

    port = _free_port()
    log = workdir / f"{kind}.log"
    command = [sys.executable, "-m", "bench.api", "--serve", kind, "--port", str(port)]
    if db is not None:
        command += ["--db", str(db)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(kind, port, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(server.url + ready_path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"{kind} server did not start; its log:\n{log.read_text()[-3000:]}")
