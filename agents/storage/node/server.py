"""The storage node's HTTP API (``protocol.storage`` describes it): shards by id, signed.

Every shard request is signed by the renter (see :mod:`agents.storage.wire`); the signer
that stored a shard owns it. The node serves the bytes as they are on disk: checking them
is the renter's job (every shard's sha256 is in its manifest) and the auditors'.

An owner may let another account read some of its shards (a provider pulling the
renter's image): the grantee posts the owner's signed grant to ``POST /v1/grants`` and
may then ``GET`` exactly those shards until the grant expires (:mod:`.grants`).
"""

from __future__ import annotations

import base64
import logging
from typing import Annotated

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from agents.storage.node.grants import GrantBook
from agents.storage.node.store import (
    InvalidShardRequestError,
    NotOwnerError,
    ShardError,
    ShardStore,
)
from agents.storage.wire import ReplayGuard
from protocol import merkle
from protocol.images import SignedGrant, verify_grant
from protocol.ratelimit import OPENAPI_429, Limiter, RateLimit, RateLimitSettings
from protocol.signing import SignatureError
from protocol.storage import (
    CONTENT_SHA256_HEADER,
    MAX_SHARD_BYTES,
    NodeHealth,
    ShardInfo,
    ShardProof,
)

logger = logging.getLogger(__name__)

MAX_GRANT_BODY_BYTES = 8 * 2**20  # a grant of 65536 shard ids is about 4.5 MB of JSON

ShardIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32,64}$", description="the shard's id")]


class _AuthError(Exception):
    pass


