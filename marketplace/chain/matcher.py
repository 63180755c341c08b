"""The matcher's key: signs the providers the marketplace chose, so the escrow takes them.

JobEscrow accepts a replicated job's providers and a dispute's verifiers only with the
signature of its matcher key (``protocol.assignments``), because whoever picks the voters
of a majority picks its outcome. This process holds that key (``DCLOUD_MATCHER_KEY``);
without it, replicated jobs and disputes cannot be funded from its matches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount

from marketplace.errors import ConfigurationError
from protocol.assignments import VALID_S, Assignment, sign_assignment, sign_verifiers

logger = logging.getLogger(__name__)


class MatcherSigner:
    """Signs assignments for one escrow on one chain with the matcher key."""

    def __init__(
        self,
        key: str,
        *,
        chain_id: int,
        escrow: str,
        on_chain_matcher: str,
        now: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        """`now` is the chain's clock: expiry is checked against block time, which a dev
        chain may have moved ahead of the wall clock."""
        self.now = now
        try:
            self.account: LocalAccount = Account.from_key(key)
        except (ValueError, TypeError):
            raise ConfigurationError(
                "DCLOUD_MATCHER_KEY is not a private key; set 64 hex digits (0x optional)"
            ) from None
        self.chain_id = chain_id
        self.escrow = escrow
        if on_chain_matcher.lower() != self.account.address.lower():
            logger.warning(
                "the escrow's matcher is another key: its escrow will refuse these signatures",
                extra={"ours": self.account.address, "escrow_matcher": on_chain_matcher},
            )

    @property
    def address(self) -> str:
        return str(self.account.address)

    def assignment(self, *, renter: str, spec_hash: str, providers: list[str]) -> Assignment:
        """The matcher's signature of `providers` for `renter`'s job with `spec_hash`."""
        return sign_assignment(
            self.account.key,
            chain_id=self.chain_id,
            escrow=self.escrow,
            renter=renter,
            spec_hash=bytes.fromhex(spec_hash.removeprefix("0x")),
            providers=providers,
            expires=self.now() + VALID_S,
        )

    def verifiers(self, *, job_id: int, providers: list[str]) -> Assignment:
        """The matcher's signature of `providers` as the verifiers of dispute `job_id`."""
        return sign_verifiers(
            self.account.key,
            chain_id=self.chain_id,
            escrow=self.escrow,
            job_id=job_id,
            providers=providers,
            expires=self.now() + VALID_S,
        )
