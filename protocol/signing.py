"""Signed requests between agents and the marketplace (EIP-191 personal messages).

A signed request is an envelope ``{"payload": {...}, "signer": "0x..", "timestamp_ms": T,
"signature": "0x.."}``. The signed message is the canonical JSON (sorted keys, no spaces)
of ``{"purpose": P, "payload": ..., "signer": ..., "timestamp_ms": T}``, where the purpose
names the action (e.g. ``"dcloud/provider.heartbeat"``) so a signature for one action
cannot be replayed against another.

Every service checks a request the same way (:func:`verify_envelope` for a signed body,
:func:`verify_headers` for a signed read or shard request): the recovered address is the
signer, the timestamp is within ``max_skew_ms`` of the service's clock, and then the
service's :class:`ReplayGuard` admits it. The rule is one: **a signed request takes effect
at most once.** Two guards keep it, for two kinds of traffic:

- :class:`IncreasingClock`: each signer's timestamps must strictly increase. The
  marketplace keeps this clock in its database (so a restart does not reopen a replay
  window), because its requests change shared state (jobs, registrations) and one
  signer's requests to it are sent one after another.
- :class:`SeenSignatures`: each signature is admitted once within the clock window. The
  agents (provider pushes and reads, storage-node shard requests) use it in memory,
  because a renter sends them many requests in parallel that may arrive out of order,
  and their effects are idempotent (a retried push or a re-read changes nothing).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_checksum_address

from protocol.errors import ProtocolError

DEFAULT_MAX_SKEW_MS = 120_000

# The headers that carry a signature over a request (agents' reads, shard requests).
SIGNER_HEADER = "x-dcloud-signer"
TIMESTAMP_HEADER = "x-dcloud-timestamp-ms"
SIGNATURE_HEADER = "x-dcloud-signature"

# Told the signer of each request the verifier admits while handling the current request;
# a service's per-signer rate limit (protocol.ratelimit) listens here.
signer_listener: ContextVar[Callable[[str], None] | None] = ContextVar(
    "signer_listener", default=None
)


class SignatureError(ProtocolError):
    """A signed request's signature, signer or timestamp is not acceptable."""


def canonical_message(*, purpose: str, payload: Any, signer: str, timestamp_ms: int) -> bytes:
    """The exact bytes that are signed for a request."""
    body = {"purpose": purpose, "payload": payload, "signer": signer, "timestamp_ms": timestamp_ms}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_request(
    account: LocalAccount, *, purpose: str, payload: Any, timestamp_ms: int | None = None
) -> dict[str, Any]:
    """Return the signed envelope for `payload` (a JSON-ready value)."""
    ts = timestamp_ms if timestamp_ms is not None else time.time_ns() // 1_000_000
    message = canonical_message(
        purpose=purpose, payload=payload, signer=account.address, timestamp_ms=ts
    )
    signed = account.sign_message(encode_defunct(primitive=message))
    return {
        "payload": payload,
        "signer": account.address,
        "timestamp_ms": ts,
        "signature": "0x" + signed.signature.hex().removeprefix("0x"),
    }


