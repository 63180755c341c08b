"""Real upstreams for the ingress tests: small FastAPI apps under uvicorn in threads.

Each answers who it is and what it was asked (path, headers), streams on /stream (the
second chunk only once the test says so), echoes WebSocket messages on /ws, and holds
/slow open until the test releases it. :func:`serve` runs any ASGI app the same way (the
marketplace stand-in of the controller tests).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

WAIT_S = 30.0


@dataclass
class Upstream:
    tag: str
    url: str = ""
    first_chunk_read: threading.Event = field(default_factory=threading.Event)
    slow_arrived: threading.Event = field(default_factory=threading.Event)
    slow_release: threading.Event = field(default_factory=threading.Event)


def upstream_app(up: Upstream) -> FastAPI:
    app = FastAPI()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            yield b"first\n"
            released = await asyncio.to_thread(up.first_chunk_read.wait, WAIT_S)
            yield b"second after the client read the first\n" if released else b"timed out\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        up.slow_arrived.set()
        released = await asyncio.to_thread(up.slow_release.wait, WAIT_S)
        return {"tag": up.tag, "released": released}

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_text(f"{up.tag}:{await ws.receive_text()}")
        except WebSocketDisconnect:
            pass

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def who(path: str, request: Request) -> dict[str, Any]:
        return {"tag": up.tag, "path": "/" + path, "headers": dict(request.headers)}

    return app


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """`app` under uvicorn in a thread on a free port of 127.0.0.1; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    waiting = threading.Event()
    while not server.started and thread.is_alive():
        waiting.wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def upstream(tag: str) -> Iterator[Upstream]:
    up = Upstream(tag)
    with serve(upstream_app(up)) as url:
        up.url = url
        yield up
