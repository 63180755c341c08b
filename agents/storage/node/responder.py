"""A storage node's side of its deals on chain: accept, answer challenges, settle.

:class:`NodeResponder` (run by a storage node) accepts offers for shards the node
holds with a matching Merkle root, answers every challenge to the node with the
chunk and its proof as soon as the draw block exists, and settles the node's
completed epochs.

It does one pass per :meth:`~NodeResponder.step` and loops with
:meth:`~NodeResponder.run` until a stop event is set, so a node process can run it in a
thread. A call the chain refuses is logged and the pass goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.errors import AgentError, RefusedError
from agents.storage.escrow import Deal, DealStatus, StorageChain
from agents.storage.passes import run_passes
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
        run_passes(self.step, stop, interval, "responder")

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
