"""Storage audits on chain: who challenges, who answers.

- :class:`Auditor` (run by a renter, or by a service holding the escrow's AUDITOR_ROLE)
  challenges live deals picked at random and slashes every deal whose challenge went
  unanswered past its window. Each slash emits {DealSlashed} naming the shard, which
  the repairer acts on (:meth:`~agents.storage.chain.StorageChain.slashed_shards`).
  The chunk is drawn from the block after the challenge; on a dev chain, which mines
  only on demand, the auditor mines that block itself after a pass that challenged.
- :class:`NodeResponder` (run by a storage node) accepts offers for shards the node
  holds with a matching Merkle root, answers every challenge to the node with the
  chunk and its proof as soon as the draw block exists, and settles the node's
  completed epochs.

Both do one pass per :meth:`step` and loop with :meth:`run` until a stop event is set,
so a node or auditor process can run them in a thread. The contract itself decides
who may challenge and when (once per deal per epoch); a call the chain refuses is
logged and the pass goes on.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.errors import AgentError, RefusedError
from agents.storage.chain import Challenge, Deal, DealStatus, StorageChain
from protocol import merkle

logger = logging.getLogger(__name__)

ReadShard = Callable[[bytes], bytes]
"""Returns the bytes of the shard with this on-chain id; raises (an AgentError, KeyError
or OSError) when the node does not hold it."""


def chunk_proof(
    data: bytes, index: int, chunk_bytes: int = merkle.CHUNK_BYTES
) -> tuple[bytes, list[bytes]]:
    """Chunk `index` of `data` and its Merkle proof under the shard's chunk root.

    Raises:
        IndexError: `data` has no chunk `index`.
    """
    leaves = merkle.chunk_leaves(data, chunk_bytes)
    proof = merkle.proof(leaves, index)
    return data[index * chunk_bytes : (index + 1) * chunk_bytes], proof


def terms_match(deal: Deal, data: bytes, chunk_bytes: int = merkle.CHUNK_BYTES) -> bool:
    """True when `data` is the shard the deal names: same chunk root and chunk count.

    A node must check this before accepting: it is slashed for any chunk it cannot prove.
    """
    leaves = merkle.chunk_leaves(data, chunk_bytes)
    return deal.chunk_count == len(leaves) and deal.root == merkle.root(leaves)


def _loop(step: Callable[[], object], stop: threading.Event, interval: float, name: str) -> None:
    while not stop.is_set():
        try:
            step()
        except Exception:  # a pass that fails (chain down, ...) is retried next time
            logger.exception("%s pass failed; retrying in %.1f s", name, interval)
        stop.wait(interval)


# ------------------------------------------------------------------------ auditor


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
        _loop(self.step, stop, interval, "audit")

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


# ---------------------------------------------------------------------- responder


@dataclass
class ResponderReport:
    """What one responder pass did."""

    accepted: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # offers whose root does not match
    answered: list[int] = field(default_factory=list)
    unanswerable: list[int] = field(default_factory=list)  # the shard could not be read
    settled: list[int] = field(default_factory=list)


class NodeResponder:
    """A storage node's side of its deals: accept, answer challenges, collect pay.

    Args:
        client: The chain client of the node's account (a staked provider).
        read_shard: The shard's bytes by its on-chain id (see :data:`ReadShard`).
        chunk_bytes: The chunk size the renter built its roots with.
        accept_offers: Accept offers for shards held here whose root and chunk count match.
        settle: Settle the node's completed epochs each pass (credits the node's pay).
    """

    def __init__(
        self,
        client: StorageChain,
        read_shard: ReadShard,
        chunk_bytes: int = merkle.CHUNK_BYTES,
        *,
        accept_offers: bool = True,
        settle: bool = True,
    ) -> None:
        self.client = client
        self.read_shard = read_shard
        self.chunk_bytes = chunk_bytes
        self.accept_offers = accept_offers
        self.settle = settle
        self.node = client.address
        self._cursor = client.from_block
        self._deals: dict[int, Deal] = {}  # live deals naming this node
        self._challenged: set[int] = set()  # deals with a challenge to answer
        self._refused: set[int] = set()

    def step(self) -> ResponderReport:
        """One pass: new offers and challenges, answers, then epoch pay."""
        report = ResponderReport()
        self._scan()
        now = self.client.now()
        for deal_id in sorted(self._challenged):
            self._answer(deal_id, now, report)
        if self.accept_offers:
            for deal in list(self._deals.values()):
                if deal.status == DealStatus.OFFERED and deal.deal_id not in self._refused:
                    self._accept(deal, now, report)
        if self.settle:
            due = [
                d.deal_id
                for d in self._deals.values()
                if d.due_at(now) > 0 and d.deal_id not in self._challenged
            ]
            if due:
                try:
                    report.settled = self.client.settle_many(due)
                except RefusedError as exc:
                    logger.warning("could not settle deals %s: %s", due, exc)
        return report

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Run :meth:`step` every `interval` seconds until `stop` is set.

        `interval` must stay well below the escrow's response window.
        """
        _loop(self.step, stop, interval, "responder")

    def _scan(self) -> None:
        head = self.client.block_number()
        if head >= self._cursor:
            for deal_id in self.client.deals_opened(
                node=self.node, from_block=self._cursor, to_block=head
            ):
                self._deals[deal_id] = self.client.deal(deal_id)
            self._challenged.update(
                self.client.challenged_deals(node=self.node, from_block=self._cursor, to_block=head)
            )
            self._cursor = head + 1
        for deal_id in list(self._deals):
            fresh = self.client.deal(deal_id)
            if fresh.live:
                self._deals[deal_id] = fresh
            else:
                del self._deals[deal_id]

    def _read(self, deal: Deal) -> bytes | None:
        try:
            return self.read_shard(deal.shard_id)
        except (AgentError, KeyError, OSError) as exc:
            logger.debug("deal %d: shard %s unreadable: %s", deal.deal_id, deal.shard_id.hex(), exc)
            return None

    def _accept(self, deal: Deal, now: int, report: ResponderReport) -> None:
        if now > deal.accept_by:
            return
        data = self._read(deal)
        if data is None:
            return  # not uploaded (yet): try again next pass
        if not terms_match(deal, data, self.chunk_bytes):
            logger.warning(
                "deal %d: root or chunk count does not match shard %s: not accepting",
                deal.deal_id,
                deal.shard_id.hex(),
            )
            self._refused.add(deal.deal_id)
            report.refused.append(deal.deal_id)
            return
        try:
            self.client.accept(deal.deal_id)
        except RefusedError as exc:
            logger.warning("deal %d: could not accept: %s", deal.deal_id, exc)
            return
        self._deals[deal.deal_id] = self.client.deal(deal.deal_id)
        report.accepted.append(deal.deal_id)

    def _answer(self, deal_id: int, now: int, report: ResponderReport) -> None:
        challenge = self.client.challenge_of(deal_id)
        deal = self._deals.get(deal_id)
        if not challenge.pending or deal is None or deal.status != DealStatus.ACTIVE:
            self._challenged.discard(deal_id)
            return
        head = self.client.block_number()
        if now > challenge.respond_by or challenge.expired_at(head):
            logger.error("deal %d: challenge passed unanswered", deal_id)
            self._challenged.discard(deal_id)
            return
        index = self.client.chunk_of(challenge, deal.chunk_count)
        if index is None:
            logger.debug("deal %d: chunk not drawn yet (block %d)", deal_id, challenge.draw_block)
            return  # kept: answered once the draw block is mined
        data = self._read(deal)
        if data is None:
            logger.error(
                "deal %d: cannot answer chunk %d: shard %s is not here",
                deal_id,
                index,
                deal.shard_id.hex(),
            )
            report.unanswerable.append(deal_id)
            return  # kept: the shard may come back (repair) before the window closes
        try:
            chunk, proof = chunk_proof(data, index, self.chunk_bytes)
            self.client.respond(deal_id, chunk, proof)
        except (IndexError, RefusedError) as exc:
            logger.error("deal %d: answer refused: %s", deal_id, exc)
            report.unanswerable.append(deal_id)
            return
        logger.info("deal %d: answered chunk %d", deal_id, index)
        self._challenged.discard(deal_id)
        report.answered.append(deal_id)
