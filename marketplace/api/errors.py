"""One place that turns errors into HTTP answers: a 4xx that says what is wrong."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError

from marketplace.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    MarketplaceError,
    NotFoundError,
    PriceError,
    UnavailableError,
)

logger = logging.getLogger(__name__)

STATUS: list[tuple[type[MarketplaceError], int]] = [
    (NotFoundError, 404),
    (AuthError, 401),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (PriceError, 422),
    (UnavailableError, 503),
    (ConfigurationError, 503),
]


def status_of(exc: MarketplaceError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


async def _marketplace_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MarketplaceError)
    status = status_of(exc)
    logger.info(
        "request refused",
        extra={"path": request.url.path, "status": status, "error": type(exc).__name__},
    )
    return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, but safe for inputs JSON cannot carry back (NaN, Infinity, 1e400)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refuses (PostgreSQL text cannot hold NUL characters)."""
    assert isinstance(exc, DataError)
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    logger.info("request refused", extra={"path": request.url.path, "status": 422})
    return JSONResponse(
        {
            "detail": f"the request holds a value the database cannot store ({reason}); "
            "remove control characters such as NUL from the text you send",
            "error": "InvalidInputError",
        },
        status_code=422,
    )


async def _raced(request: Request, exc: Exception) -> JSONResponse:
    """Two requests (perhaps on two replicas) created the same row at once; one lost."""
    logger.info("request refused", extra={"path": request.url.path, "status": 409})
    return JSONResponse(
        {
            "detail": "the request conflicts with another applied at the same moment (for "
            "example a new signer's first two requests); sign it afresh and retry",
            "error": "ConflictError",
        },
        status_code=409,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s", request.url.path)
    return JSONResponse(
        {"detail": "internal error; the request was not applied", "error": type(exc).__name__},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(MarketplaceError, _marketplace_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(IntegrityError, _raced)
    app.add_exception_handler(Exception, _unexpected)
