"""Signed requests between agents and the marketplace (EIP-191 personal messages).

A signed request is an envelope ``{"payload": {...}, "signer": "0x..", "timestamp_ms": T,
"signature": "0x.."}``. The signed message is the canonical JSON (sorted keys, no spaces)
of ``{"purpose": P, "payload": ..., "signer": ..., "timestamp_ms": T}``, where the purpose
names the action (e.g. ``"dcloud/provider.heartbeat"``) so a signature for one action
cannot be replayed against another.

The verifier checks that the recovered address is the signer, that the timestamp is
within ``max_skew_ms`` of its clock, and (with its own per-signer store) that timestamps
strictly increase, so a replayed request fails.
"""

from __future__ import annotations

import json
import time
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_checksum_address

from protocol.errors import ProtocolError

DEFAULT_MAX_SKEW_MS = 120_000


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
