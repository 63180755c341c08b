"""The gateway's request guard: only loopback host names and allowed page origins get in,
so neither other web sites nor DNS rebinding can use the renter's keys.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

logger = logging.getLogger(__name__)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
