"""Answers 405, with an Allow header naming every method of the path, to a method the
OpenAPI document does not declare for it.

Routing alone answers some such requests from another operation (``GET
/v1/providers/heartbeat`` reached ``GET /v1/providers/{address}`` and got a 422), and a 405
named only one route's methods where two routes share a path. A path the document does
not describe (the dashboard, static files) passes through untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

Template = tuple[re.Pattern[str], frozenset[str]]


def templates(paths: dict[str, Any]) -> tuple[dict[str, frozenset[str]], list[Template]]:
    """(literal path -> its methods, [(pattern, methods)] of templated paths)."""
    literal: dict[str, frozenset[str]] = {}
    templated: list[Template] = []
    for path, operations in paths.items():
        methods = frozenset(m.upper() for m in operations if m != "parameters")
        if "{" not in path:
            literal[path] = methods
            continue
        pattern = re.escape(path)
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", pattern)
        templated.append((re.compile(f"^{pattern}$"), methods))
    return literal, templated


def allowed(path: str, paths: tuple[dict[str, frozenset[str]], list[Template]]) -> frozenset[str]:
    """The methods the document declares for `path` (empty: it does not describe it)."""
    literal, templated = paths
    if path in literal:
        return literal[path]
    found: frozenset[str] = frozenset()
    for pattern, methods in templated:
        if pattern.match(path):
            found |= methods
    return found


class DeclaredMethods:
    """ASGI middleware: 405 and Allow for a method the document does not declare."""

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.openapi = openapi
        self._paths: tuple[dict[str, frozenset[str]], list[Template]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._paths is None:
                self._paths = templates(self.openapi().get("paths", {}))
            methods = allowed(scope["path"], self._paths)
            if methods and scope["method"] not in methods:
                await _refuse(send, methods)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, methods: frozenset[str]) -> None:
    content = json.dumps({"detail": "Method Not Allowed"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(content)),
        (b"allow", ", ".join(sorted(methods)).encode()),
    ]
    await send({"type": "http.response.start", "status": 405, "headers": headers})
    await send({"type": "http.response.body", "body": content})
