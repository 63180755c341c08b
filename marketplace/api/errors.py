"""One place that turns errors into HTTP answers: a 4xx that says what is wrong."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError

from marketplace.api.follower import leader_only
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


class Problem(BaseModel):
    """The body of every refusal: what is wrong and how to fix it, and the error's name."""

    detail: str
    error: str


class ValidationIssue(BaseModel):
    """One field that failed validation (FastAPI's shape)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: the fields that failed validation, or a sentence (with `error`) for a body
    that is not a JSON object, nests too deeply, or holds what the database cannot store."""

    detail: list[ValidationIssue] | str
    error: str | None = None


Responses = dict[int | str, dict[str, Any]]


def refusal(description: str) -> dict[str, Any]:
    """A documented error answer (for FastAPI's ``responses=``), its body a Problem."""
    return {"model": Problem, "description": description}


INVALID: Responses = {
    422: {
        "model": ValidationProblem,
        "description": "the request does not fit its schema, or holds a value that cannot be "
        "stored",
    }
}
SIGNED: Responses = {
    401: refusal("the signature, signer or timestamp is not acceptable, or it is a replay"),
    409: refusal(
        "the signer is not registered, or another request of the signer was applied at the "
        "same moment"
    ),
}
UNAVAILABLE: Responses = {503: refusal("the marketplace cannot answer this now (see detail)")}


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


def document(app: FastAPI, *, regions: Collection[str]) -> None:
    """Make the app's OpenAPI document say what its errors really are: every 422 is a
    :class:`ValidationProblem` (a list of fields, or a sentence) in place of FastAPI's
    list-only default, every operation with a body documents it (and the 400 of a body
    that cannot be read), and every operation a follower replica refuses documents that
    503. A member's `region` lists the `regions` this marketplace knows."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        ref = "#/components/schemas/{model}"
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ValidationProblem, Problem):
            found = model.model_json_schema(ref_template=ref)
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        invalid = {
            "description": INVALID[422]["description"],
            "content": {
                "application/json": {"schema": {"$ref": ref.format(model="ValidationProblem")}}
            },
        }
        unreadable = {
            "description": "the body cannot be read as JSON text (for example, not UTF-8)",
            "content": {
                "application/json": {"schema": {"$ref": ref.format(model="ValidationProblem")}}
            },
        }
        unavailable = {
            "description": UNAVAILABLE[503]["description"],
            "content": {"application/json": {"schema": {"$ref": ref.format(model="Problem")}}},
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                if "422" in responses or "requestBody" in operation:
                    responses["422"] = invalid
                if "requestBody" in operation:
                    responses["400"] = unreadable
                if leader_only(method.upper(), path):
                    responses.setdefault("503", unavailable)
        for name, component in components.items():
            if name.endswith("Registration"):  # a member names its region
                _known_regions(component.get("properties", {}).get("region"), sorted(regions))
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _known_regions(field: dict[str, Any] | None, regions: list[str]) -> None:
    """Give a `region` field's string alternative the enum of known regions."""
    if field is None:
        return
    for alternative in [field, *field.get("anyOf", [])]:
        if alternative.get("type") == "string":
            alternative["enum"] = regions
