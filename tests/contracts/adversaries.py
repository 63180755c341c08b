"""The actors of the stateful test (``test_invariants_stateful.py``) and the matcher.

Each provider account plays one role for the whole run:

- ``HONEST``: accepts what the matcher assigns it at once, commits the job's true
  result as soon as it holds a slot and reveals it as soon as the escrow allows;
- ``SILENT``: accepts, then never commits nor reveals (a no-show);
- ``JUNK``: commits and reveals a wrong hash, the same one as every other junk
  provider of that job (they collude, the strongest form of this attack), and now
  and then reveals something it did not commit;
- ``COPIER``: computes nothing; before committing it reads the other slots of the
  job from chain (``getReplica``) and commits what it finds there.

Renters may act as sybil masters: they name providers of their own choosing for a
replicated job or a dispute, signed with their own key, unsigned, with a matcher
signature made for other providers, another renter or another job, or an expired
one (`SYBIL_FORMS`). The escrow must refuse every one of them. And should the matcher
itself sign a list naming the renter, or a dispute's original, as a voter ("careless"),
the escrow still refuses it.

The matcher (this module holds its key) draws co-replicas and verifiers. The design
rests on an honest majority of every vote, so the matcher draws at most a minority
of dishonest providers: fewer than half the providers of a replicated job, and at
most one dishonest among a dispute's original and its two verifiers. The honest
ones it draws can lock the collateral when it signs (a real matcher checks free
stake too), and accept at once, so an honest vote is never short of its voters.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from typing import Any

from brownie import chain, web3
from conftest import MATCHER_KEY, SPEC, result_hash

from protocol.assignments import sign_assignment, sign_verifiers

HONEST, SILENT, JUNK, COPIER = "honest", "silent", "junk", "copier"
DISHONEST = (SILENT, JUNK, COPIER)
# A renter's own key: what a sybil master signs its picks with.
SYBIL_KEY = web3.keccak(text="dcloud test sybil renter").hex().removeprefix("0x")
SYBIL_FORMS = ("self-signed", "unsigned", "tampered", "replayed", "expired")
VALID_S = 600


def true_result(job_id: int) -> bytes:
    """The result hash every honest run of job `job_id` produces."""
    return result_hash(f"true:{job_id}")


def junk_result(job_id: int) -> bytes:
    """The wrong hash the junk providers of job `job_id` agree on."""
    return result_hash(f"junk:{job_id}")


@dataclasses.dataclass(frozen=True)
class Signed:
    """An ``Assignment`` argument and what it proves: who signed which message.

    The model accepts it only if ``signer`` is the matcher and ``message`` is the
    very message the escrow rebuilds from the call (EIP-712 binds every field).
    """

    providers: tuple[str, ...]
    expires: int
    signature: bytes
    signer: str  # "matcher", "sybil" or "none"
    message: tuple[Any, ...]  # ("fund", renter, spec, providers) or ("dispute", job, providers)

    def as_arg(self) -> tuple[list[str], int, bytes]:
        return (list(self.providers), self.expires, self.signature)


def fund_message(renter: str, providers: Sequence[str]) -> tuple[Any, ...]:
    return ("fund", renter, SPEC, tuple(providers))


def dispute_message(job_id: int, providers: Sequence[str]) -> tuple[Any, ...]:
    return ("dispute", job_id, tuple(providers))


def unsigned(providers: Sequence[str]) -> Signed:
    """A single-replica job's provider (or none): the escrow asks no signature."""
    return Signed(tuple(providers), 0, b"", "none", ())


