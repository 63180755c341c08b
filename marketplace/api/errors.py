"""One place that turns errors into HTTP answers: a 4xx that says what is wrong."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s", request.url.path)
    return JSONResponse(
        {"detail": "internal error; the request was not applied", "error": type(exc).__name__},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(MarketplaceError, _marketplace_error)
    app.add_exception_handler(Exception, _unexpected)
