"""The S3 front door's HTTP server: a Starlette app on uvicorn.

Each request is addressed (path-style ``/bucket/key``, or virtual-host-style
``bucket.<domain>/key``), its SigV4 signature checked, and handed to its operation
(:mod:`agents.s3.routes`) on a worker thread; the request body reaches the operation as
a stream pulled from the connection as the storage client reads it, and an object's bytes
go back as they are decoded. Every error becomes S3's ``<Error>`` document with S3's code
and status; a bug is logged with its traceback and answered with ``InternalError``.
One log line per request: ``s3 op=... bucket=... key=... status=... bytes=... ms=...``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import anyio
from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from agents.s3.body import Source
from agents.s3.documents import error_document
from agents.s3.errors import S3Error
from agents.s3.sigv4 import Authorized, RequestView, Verifier

logger = logging.getLogger(__name__)

BATCH = 1 << 20  # request body bytes handed to the operation's thread at a time
PREFETCH = 8  # batches received ahead of the operation


@dataclass
class Call:
    """One request as the operations see it."""

    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","
    view: RequestView
    source: Source
    request_id: str
    op: str = ""


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterator[bytes] = b""


def address(host: str, raw_path: str, domain: str) -> tuple[str, str, bool]:
    """(bucket, key, virtual) of a request: virtual-host-style when the host is
    ``<bucket>.<domain>``, else path-style."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    path = unquote(raw_path)
    if domain and name.endswith("." + domain) and name != domain:
        return name[: -len(domain) - 1], path.lstrip("/"), True
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key, False


class Intake:
    """A request body received ahead of the operation that reads it, into a bounded buffer
    (at most PREFETCH batches of about BATCH bytes), so the network and the storage
    pipeline work at the same time. Nothing is received before the operation first reads:
    a request refused at once never asks a client waiting on 100-continue for its body."""

    def __init__(self, request: Request, tg: TaskGroup) -> None:
        self._request = request
        self._tg = tg
        self._send, self._receive = anyio.create_memory_object_stream[bytes](PREFETCH)
        self._started = False
        self.ended = False  # every byte of the body came in

    async def _pump(self) -> None:
        batch: list[bytes] = []
        got = 0
        async with self._send:
            async for part in self._request.stream():
                batch.append(part)
                got += len(part)
                if got >= BATCH:
                    await self._send.send(b"".join(batch))
                    batch, got = [], 0
            self.ended = True
            if batch:
                await self._send.send(b"".join(batch))

    def read(self) -> bytes:
        """The next bytes of the body (b"" at its end); called on the operation's thread."""
        if not self._started:
            self._started = True
            anyio.from_thread.run_sync(self._tg.start_soon, self._pump)
        try:
            return anyio.from_thread.run(self._receive.receive)
        except anyio.EndOfStream:
            return b""


def _error_reply(err: S3Error, request_id: str, head: bool) -> Reply:
    headers = {"x-amz-request-id": request_id}
    if err.status == 304:
        return Reply(304, headers)
    if err.status == 503:
        headers["retry-after"] = "1"
    body = b"" if head else error_document(err, request_id=request_id)
    return Reply(err.status, {**headers, "content-type": "application/xml"}, body)


class S3App:
    """ASGI app: `handle(call)` (on a worker thread) does the operation."""

    def __init__(
        self,
        *,
        verifier: Verifier,
        handle: Callable[[Call, Authorized], Reply],
        domain: str = "localhost",
    ) -> None:
        self.verifier = verifier
        self.handle = handle
        self.domain = domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        start = time.perf_counter()
        request_id = secrets.token_hex(8).upper()
        scope = request.scope
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        raw_query = scope.get("query_string", b"").decode("latin-1")
        pairs = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        host = next((v for k, v in pairs if k == "host"), "")
        headers: dict[str, str] = {}
        for k, v in pairs:
            headers[k] = f"{headers[k]},{v}" if k in headers else v
        bucket, key, virtual = address(host, raw_path, self.domain)
        async with anyio.create_task_group() as tg:
            intake = Intake(request, tg)
            call = Call(
                method=request.method,
                bucket=bucket,
                key=key,
                query=dict(request.query_params),
                headers=headers,
                view=RequestView(
                    request.method,
                    host,
                    raw_path,
                    raw_query,
                    pairs,
                    auth_path=f"/{bucket}{raw_path}" if virtual else raw_path,
                ),
                source=intake.read,
                request_id=request_id,
            )
            head = request.method == "HEAD"
            try:
                auth = self.verifier.verify(call.view)
                reply = await anyio.to_thread.run_sync(self.handle, call, auth)
            except S3Error as err:
                reply = _error_reply(err, request_id, head)
            except Exception:
                logger.exception("s3 bug op=%s bucket=%s key=%s", call.op, bucket, key)
                bug = S3Error(
                    "InternalError", "We encountered an internal error. Please try again."
                )
                reply = _error_reply(bug, request_id, head)
            finally:
                tg.cancel_scope.cancel()  # a body the operation did not read to its end
        reply.headers.setdefault("x-amz-request-id", request_id)
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if has_body and not intake.ended and reply.status >= 300:
            # Refused before its body was read (the client may wait on 100-continue and
            # never send it): the connection cannot carry another request.
            reply.headers["connection"] = "close"
        size = reply.headers.get("content-length", "-")
        logger.info(
            "s3 op=%s bucket=%s key=%s status=%d bytes=%s ms=%.1f",
            call.op or "-",
            bucket or "-",
            key or "-",
            reply.status,
            size,
            (time.perf_counter() - start) * 1000,
        )
        if isinstance(reply.body, bytes):
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
        return StreamingResponse(reply.body, status_code=reply.status, headers=reply.headers)
