"""The renter gateway: this machine's stored files over HTTP, for the dashboard's storage page.

Files are encrypted and erasure-coded on the renter's machine with keys and manifests that
never leave it, so a browser cannot store or read them on its own. ``dcloud file serve``
runs this small FastAPI app on loopback around one renter's :class:`StorageClient`; pages
from the allowed origins (the dashboard) list, upload, download, delete, check and repair
the renter's files through it.

    GET    /v1/info                  the renter's address, marketplace, default k and n
    GET    /v1/files                 every file with its last health summary; uploads under way
    POST   /v1/files                 multipart upload: field ``file``; ``name``, ``k``, ``n``
    GET    /v1/files/{name}          the file, decrypted and verified whole before it is sent
    DELETE /v1/files/{name}          delete its shards from their nodes and forget it
    GET    /v1/files/{name}/health   healthy shards of every segment, checked now
    POST   /v1/files/{name}/repair   rebuild lost shards onto other nodes

Errors are ``{"detail": "what to do", "error": "ErrorName"}``: 404 for a file that is not
stored, 409 for a name taken, 422 for bad input, 503 when the nodes or the marketplace
cannot do it (fewer than k shards reachable, no room on the nodes).

Guarantees: a request whose ``Host`` is not a loopback name (when bound to loopback) or
whose ``Origin`` is not allowed gets a 403, so neither other web sites nor DNS rebinding
can use the renter's keys. Health is re-checked on a background thread every
``health_every_s`` seconds and after every change, so listing is cheap to poll.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from agents.errors import AgentError, NotFoundError, RefusedError, UserError, VerificationError
from agents.storage.files.client import StorageClient
from agents.storage.files.codec import MAX_SHARDS
from agents.storage.files.fetch import NodeStats, NotEnoughShardsError
from agents.storage.files.manifest import Manifest, ObjectName
from agents.storage.files.repair import ObjectHealth, SegmentHealth, object_health, repair_object

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8790
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FileMissingError(NotFoundError):
    """No stored file has this name."""


class NameTakenError(UserError):
    """A file of this name is stored already, or being uploaded."""


STATUS: list[tuple[type[AgentError], int]] = [
    (NotFoundError, 404),
    (NameTakenError, 409),
    (NotEnoughShardsError, 503),
    (VerificationError, 409),
    (RefusedError, 503),
    (UserError, 422),
]


def status_of(exc: AgentError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 400)


# ---------------------------------------------------------------------- wire models


class HealthSummary(BaseModel):
    state: Literal["healthy", "degraded", "unreadable"]
    min_healthy: int
    """Healthy shards of the worst segment."""
    k: int
    n: int
    degraded_segments: int
    checked_at: float


class SegmentHealthPublic(BaseModel):
    index: int
    healthy: int
    problems: dict[int, str]


class FileHealth(HealthSummary):
    name: str
    segments: list[SegmentHealthPublic]


class FilePublic(BaseModel):
    name: str
    size: int
    created_at: float
    segments: int
    k: int
    n: int
    health: HealthSummary | None
    """None until the first check has finished."""
    problem: str | None = None
    """Why the file's record is unusable (a damaged manifest), else None."""


class UploadPublic(BaseModel):
    name: str
    size: int
    stored: int


class FileList(BaseModel):
    files: list[FilePublic]
    uploads: list[UploadPublic]


class Removed(BaseModel):
    name: str
    deleted: int
    missing: int
    failed: int


class Repaired(BaseModel):
    name: str
    segments_checked: int
    segments_repaired: int
    shards_rebuilt: int
    failures: list[str]
    health: HealthSummary


class GatewayInfo(BaseModel):
    address: str
    marketplace: str | None
    home: str
    k: int
    n: int
    health_every_s: float


def summary(health: ObjectHealth, checked_at: float) -> HealthSummary:
    state: Literal["healthy", "degraded", "unreadable"] = "healthy"
    if not health.readable:
        state = "unreadable"
    elif health.min_healthy < health.n:
        state = "degraded"
    return HealthSummary(
        state=state,
        min_healthy=health.min_healthy,
        k=health.k,
        n=health.n,
        degraded_segments=sum(len(s.healthy) < health.n for s in health.segments),
        checked_at=checked_at,
    )


def details(health: ObjectHealth, checked_at: float) -> FileHealth:
    return FileHealth(
        **summary(health, checked_at).model_dump(),
        name=health.name,
        segments=[
            SegmentHealthPublic(index=s.index, healthy=len(s.healthy), problems=s.problems)
            for s in health.segments
        ],
    )


# ---------------------------------------------------------------------- health monitor


@dataclass(frozen=True)
class Checked:
    health: ObjectHealth
    at: float
    """When the check started."""


