"""Signed requests to the marketplace, shared by every agent."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from agents.errors import NotFoundError, RefusedError
from protocol.signing import sign_request


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
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.stamp = Stamp()

    def close(self) -> None:
        self.http.close()

    def post_signed(self, path: str, *, purpose: str, payload: Any) -> Any:
        body = sign_request(
            self.account, purpose=purpose, payload=payload, timestamp_ms=self.stamp.next()
        )
        return self._answer(self._send("POST", path, json=body))

    def post(self, path: str, payload: Any) -> Any:
        return self._answer(self._send("POST", path, json=payload))

    def get(self, path: str, **params: Any) -> Any:
        return self._answer(self._send("GET", path, params=params or None))

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise RefusedError(
                f"the marketplace at {self.base_url} is not reachable ({exc.__class__.__name__}); "
                "check the URL or start it (`make marketplace`)"
            ) from None

    def _answer(self, r: httpx.Response) -> Any:
        if r.status_code < 400:
            return r.json()
        detail = describe(r)
        if r.status_code == 404:
            raise NotFoundError(detail)
        raise RefusedError(f"the marketplace refused: {detail}")


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
