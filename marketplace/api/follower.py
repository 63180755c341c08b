"""On a follower replica, refuse the requests that only the leader may serve.

Placing work (submitting a job, deploying or changing a service) reserves providers'
capacity, and co-signing down reports feeds the leader's watcher: both are the leader's
(:mod:`marketplace.leader`). A follower answers them 503 before anything is read or
recorded, so the load balancer (or the client) can send them to the leader instead.
Registrations, heartbeats, reads and service quotes are served by every replica; job
quotes need the scheduler's index, which only the leader keeps (they answer 503 on a
follower, as while the marketplace starts).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from marketplace.leader import Leadership

LEADER_ONLY = ("/v1/jobs", "/v1/services", "/v1/watch")
ANY_REPLICA = ("/v1/services/quote",)  # a job quote needs the scheduler: the leader's


def leader_only(method: str, path: str) -> bool:
    """Whether a request must be served by the leader (writes under LEADER_ONLY)."""
    if method in ("GET", "HEAD", "OPTIONS") or path in ANY_REPLICA:
        return False
    return any(path == p or path.startswith(p + "/") for p in LEADER_ONLY)


class LeaderOnly:
    """ASGI middleware: 503 for :func:`leader_only` requests while this replica follows."""

    def __init__(self, app: ASGIApp, leadership: Callable[[], Leadership | None]) -> None:
        self.app = app
        self.leadership = leadership

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and leader_only(scope["method"], scope["path"]):
            current = self.leadership()
            if current is not None and not current.leading:
                await _refuse(send)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    content = json.dumps(
        {
            "detail": "this replica follows: job and service placement is the leader's; "
            "send the request to the leader (GET /v1/leader answers 200 there) or retry",
            "error": "UnavailableError",
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(content)),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": content})