def verify_request(
    *,
    purpose: str,
    payload: Any,
    signer: str,
    timestamp_ms: int,
    signature: str,
    now_ms: int | None = None,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> str:
    """Check a signed envelope; return the signer's checksum address.

    Raises:
        SignatureError: bad address, stale or future timestamp, or a signature that is not
            the signer's over this purpose and payload.
    """
    if not is_checksum_address(signer):
        raise SignatureError(f"signer {signer!r} is not a checksummed Ethereum address")
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    if abs(now - timestamp_ms) > max_skew_ms:
        raise SignatureError(
            f"timestamp_ms {timestamp_ms} is {abs(now - timestamp_ms) / 1000:.0f} s away from "
            f"the server's clock (limit {max_skew_ms / 1000:.0f} s); check the machine's clock"
        )
    message = canonical_message(
        purpose=purpose, payload=payload, signer=signer, timestamp_ms=timestamp_ms
    )
    try:
        recovered = Account.recover_message(encode_defunct(primitive=message), signature=signature)
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise SignatureError(f"signature is malformed ({exc}); sign the request again") from None
    if recovered != signer:
        raise SignatureError(
            f"signature does not match signer {signer} for {purpose}: sign the canonical "
            "message of this exact payload with the signer's key"
        )
    return str(recovered)


class ReplayGuard(Protocol):
    """Admits a verified request at most once; raises SignatureError for a replay."""

    def admit(self, signer: str, timestamp_ms: int, signature: str) -> None: ...


class IncreasingClock:
    """Admits a signer's request only when its timestamp is newer than the last admitted.

    In memory; the marketplace keeps the same rule in its database instead.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, signer: str, timestamp_ms: int, signature: str) -> None:
        with self._lock:
            last = self._last.get(signer, -1)
            if timestamp_ms <= last:
                raise SignatureError(
                    f"request timestamp {timestamp_ms} is not newer than this signer's last "
                    f"({last}): a replay, or two requests signed in the same millisecond; "
                    "sign each request afresh"
                )
            self._last[signer] = timestamp_ms


class SeenSignatures:
    """Admits each signature once while its timestamp is inside the clock window."""

    def __init__(self, max_skew_ms: int = DEFAULT_MAX_SKEW_MS, max_entries: int = 1_000_000):
        self.max_skew_ms = max_skew_ms
        self.max_entries = max_entries
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_purge = 0

    def admit(self, signer: str, timestamp_ms: int, signature: str) -> None:
        now = time.time_ns() // 1_000_000
        with self._lock:
            if now >= self._next_purge or len(self._seen) >= self.max_entries:
                self._seen = {s: t for s, t in self._seen.items() if t > now}
                self._next_purge = now + 10_000
            if signature in self._seen:
                raise SignatureError(
                    "this signature was already used (a replayed request); sign each request afresh"
                )
            self._seen[signature] = timestamp_ms + self.max_skew_ms


def verify_envelope(
    body: Mapping[str, Any],
    *,
    purpose: str,
    guard: ReplayGuard,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> str:
    """Check a signed envelope (a request body) and admit it once; return the signer."""
    try:
        signer, stamp, signature = body["signer"], body["timestamp_ms"], body["signature"]
        payload = body["payload"]
    except (KeyError, TypeError) as exc:
        raise SignatureError(
            f"a signed envelope needs payload, signer, timestamp_ms and signature (missing "
            f"{exc}); sign the request with your key"
        ) from None
    try:
        timestamp_ms = int(stamp)
    except (TypeError, ValueError):
        raise SignatureError("timestamp_ms must be an integer of milliseconds") from None
    address = verify_request(
        purpose=purpose,
        payload=payload,
        signer=str(signer),
        timestamp_ms=timestamp_ms,
        signature=str(signature),
        max_skew_ms=max_skew_ms,
    )
    guard.admit(address, timestamp_ms, str(signature))
    _admitted(address)
    return address


def verify_headers(
    headers: Mapping[str, str],
    *,
    names: tuple[str, str, str],
    purpose: str,
    payload: Any,
    guard: ReplayGuard,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> str:
    """Check a request signed in headers and admit it once; return the signer.

    `names` are the (signer, timestamp, signature) header names; `payload` is what the
    request means (method, path, and for uploads the content hash), rebuilt by the server.
    """
    signer, stamp, signature = (headers.get(h) for h in names)
    if not (signer and stamp and signature):
        raise SignatureError(
            f"unsigned request: send the {', '.join(names)} headers (purpose {purpose})"
        )
    try:
        timestamp_ms = int(stamp)
    except ValueError:
        raise SignatureError(f"{names[1]} must be an integer of milliseconds") from None
    address = verify_request(
        purpose=purpose,
        payload=payload,
        signer=signer,
        timestamp_ms=timestamp_ms,
        signature=signature,
        max_skew_ms=max_skew_ms,
    )
    guard.admit(address, timestamp_ms, signature)
    _admitted(address)
    return address


def _admitted(address: str) -> None:
    listener = signer_listener.get()
    if listener is not None:
        listener(address)
