"""Signing and checking shard requests (the headers of ``protocol.provider_api``).

The renter signs ``protocol.storage.shard_request_payload(method, path[, sha256, size])``
with purpose ``dcloud/storage.shard``. The node checks the signature and the clock, then
refuses a signature it has already seen within the clock window (a replay). Unlike the
marketplace it does not demand strictly increasing timestamps per signer: a renter sends
many shards to one node at once, and they may arrive in any order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from eth_account.signers.local import LocalAccount

from agents.market import Stamp
from protocol.signing import DEFAULT_MAX_SKEW_MS, SignatureError, sign_request, verify_request
from protocol.storage import (
    SHARD,
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    TIMESTAMP_HEADER,
    shard_request_payload,
)

STAMP = Stamp()


def shard_headers(
    account: LocalAccount,
    method: str,
    path: str,
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> dict[str, str]:
    """Headers that sign a shard request for `path` (with its query string)."""
    envelope = sign_request(
        account,
        purpose=SHARD,
        payload=shard_request_payload(method, path, sha256=sha256, size=size),
        timestamp_ms=STAMP.next(),
    )
    return {
        SIGNER_HEADER: envelope["signer"],
        TIMESTAMP_HEADER: str(envelope["timestamp_ms"]),
        SIGNATURE_HEADER: envelope["signature"],
    }


class ReplayGuard:
    """Checks shard-request signatures and remembers them for the clock window."""

    def __init__(self, max_skew_ms: int = DEFAULT_MAX_SKEW_MS, max_entries: int = 1_000_000):
        self.max_skew_ms = max_skew_ms
        self.max_entries = max_entries
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_purge = 0

    def check(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        *,
        sha256: str | None = None,
        size: int | None = None,
    ) -> str:
        """The signer of a request; raises SignatureError when it is not acceptable."""
        signer, stamp, signature = (
            headers.get(h) for h in (SIGNER_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
        )
        if not (signer and stamp and signature):
            raise SignatureError(
                f"unsigned request: send {SIGNER_HEADER}, {TIMESTAMP_HEADER} and "
                f"{SIGNATURE_HEADER} (purpose {SHARD})"
            )
        try:
            timestamp_ms = int(stamp)
        except ValueError:
            raise SignatureError(f"{TIMESTAMP_HEADER} must be an integer of milliseconds") from None
        now = time.time_ns() // 1_000_000
        address = verify_request(
            purpose=SHARD,
            payload=shard_request_payload(method, path, sha256=sha256, size=size),
            signer=signer,
            timestamp_ms=timestamp_ms,
            signature=signature,
            now_ms=now,
            max_skew_ms=self.max_skew_ms,
        )
        with self._lock:
            if now >= self._next_purge or len(self._seen) >= self.max_entries:
                self._seen = {s: t for s, t in self._seen.items() if t > now}
                self._next_purge = now + 10_000
            if signature in self._seen:
                raise SignatureError(
                    "this signature was already used (a replayed request); sign each request afresh"
                )
            self._seen[signature] = timestamp_ms + self.max_skew_ms
        return address
