"""The provider agent's HTTP API (see ``protocol.provider_api``), served to renters."""

from __future__ import annotations

import functools
import logging
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse

from agents.errors import (
    AgentError,
    ChainUnavailableError,
    NotFoundError,
    RefusedError,
    UserError,
    VerificationError,
)
from agents.provider.jobs import JobRunner
from agents.provider.lease_store import LeaseRecord
from agents.provider.leases import ServiceLeases
from agents.provider.store import JobRecord
from agents.wallet import TRANSIENT
from protocol import provider_api as api
from protocol.keywrap import public_key_of
from protocol.ratelimit import OPENAPI_429, RateLimit
from protocol.signing import SeenSignatures, SignatureError, verify_envelope, verify_headers

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2  # a chain hiccup (RPC restart, nonce race) passes in seconds


Signer = Annotated[str | None, Header(alias=api.SIGNER_HEADER)]
Stamp = Annotated[str | None, Header(alias=api.TIMESTAMP_HEADER)]
Sig = Annotated[str | None, Header(alias=api.SIGNATURE_HEADER)]


def create_app(
    runner: JobRunner, leasing: ServiceLeases | None = None, *, version: str = "1"
) -> FastAPI:
    """The agent's API over its jobs and, given `leasing`, its services."""
    app = FastAPI(title="dcloud provider agent", version=version, responses=OPENAPI_429)
    app.add_middleware(RateLimit, limiter=runner.cfg.rate_limiter())  # inside CORS
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=[
            "content-type",
            api.SIGNER_HEADER,
            api.TIMESTAMP_HEADER,
            api.SIGNATURE_HEADER,
        ],
    )
    # a renter's pushes and reads come in parallel, out of order: each signature once
    seen = SeenSignatures()

    @functools.cache
    def public_key() -> str:
        """Renters wrap their image layers' keys to it (it hashes to this agent's address)."""
        return public_key_of(bytes(runner.wallet.account.key))

    headers = (api.SIGNER_HEADER, api.TIMESTAMP_HEADER, api.SIGNATURE_HEADER)

    @app.exception_handler(AgentError)
    async def _agent_error(request: Request, exc: Exception) -> JSONResponse:
        status = 400
        if isinstance(exc, ChainUnavailableError):
            return _retry_later(str(exc), type(exc).__name__)
        if isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, VerificationError | SignatureError):
            status = 401
        elif isinstance(exc, RefusedError):
            status = 409
        elif isinstance(exc, UserError):
            status = 422
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

    async def _chain_down(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("chain unavailable", extra={"error": str(exc)})
        return _retry_later(
            f"this provider cannot reach its chain now ({exc.__class__.__name__}); try again",
            "ChainUnavailableError",
        )

    for kind in TRANSIENT:  # a chain hiccup anywhere is a 503, never a 500
        app.add_exception_handler(kind, _chain_down)

    @app.exception_handler(SignatureError)
    async def _sig_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": "SignatureError"}, status_code=401)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors, "error": "ValidationError"}, status_code=422)

    @app.get("/v1/health", response_model=api.ProviderHealth)
    def health() -> api.ProviderHealth:
        return api.ProviderHealth(
            address=runner.me,
            chain_id=runner.wallet.chain_id,
            images=sorted(set(runner.cfg.images) & set(runner.runtime.images())),
            free=runner.free(),
            price_wei=runner.cfg.price_wei,
            jobs_running=sum(
                1 for r in runner.store.all(unfinished=True) if r.state == api.RUNNING
            ),
            services_running=leasing.running() if leasing is not None else 0,
            public_key=public_key(),
        )

    @app.post("/v1/jobs", status_code=202, response_model=api.ProviderJob)
    def push(body: dict[str, Any]) -> api.ProviderJob:
        signer = verify_envelope(body, purpose=api.PUSH, guard=seen)
        message = api.JobPush.model_validate(body["payload"])
        return _public(runner.receive(message, signer))

    def reader(
        request: Request, job_id: int, signer: str | None, ts: str | None, sig: str | None
    ) -> JobRecord:
        who = verify_headers(
            request.headers,
            names=headers,
            purpose=api.FETCH,
            payload={"method": "GET", "path": request.url.path},
            guard=seen,
        )
        rec = runner.store.get(job_id)
        if rec is None:
            raise NotFoundError(f"this provider has no job {job_id}")
        if rec.renter != who:
            raise VerificationError(f"only job {job_id}'s renter may read it")
        return rec

    @app.get("/v1/jobs/{job_id}", response_model=api.ProviderJob)
    def get_job(
        job_id: int, request: Request, s: Signer = None, t: Stamp = None, g: Sig = None
    ) -> api.ProviderJob:
        return _public(reader(request, job_id, s, t, g))

    @app.get("/v1/jobs/{job_id}/logs", response_class=PlainTextResponse)
    def logs(
        job_id: int, request: Request, s: Signer = None, t: Stamp = None, g: Sig = None
    ) -> PlainTextResponse:
        reader(request, job_id, s, t, g)
        return PlainTextResponse(runner.logs(job_id), media_type="text/plain; charset=utf-8")

    @app.get("/v1/jobs/{job_id}/result", response_model=api.ProviderJob)
    def result(
        job_id: int, request: Request, s: Signer = None, t: Stamp = None, g: Sig = None
    ) -> api.ProviderJob:
        rec = reader(request, job_id, s, t, g)
        if rec.result_hash is None:
            raise NotFoundError(f"job {job_id} has no result yet (state {rec.state})")
        return _public(rec).model_copy(update={"salt": rec.salt})

    @app.get("/v1/jobs/{job_id}/files/{path:path}")
    def file(
        job_id: int, path: str, request: Request, s: Signer = None, t: Stamp = None, g: Sig = None
    ) -> FileResponse:
        reader(request, job_id, s, t, g)
        try:
            target = runner.output_path(job_id, path)
        except FileNotFoundError:
            raise NotFoundError(f"job {job_id} has no output file {path!r}") from None
        return FileResponse(target, media_type="application/octet-stream")

    if leasing is not None:
        _service_routes(app, leasing, seen)
    return app


def _service_routes(app: FastAPI, leasing: ServiceLeases, seen: SeenSignatures) -> None:
    headers = (api.SIGNER_HEADER, api.TIMESTAMP_HEADER, api.SIGNATURE_HEADER)

    @app.post("/v1/services", status_code=202, response_model=api.ProviderService)
    def push_service(body: dict[str, Any]) -> api.ProviderService:
        signer = verify_envelope(body, purpose=api.SERVICE_PUSH, guard=seen)
        message = api.ServicePush.model_validate(body["payload"])
        return leasing.public(leasing.receive(message, signer))

    @app.post("/v1/services/failover", status_code=202, response_model=api.ProviderService)
    def push_failover(body: dict[str, Any]) -> api.ProviderService:
        signer = verify_envelope(body, purpose=api.SERVICE_FAILOVER, guard=seen)
        message = api.ServiceFailover.model_validate(body["payload"])
        return leasing.public(leasing.receive_failover(message, signer))

    def lease_reader(request: Request, lease_id: int) -> LeaseRecord:
        who = verify_headers(
            request.headers,
            names=headers,
            purpose=api.FETCH,
            payload={"method": "GET", "path": request.url.path},
            guard=seen,
        )
        rec = leasing.store.get(lease_id)
        if rec is None:
            raise NotFoundError(f"this provider has no service under lease {lease_id}")
        if rec.renter != who:
            raise VerificationError(f"only lease {lease_id}'s renter may read its service")
        return rec

    @app.get("/v1/services/{lease_id}", response_model=api.ProviderService)
    def get_service(
        lease_id: int, request: Request, s: Signer = None, t: Stamp = None, g: Sig = None
    ) -> api.ProviderService:
        return leasing.public(lease_reader(request, lease_id))

    @app.get("/v1/services/{lease_id}/logs", response_class=PlainTextResponse)
    def service_logs(
        lease_id: int,
        request: Request,
        lines: Annotated[int, Query(ge=0, le=100_000)] = 200,
        follow: bool = False,
        since: Annotated[float | None, Query(ge=0)] = None,
        s: Signer = None,
        t: Stamp = None,
        g: Sig = None,
    ) -> Response:
        rec = lease_reader(request, lease_id)
        if not rec.live:
            raise NotFoundError(f"lease {lease_id} ended ({rec.detail}); its logs are gone")
        text = "text/plain; charset=utf-8"
        if follow:
            stream = leasing.services.logs_follow(rec.key, since=since)
            return StreamingResponse(stream, media_type=text)
        return PlainTextResponse(leasing.services.logs_tail(rec.key, lines=lines), media_type=text)


def _retry_later(detail: str, error: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "error": error},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _public(rec: JobRecord) -> api.ProviderJob:
    run = rec.run
    return api.ProviderJob(
        chain_job_id=rec.chain_job_id,
        renter=rec.renter,
        state=rec.state,
        detail=rec.detail,
        exit_code=run.get("exit_code"),
        oom_killed=bool(run.get("oom_killed", False)),
        timed_out=bool(run.get("timed_out", False)),
        started_at=run.get("started_at"),
        finished_at=run.get("finished_at"),
        result_hash=rec.result_hash,
        outputs=[api.OutputFile(**o) for o in run.get("outputs", [])],
    )