class HealthMonitor:
    """The last known health of every object, re-checked every `every_s` s on a thread."""

    def __init__(self, client: StorageClient, *, every_s: float) -> None:
        self.client = client
        self.every_s = every_s
        self._lock = threading.Lock()
        self._known: dict[str, Checked] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def get(self, object_id: str) -> Checked | None:
        with self._lock:
            return self._known.get(object_id)

    def record(self, object_id: str, checked: Checked) -> None:
        """Keep `checked` unless a check that started later is known already."""
        with self._lock:
            known = self._known.get(object_id)
            if known is None or known.at <= checked.at:
                self._known[object_id] = checked

    def forget(self, object_id: str) -> None:
        with self._lock:
            self._known.pop(object_id, None)

    def check(self, manifest: Manifest, *, deep: bool = False) -> Checked:
        """Check every shard of the object now (and report what was seen of the nodes)."""
        started = time.time()
        stats = NodeStats()
        try:
            health = object_health(self.client, manifest, deep=deep, stats=stats)
        finally:
            self.client.send_reports(stats)
        checked = Checked(health, started)
        self.record(manifest.object_id, checked)
        return checked

    def stored(self, manifest: Manifest) -> None:
        """A put just stored every shard: all n are healthy."""
        segments = [SegmentHealth(s.index, [r.index for r in s.shards]) for s in manifest.segments]
        health = ObjectHealth(manifest.name, manifest.k, manifest.n, segments)
        self.record(manifest.object_id, Checked(health, time.time()))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            manifests = [m for _, m in self.client.store.entries() if isinstance(m, Manifest)]
            for manifest in manifests:
                if self._stop.is_set():
                    return
                try:
                    self.check(manifest)
                except AgentError as exc:
                    logger.warning("health check of %s failed: %s", manifest.name, exc)
                except Exception:  # the monitor outlives a bug in one check; it is logged
                    logger.exception("health check of %s failed", manifest.name)
            ids = {m.object_id for m in manifests}
            with self._lock:  # forget what another process deleted (not what is newer)
                self._known = {k: v for k, v in self._known.items() if k in ids or v.at >= started}
            self._stop.wait(self.every_s)


# ---------------------------------------------------------------------- uploads under way


class Uploads:
    """Names being stored now, with plaintext bytes stored so far (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now: dict[str, UploadPublic] = {}

    def begin(self, name: str, size: int, *, taken: Callable[[str], bool]) -> None:
        with self._lock:
            if name in self._now or taken(name):
                raise NameTakenError(
                    f"a file named {name!r} is stored already or being uploaded; delete it "
                    "first or upload under another name"
                )
            self._now[name] = UploadPublic(name=name, size=size, stored=0)

    def advance(self, name: str, stored: int) -> None:
        with self._lock:
            self._now[name].stored += stored

    def end(self, name: str) -> None:
        with self._lock:
            self._now.pop(name, None)

    def all(self) -> list[UploadPublic]:
        with self._lock:
            return [u.model_copy() for u in self._now.values()]


_NAME = TypeAdapter(ObjectName)


def upload_name(given: str | None, filename: str | None) -> str:
    """The name to store an upload under: `given`, else the upload's own file name."""
    name = (given or PurePosixPath((filename or "").replace("\\", "/")).name).strip()
    if not name:
        raise UserError("the upload has no file name; send the file with one or add a `name`")
    try:
        return _NAME.validate_python(name)
    except ValidationError:
        raise UserError(
            "a file name must be 1 to 255 characters without control characters"
        ) from None


# ---------------------------------------------------------------------- request guard


def hostname(host_header: str) -> str:
    """'localhost:8790' -> 'localhost', '[::1]:8790' -> '::1'."""
    try:
        return (urlsplit(f"//{host_header}").hostname or "").lower()
    except ValueError:
        return ""


