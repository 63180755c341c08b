"""Checks every signed request: the signature, the clock, and that it is not a replay.

The marketplace applies the shared rule of ``protocol.signing`` (a signed request takes
effect at most once) with an increasing clock per signer kept in its database: its
requests change shared state, and a restart must not reopen a replay window.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.errors import AuthError
from marketplace.store.models import SignerClock
from protocol.signing import SignatureError, verify_envelope


class DatabaseClock:
    """``protocol.signing.IncreasingClock`` kept in the marketplace's database.

    The clock row is locked and updated in the caller's transaction, so two requests of
    one signer cannot both pass, and the rule survives a restart.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def admit(self, signer: str, timestamp_ms: int, signature: str) -> None:
        self.check(signer, timestamp_ms)
        self.record(signer, timestamp_ms)

    def check(self, signer: str, timestamp_ms: int, *, locked: bool = False) -> None:
        """Raise SignatureError unless `timestamp_ms` is newer than the signer's clock
        (locking its row, unless :func:`lock_clocks` already did); changes nothing."""
        if locked:
            clock = self.session.get(SignerClock, signer)
        else:
            clock = self.session.get(SignerClock, signer, with_for_update=True)
        if clock is not None and timestamp_ms <= clock.last_timestamp_ms:
            raise SignatureError(
                f"request timestamp {timestamp_ms} is not newer than this signer's last "
                f"request ({clock.last_timestamp_ms}): a replay, or two requests signed in the "
                "same millisecond; sign each request afresh"
            )

    def record(self, signer: str, timestamp_ms: int) -> None:
        """Move the signer's clock to `timestamp_ms` (after :meth:`check` passed)."""
        clock = self.session.get(SignerClock, signer)
        if clock is None:
            self.session.add(SignerClock(address=signer, last_timestamp_ms=timestamp_ms))
        else:
            clock.last_timestamp_ms = timestamp_ms


def lock_clocks(session: Session, signers: Collection[str]) -> None:
    """Read and lock the clocks of `signers` in one query (for requests checked together)."""
    # the session's identity map holds rows weakly: keep them for the session's life
    session.info["dcloud.auth.clocks"] = session.scalars(
        select(SignerClock).where(SignerClock.address.in_(set(signers))).with_for_update()
    ).all()


def authenticate(
    session: Session,
    *,
    purpose: str,
    raw: dict[str, Any],
    max_skew_s: float,
) -> str:
    """Verify the signed envelope `raw` (the request body as sent); return the signer.

    The signature covers the payload exactly as the client sent it.
    """
    try:
        return verify_envelope(
            raw, purpose=purpose, guard=DatabaseClock(session), max_skew_ms=int(max_skew_s * 1000)
        )
    except SignatureError as exc:
        raise AuthError(str(exc)) from None


@dataclass(frozen=True)
class Verified:
    """A signed request whose signature and clock skew were checked, not yet admitted.

    For writes applied later in a shared transaction: :meth:`check` refuses a replay
    without changing anything, :meth:`record` admits the request once its write is done.
    """

    signer: str
    timestamp_ms: int

    def check(self, session: Session, *, locked: bool = False) -> None:
        """Refuse a replay (AuthError); `locked`: :func:`lock_clocks` read the clock."""
        try:
            DatabaseClock(session).check(self.signer, self.timestamp_ms, locked=locked)
        except SignatureError as exc:
            raise AuthError(str(exc)) from None

    def record(self, session: Session) -> None:
        DatabaseClock(session).record(self.signer, self.timestamp_ms)


class _Deferred:
    """A replay guard that only notes what it was asked to admit."""

    timestamp_ms = 0

    def admit(self, signer: str, timestamp_ms: int, signature: str) -> None:
        self.timestamp_ms = timestamp_ms


def verify(*, purpose: str, raw: dict[str, Any], max_skew_s: float) -> Verified:
    """Check the signature and clock of the signed envelope `raw`, without a database;
    the replay check is left to :meth:`Verified.check` (same errors as :func:`authenticate`)."""
    deferred = _Deferred()
    try:
        signer = verify_envelope(
            raw, purpose=purpose, guard=deferred, max_skew_ms=int(max_skew_s * 1000)
        )
    except SignatureError as exc:
        raise AuthError(str(exc)) from None
    return Verified(signer, deferred.timestamp_ms)