def create_node_app(
    store: ShardStore,
    *,
    address: str,
    endpoint: str,
    guard: ReplayGuard | None = None,
    limiter: Limiter | None = None,
    grants: GrantBook | None = None,
) -> FastAPI:
    """The node's FastAPI app over `store`; `limiter` defaults to the default rate limits."""
    guard = guard or ReplayGuard()
    book = grants or GrantBook()
    app = FastAPI(title="dcloud storage node", version="0.1.0", responses=OPENAPI_429)
    app.add_middleware(RateLimit, limiter=limiter or RateLimitSettings().rate_limiter())

    def signer(request: Request, *, sha256: str | None = None, size: int | None = None) -> str:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            return guard.check(request.headers, request.method, path, sha256=sha256, size=size)
        except SignatureError as exc:
            raise _AuthError(str(exc)) from None

    @app.exception_handler(ShardError)
    async def _shard_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ShardError)
        return JSONResponse(
            {"detail": str(exc), "error": type(exc).__name__}, status_code=exc.status
        )

    @app.exception_handler(_AuthError)
    async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": "AuthError"}, status_code=401)

    @app.get("/v1/health", response_model=NodeHealth)
    def health() -> NodeHealth:
        """Public: who the node is and how much room it has."""
        return NodeHealth(
            address=address,
            endpoint=endpoint,
            quota_bytes=store.quota_bytes,
            used_bytes=store.used_bytes,
            free_bytes=store.free_bytes,
            shards=store.shard_count,
        )

    @app.put("/v1/shards/{shard_id}", status_code=201)
    async def put_shard(shard_id: ShardIdPath, request: Request) -> Response:
        """Store a shard; the signature covers its sha256 (header) and size."""
        sha256 = request.headers.get(CONTENT_SHA256_HEADER, "")
        try:
            size = int(request.headers.get("content-length", ""))
        except ValueError:
            return _refuse(411, "send the shard with a Content-Length", "LengthRequired")
        if size > MAX_SHARD_BYTES:
            return _refuse(
                413,
                f"a shard may hold at most {MAX_SHARD_BYTES} bytes; this one has {size}",
                "ShardTooLarge",
            )
        if len(sha256) != 64:
            return _refuse(
                422, f"send the body's sha256 hex in {CONTENT_SHA256_HEADER}", "BadHeader"
            )
        owner = signer(request, sha256=sha256, size=size)
        store.reserve(shard_id, size)
        try:
            data = await request.body()
            if len(data) != size:
                raise InvalidShardRequestError(f"the body has {len(data)} bytes, not {size}")
            created = await run_in_threadpool(
                store.put, shard_id, owner=owner, data=data, sha256=sha256
            )
        finally:
            store.release(shard_id, size)
        return Response(status_code=201 if created else 200)

    @app.post("/v1/grants", status_code=201)
    async def post_grant(request: Request) -> Response:
        """Hold a read grant, posted by its grantee (the body is a SignedGrant)."""
        try:
            size = int(request.headers.get("content-length", ""))
        except ValueError:
            return _refuse(411, "send the grant with a Content-Length", "LengthRequired")
        if size > MAX_GRANT_BODY_BYTES:
            return _refuse(
                413, f"a grant may have at most {MAX_GRANT_BODY_BYTES} bytes", "GrantTooLarge"
            )
        grantee = signer(request)
        body = await request.body()
        try:
            signed = SignedGrant.model_validate_json(body)
        except ValidationError as exc:
            return _refuse(422, f"the body is not a signed grant: {_first(exc)}", "BadGrant")
        try:
            grant = verify_grant(signed, node=address, grantee=grantee)
        except SignatureError as exc:
            raise _AuthError(str(exc)) from None
        book.add(grant)
        return Response(status_code=201)

    @app.get("/v1/shards/{shard_id}")
    def get_shard(shard_id: ShardIdPath, request: Request) -> Response:
        """The shard's bytes, for its owner or an account it granted them to."""
        reader = signer(request)
        record = store.record(shard_id)
        if record.owner != reader and not book.allows(shard_id, owner=record.owner, reader=reader):
            raise NotOwnerError(
                f"shard {shard_id} belongs to another account; only its owner, or an account "
                "holding its owner's read grant for it here, may read it"
            )
        data = store.read(shard_id)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={CONTENT_SHA256_HEADER: record.sha256},
        )

    @app.get("/v1/shards/{shard_id}/meta", response_model=ShardInfo)
    def shard_meta(
        shard_id: ShardIdPath,
        request: Request,
        verify: Annotated[bool, Query(description="re-hash the bytes on disk")] = False,
    ) -> ShardInfo:
        """The shard's size and sha256, for its owner; with verify, hashed from disk now."""
        owner = signer(request)
        if verify:
            record, sha256 = store.verify(shard_id, owner=owner)
        else:
            record = store.owned(shard_id, owner)
            sha256 = record.sha256
        return ShardInfo(
            id=shard_id,
            size=record.size,
            sha256=sha256,
            stored_at=record.stored_at,
            verified=verify,
        )

    @app.get("/v1/shards/{shard_id}/proof", response_model=ShardProof)
    def shard_proof(
        shard_id: ShardIdPath,
        request: Request,
        chunk: Annotated[int, Query(ge=0, le=2**40)],
    ) -> ShardProof:
        """One chunk of the shard with its Merkle proof, for its owner (audits)."""
        owner = signer(request)
        store.owned(shard_id, owner)
        data = store.read(shard_id)
        leaves = merkle.chunk_leaves(data)
        if chunk >= len(leaves):
            raise InvalidShardRequestError(
                f"the shard has {len(leaves)} chunks; ask for 0..{len(leaves) - 1}"
            )
        size = merkle.CHUNK_BYTES
        return ShardProof(
            id=shard_id,
            chunk_index=chunk,
            chunks=len(leaves),
            chunk=base64.b64encode(data[chunk * size : (chunk + 1) * size]).decode(),
            proof=["0x" + p.hex() for p in merkle.proof(leaves, chunk)],
            root="0x" + merkle.root(leaves).hex(),
        )

    @app.delete("/v1/shards/{shard_id}", status_code=204)
    def delete_shard(shard_id: ShardIdPath, request: Request) -> Response:
        """Delete a shard and free its space, for its owner."""
        store.delete(shard_id, owner=signer(request))
        return Response(status_code=204)

    return app


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def _refuse(status: int, detail: str, error: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": error}, status_code=status)
