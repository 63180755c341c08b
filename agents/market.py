"""Signed requests to the marketplace, shared by every agent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from agents.errors import NotFoundError, RefusedError
from protocol.signing import sign_request

# A 429 is retried after its Retry-After, at most this often and only for short waits.
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_MAX_WAIT_S = 5.0


class Stamp:
    """Millisecond timestamps that strictly increase (servers refuse a repeated one)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1_000_000, self._last + 1)
            return self._last


class MarketClient:
    def __init__(self, base_url: str, account: LocalAccount, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.account = account
        # Idle connections are dropped well before the server's keep-alive timeout (uvicorn:
        # 5 s), so a request never goes out on a connection the server is closing (a reset
        # seen under load).
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout, limits=httpx.Limits(keepalive_expiry=2.0)
        )
        self.stamp = Stamp()

    def close(self) -> None:
        self.http.close()

    def post_signed(self, path: str, *, purpose: str, payload: Any) -> Any:
        def signed() -> dict[str, Any]:  # signed afresh for each try (the clock must advance)
            return sign_request(
                self.account, purpose=purpose, payload=payload, timestamp_ms=self.stamp.next()
            )

        return self._answer(self._send("POST", path, body=signed))

    def post(self, path: str, payload: Any) -> Any:
        return self._answer(self._send("POST", path, body=lambda: payload))

    def get(self, path: str, **params: Any) -> Any:
        return self._answer(self._send("GET", path, params=params or None))

    def _send(
        self, method: str, path: str, *, body: Callable[[], Any] | None = None, **kw: Any
    ) -> httpx.Response:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                if body is not None:
                    kw["json"] = body()
                r = self.http.request(method, path, **kw)
            except httpx.HTTPError as exc:
                raise RefusedError(
                    f"the marketplace at {self.base_url} is not reachable "
                    f"({exc.__class__.__name__}); check the URL or start it (`make marketplace`)"
                ) from None
            wait = retry_after_s(r)
            if wait is None or wait > RATE_LIMIT_MAX_WAIT_S or attempt == RATE_LIMIT_RETRIES:
                return r
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _answer(self, r: httpx.Response) -> Any:
        if r.status_code < 400:
            return r.json()
        detail = describe(r)
        if r.status_code == 404:
            raise NotFoundError(detail)
        if r.status_code == 429:
            raise RefusedError(
                f"the marketplace at {self.base_url} is rate limiting this key or address "
                f"({detail}); send fewer requests, or retry in "
                f"{r.headers.get('retry-after', 'a few')} s"
            )
        raise RefusedError(f"the marketplace refused: {detail}")


def retry_after_s(r: httpx.Response) -> float | None:
    """The seconds a 429 asks to wait (None: not a 429)."""
    if r.status_code != 429:
        return None
    try:
        return max(1.0, float(r.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def describe(r: httpx.Response) -> str:
    """A one-line reason from an error response (ours, or FastAPI's validation list)."""
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}: {r.text[:200]}"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for e in detail[:5]:
            loc = ".".join(str(x) for x in e.get("loc", []) if x not in ("body", "payload"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return "; ".join(parts)
    return str(detail)
