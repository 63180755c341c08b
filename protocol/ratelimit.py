"""Rate limits per client address and per signer, for every service (HTTP 429).

Each service (marketplace, provider agent, storage node) wraps its ASGI app in
:class:`RateLimit`. Every request spends a token of its client address's bucket, and
every request that a signature proves came from a signer spends a token of that signer's
bucket: a bucket holds up to ``burst`` tokens and refills at ``rate`` per second. A
request that finds its bucket empty is answered ``429`` with a ``Retry-After`` header
(whole seconds) and the service's error body ``{"detail": ..., "error":
"RateLimitedError"}``, before the service does any work for it.

The signer budget matters most: keys cost nothing, but a flood must still be signed, and
a signer rotating client addresses keeps its one budget. Two rules keep that budget out
of reach of anyone but the key's holder:

- A signer's bucket is **charged only once the service has verified and admitted its
  signature** (:data:`protocol.signing.signer_listener` reports it), so requests that
  merely name somebody else's address, or replay their signatures, cost that somebody
  nothing; they are bounded by their own client address.
- The signer a request *claims* (the signer header of a signed read, or the ``signer``
  of a signed JSON envelope) is checked before the service runs: an exhausted signer is
  refused at once. Requests already in flight can overdraw a bucket; the debt (at most
  one burst) is paid back before the signer is admitted again.

Both tables bound their memory: a bucket that has refilled is dropped (it equals a new
one), and past ``max_keys`` the least recently used bucket is forgotten.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol.provider_api import SIGNER_HEADER
from protocol.signing import signer_listener

# Generous: the devnet, the test suite and the benchmarks all run on loopback, one address.
PER_CLIENT_RATE = 200.0
PER_CLIENT_BURST = 400
PER_SIGNER_RATE = 50.0
PER_SIGNER_BURST = 100
MAX_KEYS = 50_000
ERROR = "RateLimitedError"

_SIGNER_HEADER = SIGNER_HEADER.encode()
_MAX_CLAIM = 64  # longer than any address: not a signer worth a lookup


class TokenBuckets:
    """Token buckets by key: a key may spend `burst` tokens at once and regains `rate`
    tokens a second. `clock` gives seconds (monotonic); tests inject their own.

    Memory is bounded: refilled buckets are dropped, and at most `max_keys` are kept.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("a token bucket needs rate > 0, burst >= 1 and max_keys >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: tokens, at
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one of `key`'s tokens: 0.0 when it had one, else the seconds until it will
        (and nothing is spent)."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens < 1:
                return (1 - tokens) / self.rate
            self._store(key, tokens - 1, now)
            return 0.0

    def wait_s(self, key: str) -> float:
        """The seconds until `key` may spend a token (0.0: now); spends nothing."""
        with self._lock:
            tokens = self._tokens(key, self._clock())
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def charge(self, key: str) -> None:
        """Spend one of `key`'s tokens even when it has none, down to a debt of one burst."""
        with self._lock:
            now = self._clock()
            self._store(key, max(self._tokens(key, now) - 1, -self.burst), now)

    def _tokens(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self.burst
        tokens, at = entry
        return min(self.burst, tokens + (now - at) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        # the least recently used first: drop those that have refilled, then any over the cap
        while self._buckets:
            oldest, (left, at) = next(iter(self._buckets.items()))
            if left + (now - at) * self.rate < self.burst and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[oldest]


@dataclass(frozen=True)
class Limiter:
    """A service's two tables; either may be None (that limit is off)."""

    clients: TokenBuckets | None
    signers: TokenBuckets | None

    @classmethod
    def of(
        cls,
        *,
        per_client: float,
        per_client_burst: int,
        per_signer: float,
        per_signer_burst: int,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> Limiter:
        """Tables with these rates (requests a second; 0 turns that limit off)."""

        def table(rate: float, burst: int) -> TokenBuckets | None:
            if rate <= 0:
                return None
            return TokenBuckets(rate=rate, burst=burst, max_keys=max_keys, clock=clock)

        return cls(table(per_client, per_client_burst), table(per_signer, per_signer_burst))


class RateLimitSettings(BaseModel):
    """The settings of a service's rate limits; each service's settings inherit them
    (the marketplace reads them as ``DCLOUD_RATE_PER_CLIENT`` and so on)."""

    rate_per_client: float = Field(
        default=PER_CLIENT_RATE, ge=0, description="requests a second per client address; 0: off"
    )
    rate_burst_per_client: int = Field(default=PER_CLIENT_BURST, ge=1)
    rate_per_signer: float = Field(
        default=PER_SIGNER_RATE, ge=0, description="signed requests a second per signer; 0: off"
    )
    rate_burst_per_signer: int = Field(default=PER_SIGNER_BURST, ge=1)
    rate_limit_keys: int = Field(
        default=MAX_KEYS, ge=1, description="client addresses, and signers, remembered at most"
    )

    def rate_limiter(self) -> Limiter:
        """Fresh tables for these settings."""
        return Limiter.of(
            per_client=self.rate_per_client,
            per_client_burst=self.rate_burst_per_client,
            per_signer=self.rate_per_signer,
            per_signer_burst=self.rate_burst_per_signer,
            max_keys=self.rate_limit_keys,
        )


class RateLimit:
    """ASGI middleware: 429 with Retry-After for a client address or signer over budget."""

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        clients, signers = self.limiter.clients, self.limiter.signers
        if scope["type"] != "http" or (clients is None and signers is None):
            await self.app(scope, receive, send)
            return
        if clients is not None:
            client = scope.get("client")
            wait = clients.take(client[0] if client else "")
            if wait > 0:
                await _refuse(send, wait, "this client address sends")
                return
        if signers is None:
            await self.app(scope, receive, send)
            return
        claimed = _header(scope, _SIGNER_HEADER)
        if claimed is None and _json_body(scope):
            body = await _read_body(receive)
            if body is None:  # the client went away
                return
            claimed = signer_in_envelope(body)
            receive = _replay(body, receive)
        if claimed is not None and len(claimed) <= _MAX_CLAIM:
            wait = signers.wait_s(claimed)
            if wait > 0:
                await _refuse(send, wait, f"signer {claimed} sends")
                return
        token = signer_listener.set(signers.charge)
        try:
            await self.app(scope, receive, send)
        finally:
            signer_listener.reset(token)


def limiter_of(app: Any) -> Limiter:
    """The limiter a Starlette/FastAPI app was given with ``add_middleware(RateLimit, ...)``."""
    for middleware in app.user_middleware:
        if middleware.cls is RateLimit:
            limiter: Limiter = middleware.kwargs["limiter"]
            return limiter
    raise LookupError("this app has no RateLimit middleware")


# A JSON string, or one of the characters that give a document its structure.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)


def signer_in_envelope(body: bytes) -> str | None:
    """The top-level ``"signer"`` string of a JSON object, without parsing the rest (so a
    deeply nested body cannot exhaust the stack); None when there is none."""
    depth, previous = 0, b""
    tokens = _TOKEN.finditer(body)
    for match in tokens:
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif token == b":" and depth == 1 and previous == b'"signer"':
            value = next(tokens, None)
            if value is None or not value.group().startswith(b'"'):
                return None
            try:
                claimed = json.loads(value.group())
            except ValueError:
                return None
            return claimed if isinstance(claimed, str) else None
        previous = token
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _json_body(scope: Scope) -> bool:
    if scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return False
    return "json" in (_header(scope, b"content-type") or "")


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def retry_after_s(wait: float) -> int:
    """Whole seconds for a Retry-After header: the wait rounded up, at least 1."""
    return max(1, math.ceil(wait))


async def _refuse(send: Send, wait: float, who: str) -> None:
    seconds = retry_after_s(wait)
    content = json.dumps(
        {
            "detail": f"rate limited: {who} faster than this service allows; "
            f"retry in {seconds} s (Retry-After) and send more slowly",
            "error": ERROR,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(content)),
        (b"retry-after", b"%d" % seconds),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": content})


# For FastAPI's ``responses=``: documents the 429 every route of a limited app may answer.
OPENAPI_429: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Rate limited: this client address or signer sent too many requests; "
        "retry after Retry-After seconds",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "detail": {"type": "string"},
                        "error": {"type": "string", "enum": [ERROR]},
                    },
                    "required": ["detail", "error"],
                }
            }
        },
    }
}
