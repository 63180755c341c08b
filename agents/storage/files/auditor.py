"""The renter's storage audits on chain: challenge live deals, slash missed answers.

:class:`Auditor` (run by a renter, or by a service holding the escrow's AUDITOR_ROLE)
challenges live deals picked at random and slashes every deal whose challenge went
unanswered past its window. Each slash emits {DealSlashed} naming the shard, which
the repairer acts on (:meth:`~agents.storage.escrow.StorageChain.slashed_shards`).
The chunk is drawn from the block after the challenge; on a dev chain, which mines
only on demand, the auditor mines that block itself after a pass that challenged.

:func:`audit_pass` is one round of a renter's auditor: one :class:`Auditor` step,
then every shard of a slashed deal is rebuilt on another node
(:func:`~agents.storage.files.repair.repair_all` with those shards condemned) and a deal
is opened for the new shard on the slashed deal's terms.

The Auditor does one pass per :meth:`~Auditor.step` and loops with :meth:`~Auditor.run` until a
stop event is set, so an auditor process can run it in a thread. The contract itself
decides who may challenge and when (once per deal per epoch); a call the chain refuses
is logged and the pass goes on.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field

from agents.errors import RefusedError, UserError, VerificationError
from agents.storage.escrow import Challenge, Deal, DealStatus, StorageChain
from agents.storage.files.client import StorageClient
from agents.storage.files.deals import DealParams, open_object_deals
from agents.storage.files.manifest import DealRef, Manifest
from agents.storage.files.repair import repair_all
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


@dataclass
class AuditOutcome:
    """What one :func:`audit_pass` did."""

    challenged: list[int] = field(default_factory=list)
    slashed: list[int] = field(default_factory=list)  # by this pass
    repaired: dict[str, int] = field(default_factory=dict)  # object -> shards rebuilt
    failures: list[str] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)  # deals opened for rebuilt shards


def _manifests(client: StorageClient) -> list[Manifest]:
    return [m for _, m in client.store.entries() if isinstance(m, Manifest)]


def make_auditor(chain: StorageChain, *, per_pass: int = 16, seed: int | None = None) -> Auditor:
    return Auditor(chain, rng=random.Random(seed), per_step=per_pass)


def audit_pass(client: StorageClient, chain: StorageChain, auditor: Auditor) -> AuditOutcome:
    """Challenge and slash (one auditor step), then move every slashed shard elsewhere."""
    step = auditor.step()
    outcome = AuditOutcome(
        challenged=[c.deal_id for c in step.challenged], slashed=list(step.slashed)
    )
    chain_id = int(chain.w3.eth.chain_id)
    slashed = {s.deal_id: s for s in chain.slashed_shards()}
    doomed = {
        d.deal_id: d
        for m in _manifests(client)
        for d in m.deals
        if d.chain_id == chain_id and d.deal_id in slashed
    }
    condemned = {d.shard for d in doomed.values()}
    if not condemned:
        return outcome
    for result in repair_all(client, condemned=condemned):
        if result.shards_rebuilt:
            outcome.repaired[result.name] = result.shards_rebuilt
        outcome.failures += [f"{result.name}: {f}" for f in result.failures]
    for manifest in _manifests(client):
        _replace_deals(client, chain, manifest, doomed, outcome)
    return outcome


def _replace_deals(
    client: StorageClient,
    chain: StorageChain,
    manifest: Manifest,
    doomed: dict[int, DealRef],
    outcome: AuditOutcome,
) -> None:
    """Forget the slashed deals of shards that were rebuilt; open deals for their new
    copies on the old terms (the epochs the slashed deal had left)."""
    present = {s.id for seg in manifest.segments for s in seg.shards}
    gone = [d for d in manifest.deals if d.deal_id in doomed and d.shard not in present]
    if not gone:
        return
    with client.store.locked(manifest.object_id):
        fresh = client.store.find(manifest.name)
        fresh.deals = [d for d in fresh.deals if d not in gone]
        client.store.save(fresh)
    covered = {d.shard for d in fresh.deals}
    uncovered = present - covered
    if not uncovered:
        return
    old = chain.deal(gone[0].deal_id)
    left = old.epochs - old.paid_epochs
    if old.status != DealStatus.SLASHED or left < 1:
        return
    params = DealParams(left, old.price_per_epoch, old.epoch_length)
    try:
        new = open_object_deals(client, chain, manifest.name, params, only=uncovered)
    except (UserError, RefusedError, VerificationError) as exc:
        outcome.failures.append(f"{manifest.name}: no deal for the rebuilt shards: {exc}")
        return
    outcome.reopened += [d.deal_id for d in new]
