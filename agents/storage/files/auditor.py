"""The renter's storage audits on chain: challenge live deals, slash missed answers.

:class:`Auditor` (run by a renter, or by a service holding the escrow's AUDITOR_ROLE)
challenges live deals picked at random and slashes every deal whose challenge went
unanswered past its window. Each slash emits {DealSlashed} naming the shard, which
the repairer acts on (:meth:`~agents.storage.chain.StorageChain.slashed_shards`).
The chunk is drawn from the block after the challenge; on a dev chain, which mines
only on demand, the auditor mines that block itself after a pass that challenged.

It does one pass per :meth:`~Auditor.step` and loops with :meth:`~Auditor.run` until a
stop event is set, so an auditor process can run it in a thread. The contract itself
decides who may challenge and when (once per deal per epoch); a call the chain refuses
is logged and the pass goes on.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field

from agents.errors import RefusedError
from agents.storage.chain import Challenge, Deal, DealStatus, StorageChain
from agents.storage.passes import run_passes

logger = logging.getLogger(__name__)


@dataclass
class AuditReport:
    """What one auditor pass did."""

    challenged: list[Challenge] = field(default_factory=list)
    slashed: list[int] = field(default_factory=list)


class Auditor:
    """Challenges random live deals and slashes missed answers.

    With AUDITOR_ROLE it audits every deal on the escrow; without it, only the deals its
    account rents (the contract refuses anyone else).

    Args:
        client: The chain client of the auditing account.
        rng: Source of the random choice of deals (seed it for repeatable runs).
        per_step: At most this many challenges per pass.
    """

    def __init__(
        self, client: StorageChain, *, rng: random.Random | None = None, per_step: int = 4
    ) -> None:
        self.client = client
        self.rng = rng or random.Random()
        self.per_step = per_step
        self._cursor = client.from_block
        self._deals: dict[int, Deal] = {}
        self._watch: set[int] = set()  # deals with a challenge pending (anyone's)
        self._everyone: bool | None = None

    def step(self) -> AuditReport:
        """One pass: pick up new deals and challenges, slash the missed, challenge some."""
        report = AuditReport()
        self._scan()
        now = self.client.now()
        for deal_id in sorted(self._watch):
            self._settle_watch(deal_id, now, report)
        candidates = [
            d
            for d in self._deals.values()
            if d.status == DealStatus.ACTIVE and d.deal_id not in self._watch and now < d.ends_at
        ]
        for deal in self.rng.sample(candidates, min(self.per_step, len(candidates))):
            self._challenge(deal, now, report)
        if report.challenged:
            self.client.mine_if_dev_chain()  # the draw block, where blocks come on demand
        if report.challenged or report.slashed:
            logger.info(
                "audit pass: challenged %s, slashed %s",
                [c.deal_id for c in report.challenged],
                report.slashed,
            )
        return report

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Run :meth:`step` every `interval` seconds until `stop` is set."""
        run_passes(self.step, stop, interval, "audit")

    def _scan(self) -> None:
        if self._everyone is None:
            self._everyone = self.client.is_auditor()
        head = self.client.block_number()
        if head >= self._cursor:
            renter = None if self._everyone else self.client.address
            for deal_id in self.client.deals_opened(
                renter=renter, from_block=self._cursor, to_block=head
            ):
                self._deals[deal_id] = self.client.deal(deal_id)
            for deal_id in self.client.challenged_deals(from_block=self._cursor, to_block=head):
                if deal_id in self._deals:
                    self._watch.add(deal_id)
            self._cursor = head + 1
        for deal_id in list(self._deals):
            fresh = self.client.deal(deal_id)
            if fresh.live:
                self._deals[deal_id] = fresh
            else:
                del self._deals[deal_id]
                self._watch.discard(deal_id)

    def _settle_watch(self, deal_id: int, now: int, report: AuditReport) -> None:
        challenge = self.client.challenge_of(deal_id)
        deal = self._deals.get(deal_id)
        if not challenge.pending or deal is None or deal.status != DealStatus.ACTIVE:
            self._watch.discard(deal_id)
            return
        if now <= challenge.respond_by and not challenge.expired_at(self.client.block_number()):
            return  # still answerable
        try:
            self.client.slash_missed(deal_id)
        except RefusedError as exc:  # someone else slashed it first, or the node just answered
            logger.info("deal %d: not slashed (%s)", deal_id, exc)
        else:
            logger.warning("deal %d: node %s missed its challenge: slashed", deal_id, deal.node)
            report.slashed.append(deal_id)
            del self._deals[deal_id]
        self._watch.discard(deal_id)

    def _challenge(self, deal: Deal, now: int, report: AuditReport) -> None:
        latest = self.client.challenge_of(deal.deal_id)
        if latest.pending:
            self._watch.add(deal.deal_id)
            return
        if latest.epoch_plus_one > deal.epoch_at(now):
            return  # already challenged this epoch
        try:
            challenge = self.client.challenge(deal.deal_id)
        except RefusedError as exc:
            logger.info("deal %d: not challenged (%s)", deal.deal_id, exc)
            return
        logger.info(
            "deal %d: challenged (chunk drawn from block %d), answer due by %d",
            deal.deal_id,
            challenge.draw_block,
            challenge.respond_by,
        )
        self._watch.add(deal.deal_id)
        report.challenged.append(challenge)
