"""Signing and checking shard requests (the headers of ``protocol.provider_api``).

The renter signs ``protocol.storage.shard_request_payload(method, path[, sha256, size])``
with purpose ``dcloud/storage.shard``. The node checks the signature and the clock, then
refuses a signature it has already seen within the clock window (a replay). Unlike the
marketplace it does not demand strictly increasing timestamps per signer: a renter sends
many shards to one node at once, and they may arrive in any order.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_account.signers.local import LocalAccount

from agents.market import Stamp
from protocol.signing import DEFAULT_MAX_SKEW_MS, SeenSignatures, sign_request, verify_headers
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
    """Checks shard requests with the one verifier of ``protocol.signing``: each
    signature admitted once within the clock window."""

    def __init__(self, max_skew_ms: int = DEFAULT_MAX_SKEW_MS, max_entries: int = 1_000_000):
        self.max_skew_ms = max_skew_ms
        self._seen = SeenSignatures(max_skew_ms, max_entries)

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
        return verify_headers(
            headers,
            names=(SIGNER_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER),
            purpose=SHARD,
            payload=shard_request_payload(method, path, sha256=sha256, size=size),
            guard=self._seen,
            max_skew_ms=self.max_skew_ms,
        )
