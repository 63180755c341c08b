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
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from agents.storage.files.client import StorageClient
from agents.storage.files.codec import MAX_SHARDS
from agents.storage.files.gateway.errors import FileMissingError, install_handlers
from agents.storage.files.gateway.guard import LOOPBACK_NAMES, Guard
from agents.storage.files.gateway.models import (
    FileHealth,
    FileList,
    FilePublic,
    GatewayInfo,
    Removed,
    Repaired,
    details,
    summary,
)
from agents.storage.files.gateway.monitor import HealthMonitor
from agents.storage.files.gateway.uploads import Uploads, upload_name
from agents.storage.files.manifest import Manifest
from agents.storage.files.repair import repair_object

logger = logging.getLogger(__name__)


DEFAULT_PORT = 8790


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
    install_handlers(app)

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
        market = client.market.base_url if client.market is not None else None
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
