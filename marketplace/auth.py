"""Checks every signed request: the signature, the clock, and that it is not a replay."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from marketplace.errors import AuthError
from marketplace.store.models import SignerClock
from protocol.signing import SignatureError, verify_request


def authenticate(
    session: Session,
    *,
    purpose: str,
    raw: dict[str, Any],
    max_skew_s: float,
) -> str:
    """Verify the signed envelope `raw` (the request body as sent); return the signer.

    The signature covers the payload exactly as the client sent it. Each signer's
    timestamps must strictly increase, so a replayed request is refused; the clock row is
    updated in the caller's transaction.
    """
    try:
        signer = verify_request(
            purpose=purpose,
            payload=raw["payload"],
            signer=raw["signer"],
            timestamp_ms=int(raw["timestamp_ms"]),
            signature=raw["signature"],
            max_skew_ms=int(max_skew_s * 1000),
        )
    except SignatureError as exc:
        raise AuthError(str(exc)) from None
    ts = int(raw["timestamp_ms"])
    clock = session.get(SignerClock, signer, with_for_update=True)
    if clock is not None and ts <= clock.last_timestamp_ms:
        raise AuthError(
            f"request timestamp {ts} is not newer than this signer's last request "
            f"({clock.last_timestamp_ms}): a replay, or two requests signed in the same "
            "millisecond; sign each request afresh"
        )
    if clock is None:
        session.add(SignerClock(address=signer, last_timestamp_ms=ts))
    else:
        clock.last_timestamp_ms = ts
    return signer
