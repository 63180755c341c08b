"""Bodies are held to their schema's JSON types: no number from ``false`` or ``"1"``.

FastAPI validates a body in pydantic's lax mode, which turns ``true`` into ``1.0`` and
``"7"`` into ``7``: values the OpenAPI document says are not numbers. This dependency
validates the body again in strict JSON mode (where a JSON array still makes a tuple and a
string a datetime), and refuses what only lax mode accepted with FastAPI's own 422. A
number with no fractional part (``2.0``) stays an integer, as JSON Schema counts it. A
body that lax mode refuses too is left to FastAPI, which says why.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

_adapters: dict[int, TypeAdapter[Any] | None] = {}


def _adapter(route: Any) -> TypeAdapter[Any] | None:
    key = id(route)
    if key not in _adapters:
        field = getattr(route, "body_field", None)
        annotation = getattr(getattr(field, "field_info", None), "annotation", None)
        _adapters[key] = TypeAdapter(annotation) if annotation is not None else None
    return _adapters[key]


def _integral(error: Any) -> bool:
    """A JSON number with no fractional part (``2.0``) where an integer goes: JSON Schema
    counts it an integer, and lax mode takes it as one."""
    value = error.get("input")
    return bool(error.get("type") == "int_type" and isinstance(value, float) and value.is_integer())


async def strict_body(request: Request) -> None:
    """Refuse (422) a JSON body only lax validation accepts."""
    if request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return
    adapter = _adapter(request.scope.get("route"))
    if adapter is None:
        return
    body = await request.body()
    try:
        adapter.validate_json(body, strict=True)
        return
    except ValidationError as strict:
        try:
            adapter.validate_python(json.loads(body))
        except (ValueError, ValidationError):
            return  # lax mode refuses it too: FastAPI answers with its reasons
        errors = [e for e in strict.errors(include_url=False) if not _integral(e)]
    if not errors:
        return
    raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors], body=body)