class Guard:
    """403 for requests not addressed to a loopback name (when `hosts` is given) or sent by
    a page from another origin."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str] | None, origins: set[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = hostname(headers.get("host", ""))
        origin = headers.get("origin")
        if self.hosts is not None and host not in self.hosts:
            detail = (
                f"this gateway answers requests to 127.0.0.1 or localhost only, not {host!r}; "
                "open the dashboard with one of those names"
            )
            await _refuse(scope, receive, send, detail)
            return
        if origin is not None and origin not in self.origins:
            detail = (
                f"pages from {origin} may not use this gateway; if that is your dashboard, "
                f"restart it with `dcloud file serve --allow-origin {origin}`"
            )
            await _refuse(scope, receive, send, detail)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    logger.warning("refused %s %s: %s", scope["method"], scope["path"], detail)
    await JSONResponse({"detail": detail, "error": "ForbiddenError"}, status_code=403)(
        scope, receive, send
    )


# ---------------------------------------------------------------------- the app


def create_gateway(
    client: StorageClient,
    *,
    origins: Iterable[str],
    loopback_only: bool = True,
    k: int = 8,
    n: int = 12,
    health_every_s: float = 60.0,
) -> FastAPI:
    """The gateway's FastAPI app around `client`, for pages from `origins`."""
    monitor = HealthMonitor(client, every_s=health_every_s)
    uploads = Uploads()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        monitor.start()
        try:
            yield
        finally:
            monitor.stop()

    app = FastAPI(
        title="dcloud renter gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN; /openapi.json describes the API
        redoc_url=None,
    )
    allowed = set(origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(allowed),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["*"],
        expose_headers=["Content-Disposition"],
        allow_private_network=True,  # a dashboard served from the LAN may call loopback
        max_age=600,
    )
    app.add_middleware(Guard, hosts=LOOPBACK_NAMES if loopback_only else None, origins=allowed)
    _handlers(app)

    def find(name: str) -> Manifest:
        if not client.store.exists(name):
            raise FileMissingError(f"no stored file named {name!r}; GET /v1/files lists them")
        return client.store.find(name)  # raises VerificationError when the record is damaged

    def public(manifest: Manifest) -> FilePublic:
        checked = monitor.get(manifest.object_id)
        return FilePublic(
            name=manifest.name,
            size=manifest.size,
            created_at=manifest.created_at,
            segments=len(manifest.segments),
            k=manifest.k,
            n=manifest.n,
            health=summary(checked.health, checked.at) if checked else None,
        )

    @app.get("/v1/info")
    def info() -> GatewayInfo:
        """Whose files these are, and the erasure code uploads use by default."""
        market = client.market.url if client.market is not None else None
        return GatewayInfo(
            address=client.account.address,
            marketplace=market,
            home=str(client.home),
            k=k,
            n=n,
            health_every_s=health_every_s,
        )

    @app.get("/v1/files")
    def list_files() -> FileList:
        """Every stored file with its last health summary, and the uploads under way."""
        files = []
        for path, entry in client.store.entries():
            if isinstance(entry, Manifest):
                files.append(public(entry))
            else:
                files.append(
                    FilePublic(
                        name=path.stem,
                        size=0,
                        created_at=0,
                        segments=0,
                        k=0,
                        n=0,
                        health=None,
                        problem=str(entry),
                    )
                )
        return FileList(files=sorted(files, key=lambda f: f.name), uploads=uploads.all())

    @app.post("/v1/files", status_code=201)
    def upload(
        file: Annotated[UploadFile, File(description="the file to store")],
        name: Annotated[str | None, Form(description="store it under this name")] = None,
        k_: Annotated[int | None, Form(alias="k", ge=1, lt=MAX_SHARDS)] = None,
        n_: Annotated[int | None, Form(alias="n", ge=2, le=MAX_SHARDS)] = None,
    ) -> FilePublic:
        """Encrypt, erasure-code and spread the uploaded file over storage nodes."""
        stored_as = upload_name(name, file.filename)
        fh = file.file
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(0)
        uploads.begin(stored_as, size, taken=client.store.exists)
        try:
            manifest = client.put_stream(
                fh,
                size=size,
                name=stored_as,
                k=k_ or k,
                n=n_ or n,
                progress=lambda done: uploads.advance(stored_as, done),
            )
        finally:
            uploads.end(stored_as)
        monitor.stored(manifest)
        logger.info("stored %s (%d bytes) from an upload", stored_as, size)
        return public(manifest)

    @app.get("/v1/files/{name:path}/health")
    def health(
        name: str, deep: Annotated[bool, Query(description="download every shard")] = False
    ) -> FileHealth:
        """How many healthy shards each segment of the file has, checked now."""
        checked = monitor.check(find(name), deep=deep)
        return details(checked.health, checked.at)

    @app.post("/v1/files/{name:path}/repair")
    def repair(name: str) -> Repaired:
        """Rebuild the file's lost shards onto other nodes; failures are listed."""
        find(name)
        result = repair_object(client, name)
        checked = monitor.check(find(name))
        return Repaired(
            name=name,
            segments_checked=result.segments_checked,
            segments_repaired=result.segments_repaired,
            shards_rebuilt=result.shards_rebuilt,
            failures=result.failures,
            health=summary(checked.health, checked.at),
        )

    @app.get("/v1/files/{name:path}", response_class=FileResponse)
    def download(name: str) -> FileResponse:
        """The file's bytes: fetched, decoded, decrypted and checked whole, then sent."""
        manifest = find(name)
        folder = Path(tempfile.mkdtemp(prefix="dcloud-gateway-"))
        try:
            client.get(manifest.name, folder / "file")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(
            folder / "file",
            filename=PurePosixPath(name).name or "file",
            media_type="application/octet-stream",
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    @app.delete("/v1/files/{name:path}")
    def delete(
        name: str,
        force: Annotated[bool, Query(description="forget it even if some nodes are down")] = False,
    ) -> Removed:
        """Delete the file's shards from their nodes (freeing their space) and forget it."""
        manifest = find(name)
        result = client.rm(name, force=force)
        monitor.forget(manifest.object_id)
        return Removed(
            name=name, deleted=result.deleted, missing=result.missing, failed=result.failed
        )

    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(AgentError)
    async def _agent_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AgentError)
        status = status_of(exc)
        logger.info("%s %s: %d %s", request.method, request.url.path, status, exc)
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems), "error": "ValidationError"}, 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"detail": exc.detail, "error": "HTTPError"}, exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error; see the gateway's log", "error": type(exc).__name__},
            500,
        )
