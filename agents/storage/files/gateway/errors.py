"""The gateway's errors and the one place errors become HTTP answers.

Every answer that is not a success is ``{"detail": "what to do", "error": "ErrorName"}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from agents.errors import AgentError, NotFoundError, RefusedError, UserError, VerificationError
from agents.storage.files.fetch import NotEnoughShardsError

logger = logging.getLogger(__name__)


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


def install_handlers(app: FastAPI) -> None:
    """Answer every error raised in `app` with its status and a JSON detail."""

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