class Matcher:
    """Draws and signs co-replicas and verifiers, keeping dishonest ones a minority."""

    def __init__(self, escrow: Any, roles: dict[str, str]) -> None:
        self.escrow = escrow
        self.roles = roles

    def draw(
        self,
        count: int,
        *,
        seed: int,
        exclude: Sequence[str] = (),
        dishonest_budget: int,
        can_lock: Callable[[str], bool],
    ) -> list[str] | None:
        """`count` distinct providers, at most `dishonest_budget` of them dishonest and
        every honest one able to lock its collateral; None if the pool cannot."""
        pool = [p for p in self.roles if p not in exclude]
        random.Random(seed).shuffle(pool)
        picked: list[str] = []
        for provider in pool:
            if self.roles[provider] == HONEST:
                if can_lock(provider):
                    picked.append(provider)
            elif dishonest_budget > 0:
                dishonest_budget -= 1
                picked.append(provider)
            if len(picked) == count:
                return picked
        return None

    def assign(self, renter: str, providers: Sequence[str], *, key: str = MATCHER_KEY) -> Signed:
        """The matcher's signature of `providers` for `renter`'s job (SPEC)."""
        return self._sign_fund(renter, providers, key=key, expires=chain.time() + VALID_S)

    def verifiers(self, job_id: int, providers: Sequence[str], *, key: str = MATCHER_KEY) -> Signed:
        return self._sign_dispute(job_id, providers, key=key, expires=chain.time() + VALID_S)

    # ----------------------------------------------------------- sybil forms

    def forged_assignment(
        self, form: str, renter: str, other_renter: str, picks: Sequence[str], drawn: Sequence[str]
    ) -> Signed:
        """A renter's attempt to fund with `picks` instead of the matcher's `drawn`."""
        expires = chain.time() + VALID_S
        if form == "self-signed":
            return self._sign_fund(renter, picks, key=SYBIL_KEY, expires=expires)
        if form == "unsigned":
            return Signed(tuple(picks), expires, b"", "none", ())
        if form == "tampered":  # the matcher's signature, the renter's own list
            real = self._sign_fund(renter, drawn, key=MATCHER_KEY, expires=expires)
            return dataclasses.replace(real, providers=tuple(picks))
        if form == "replayed":  # signed for the other renter
            return self._sign_fund(other_renter, picks, key=MATCHER_KEY, expires=expires)
        if form == "careless":  # the matcher's valid signature of the renter's picks
            return self._sign_fund(renter, picks, key=MATCHER_KEY, expires=expires)
        assert form == "expired"
        return self._sign_fund(renter, picks, key=MATCHER_KEY, expires=chain.time() - 1)

    def forged_verifiers(
        self, form: str, job_id: int, other_job: int, picks: Sequence[str], drawn: Sequence[str]
    ) -> Signed:
        """A renter's attempt to dispute `job_id` with verifiers it picked."""
        expires = chain.time() + VALID_S
        if form == "self-signed":
            return self._sign_dispute(job_id, picks, key=SYBIL_KEY, expires=expires)
        if form == "unsigned":
            return Signed(tuple(picks), expires, b"", "none", ())
        if form == "tampered":
            real = self._sign_dispute(job_id, drawn, key=MATCHER_KEY, expires=expires)
            return dataclasses.replace(real, providers=tuple(picks))
        if form == "replayed":  # drawn for another job
            return self._sign_dispute(other_job, picks, key=MATCHER_KEY, expires=expires)
        if form == "careless":
            return self._sign_dispute(job_id, picks, key=MATCHER_KEY, expires=expires)
        assert form == "expired"
        return self._sign_dispute(job_id, picks, key=MATCHER_KEY, expires=chain.time() - 1)

    # ------------------------------------------------------------- signing

    def _sign_fund(
        self, renter: str, providers: Sequence[str], *, key: str, expires: int
    ) -> Signed:
        names = [str(p) for p in providers]
        signed = sign_assignment(
            key,
            chain_id=chain.id,
            escrow=self.escrow.address,
            renter=renter,
            spec_hash=SPEC,
            providers=names,
            expires=expires,
        )
        return Signed(
            tuple(names),
            expires,
            signed.signature,
            _signer(key),
            fund_message(renter, names),
        )

    def _sign_dispute(
        self, job_id: int, providers: Sequence[str], *, key: str, expires: int
    ) -> Signed:
        names = [str(p) for p in providers]
        signed = sign_verifiers(
            key,
            chain_id=chain.id,
            escrow=self.escrow.address,
            job_id=job_id,
            providers=names,
            expires=expires,
        )
        return Signed(
            tuple(names), expires, signed.signature, _signer(key), dispute_message(job_id, names)
        )


def _signer(key: str) -> str:
    return "matcher" if key == MATCHER_KEY else "sybil"
