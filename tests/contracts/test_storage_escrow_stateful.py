"""The storage half of the stateful test in ``test_invariants_stateful.py``.

``StorageModel`` adds StorageEscrow's rules (its NatSpec, restated in Python) to that
test's ``Model``; ``StorageRules`` adds rules that open, accept, settle, cancel,
challenge, answer (truthfully, with a forged chunk, from the wrong account, before
the draw block exists or after it left the 256-block horizon) and slash storage
deals, and that change the fee of new deals, to its ``EscrowMachine``, and the
invariant (checked by the
host's after every step) that the storage escrow holds exactly the unpaid epochs of
live deals plus its credits, as the model says. Both escrows
lock collateral in the one registry, so the stake invariants there cover their
interplay. This module holds no tests of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from brownie import chain, web3
from conftest import (
    DEAL_ACTIVE,
    DEAL_CANCELLED,
    DEAL_COMPLETED,
    DEAL_OFFERED,
    DEAL_SLASHED,
    PARAMS,
    SHARD,
    TOKEN,
    drawn_chunk,
    need,
    shard_id,
)

from protocol import merkle

ACCEPT_S, WINDOW = PARAMS.storage_accept_window, PARAMS.storage_response_window
SHARDS = [b"", bytes(range(256)) * 6, SHARD, bytes(i % 253 for i in range(9 * 1024 + 1))]
EPOCH_LENGTHS = [60, 150, 400]
EPOCH_COUNTS = [1, 2, 4]
EPOCH_PRICES = [1 * TOKEN, 3 * TOKEN]
FEES_BPS = [0, PARAMS.fee_bps, 1000]  # what the admin may set the fee of new deals to
HORIZON = 256  # blocks whose hash the EVM keeps
_LEAVES = [merkle.chunk_leaves(s) for s in SHARDS]
_ROOTS = [merkle.root(leaves) for leaves in _LEAVES]


def events(tx: Any, name: str) -> list[Any]:
    """Every `name` event of a receipt, none for a reverted call."""
    return list(tx.events[name]) if tx is not None and name in tx.events else []


def answer(shard: int, index: int) -> tuple[bytes, list[bytes]]:
    """Chunk `index` of shard `shard` and its Merkle proof."""
    data = SHARDS[shard]
    size = merkle.CHUNK_BYTES
    chunk = data[index * size : (index + 1) * size]
    return chunk, merkle.proof(_LEAVES[shard], index)


@dataclasses.dataclass
class Deal:
    id: int
    renter: str
    node: str
    price: int
    epochs: int
    length: int
    shard: int
    chunk_count: int
    collateral: int
    accept_by: int
    keeps_data: bool  # the advance rule answers challenges only for nodes that kept it
    fee_bps: int
    start: int = 0
    paid: int = 0
    status: int = DEAL_OFFERED
    respond_by: int = 0
    epoch_plus_one: int = 0
    draw_block: int = 0

    @property
    def live(self) -> bool:
        return self.status in (DEAL_OFFERED, DEAL_ACTIVE)

    @property
    def ends_at(self) -> int:
        return self.start + self.epochs * self.length

    def due(self, ts: int) -> int:
        return min(self.epochs, (ts - self.start) // self.length)

    def chunk(self) -> int:
        """The pending challenge's chunk once its draw block is mined (else 0)."""
        if web3.eth.block_number < self.draw_block:
            return 0
        return drawn_chunk(self.draw_block, self.id, self.chunk_count)


def terms(node: str, shard: int, price: int, epochs: int, length: int, chunks: int | None = None):
    count = len(_LEAVES[shard]) if chunks is None else chunks
    return (node, shard_id(f"{node}:{shard}"), _ROOTS[shard], count, price, epochs, length)


class StorageModel:
    """StorageEscrow's rules; mixed into the stateful test's ``Model``.

    Uses the host's ``_move``, ``_slash``, ``_unlock``, ``_check_lock``, ``stakes``,
    ``balances`` and ``treasury``. Every operation checks first (raising ``Revert``
    in the contract's order), then applies. `block` is the number of the block the
    call landed in (reverted calls are mined too).
    """

    def _init_storage(self, auditor: str) -> None:
        self.auditor = auditor
        self.storage_fee_bps = PARAMS.fee_bps
        self.deals: dict[int, Deal] = {}
        self.storage_credits: dict[str, int] = dict.fromkeys(self.balances, 0)
        self.storage_balance = 0

    def open_deals(self, renter: str, entries: list[tuple[Any, ...]], keeps: bool, ts: int):
        """`entries` are (node, shard, price, epochs, length, chunks) per deal."""
        need(len(entries) > 0, "StorageNoTerms")
        total = 0
        for _node, _, price, epochs, length, chunks in entries:
            need(price > 0, "StorageZeroPrice")
            need(chunks > 0 and epochs > 0 and length > 0, "StorageBadShape")
            total += price * epochs
        need(self.balances[renter] >= total, "ERC20InsufficientBalance")
        first = len(self.deals) + 1
        for node, shard, price, epochs, length, chunks in entries:
            deal_id = len(self.deals) + 1
            self.deals[deal_id] = Deal(
                id=deal_id,
                renter=renter,
                node=node,
                price=price,
                epochs=epochs,
                length=length,
                shard=shard,
                chunk_count=chunks,
                collateral=price * epochs * PARAMS.storage_collateral_bps // 10_000,
                accept_by=ts + ACCEPT_S,
                keeps_data=keeps,
                fee_bps=self.storage_fee_bps,
            )
        self._move(renter, "storage", total)
        return first

    def _deal(self, deal_id: int) -> Deal | None:
        return self.deals.get(deal_id)

    def _active_deal(self, deal_id: int) -> Deal:
        deal = self.deals.get(deal_id)
        need(deal is not None and deal.status == DEAL_ACTIVE, "StorageDealNotActive")
        assert deal is not None
        return deal

    def accept_deal(self, deal_id: int, sender: str, ts: int) -> None:
        deal = self.deals.get(deal_id)
        need(deal is not None and deal.status == DEAL_OFFERED, "StorageDealNotOffered")
        assert deal is not None
        need(sender == deal.node, "StorageNotNode")
        need(ts <= deal.accept_by, "StorageWindowClosed")
        self._check_lock(sender, deal.collateral)
        deal.status, deal.start = DEAL_ACTIVE, ts
        self.stakes[sender][1] += deal.collateral

    def cancel_deal(self, deal_id: int, sender: str, ts: int) -> int:
        deal = self.deals.get(deal_id)
        need(deal is not None and deal.live, "StorageDealNotActive")
        assert deal is not None
        if deal.status == DEAL_OFFERED:
            need(sender == deal.renter or ts > deal.accept_by, "StorageNotCancellable")
            refund = deal.price * deal.epochs
        else:
            need(sender == deal.renter, "StorageNotRenter")
            need(deal.respond_by == 0, "StorageChallengePending")
            earned = min(deal.epochs, (ts - deal.start) // deal.length + 1)
            if earned > deal.paid:
                self._pay_deal(deal, earned)
            refund = deal.price * (deal.epochs - earned)
            self._unlock(deal.node, deal.collateral)
        deal.status = DEAL_CANCELLED
        self.storage_credits[deal.renter] += refund
        return refund

    def challenge_deal(self, deal_id: int, sender: str, ts: int, block: int) -> None:
        deal = self._active_deal(deal_id)
        need(sender in (deal.renter, self.auditor), "StorageNotAuditor")
        need(deal.respond_by == 0, "StorageChallengePending")
        need(ts < deal.ends_at, "StorageDealExpired")
        epoch = (ts - deal.start) // deal.length
        need(deal.epoch_plus_one <= epoch, "StorageAlreadyChallenged")
        deal.respond_by, deal.epoch_plus_one = ts + WINDOW, epoch + 1
        deal.draw_block = block + 1

    def respond_deal(self, deal_id: int, sender: str, truthful: bool, ts: int, block: int):
        deal = self._active_deal(deal_id)
        need(sender == deal.node, "StorageNotNode")
        need(deal.respond_by != 0, "StorageNoChallenge")
        need(ts <= deal.respond_by, "StorageWindowClosed")
        need(block > deal.draw_block, "StorageChunkNotDrawn")
        need(block <= deal.draw_block + HORIZON, "StorageChunkExpired")
        need(truthful, "StorageBadProof")
        deal.respond_by = 0

    def slash_missed(self, deal_id: int, ts: int, block: int) -> tuple[int, int]:
        """Slash a missed challenge; return (refund, collateral slashed)."""
        deal = self._active_deal(deal_id)
        need(deal.respond_by != 0, "StorageNoChallenge")
        late = ts > deal.respond_by or block > deal.draw_block + HORIZON
        need(late, "StorageResponseNotLate")
        need(block > deal.draw_block, "StorageChunkNotDrawn")
        deal.respond_by, deal.status = 0, DEAL_SLASHED
        served = deal.epoch_plus_one - 1  # epochs completed when the challenge came
        if served > deal.paid:
            self._pay_deal(deal, served)
        slashed = deal.collateral * (deal.epochs - served) // deal.epochs
        refund = deal.price * (deal.epochs - served)
        self.storage_credits[deal.renter] += refund
        self._unlock(deal.node, deal.collateral - slashed)
        self._slash(deal.node, slashed, deal.renter)
        return refund, slashed

    def set_storage_fee(self, sender: str, fee_bps: int) -> None:
        need(sender == self.auditor, "AccessControlUnauthorizedAccount")  # the deployer
        self.storage_fee_bps = fee_bps

    def settle_deal(self, deal_id: int, ts: int) -> int:
        deal = self._active_deal(deal_id)
        need(deal.respond_by == 0, "StorageChallengePending")
        due = deal.due(ts)
        need(due != deal.paid, "StorageNothingDue")
        return self._settle_deal(deal, due)

    def settle_deals(self, deal_ids: list[int], ts: int) -> list[tuple[int, int]]:
        """(deal id, epochs paid) for every deal settleMany settles, in order."""
        settled = []
        for deal_id in deal_ids:
            deal = self.deals.get(deal_id)
            if deal is None or deal.status != DEAL_ACTIVE or deal.respond_by != 0:
                continue
            due = deal.due(ts)
            if due != deal.paid:
                settled.append((deal_id, self._settle_deal(deal, due)))
        return settled

    def storage_withdraw(self, account: str) -> None:
        need(self.storage_credits[account] != 0, "EscrowNothingToWithdraw")
        self._move("storage", account, self.storage_credits[account])
        self.storage_credits[account] = 0

    def _settle_deal(self, deal: Deal, due: int) -> int:
        count = due - deal.paid
        self._pay_deal(deal, due)
        if due == deal.epochs:
            deal.status = DEAL_COMPLETED
            self._unlock(deal.node, deal.collateral)
        return count

    def _pay_deal(self, deal: Deal, up_to: int) -> None:
        amount = deal.price * (up_to - deal.paid)
        fee = amount * deal.fee_bps // 10_000
        deal.paid = up_to
        self.storage_credits[deal.node] += amount - fee
        self.storage_credits[self.treasury] += fee

    def storage_live_deposits(self) -> int:
        return sum(d.price * (d.epochs - d.paid) for d in self.deals.values() if d.live)


class StorageRules:
    """Storage rules and invariant; mixed into the stateful test's ``EscrowMachine``.

    Two rules keep the job rules' share of the steps: ``rule_storage`` does one random
    storage call, often at the wrong moment or from the wrong account, and
    ``rule_storage_advance`` carries a deal through its next natural step (accept,
    challenge, answer or miss, slash, settle, cancel), waiting out windows as needed.
    """

    def _init_storage_rules(cls, storage, auditor) -> None:  # noqa: N805
        cls.storage, cls.auditor = storage, str(auditor)

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _storage_snapshot(raw) -> dict[str, Any]:
        """The storage part of the host's one-call snapshot, as plain ints."""
        snap = raw.dict()
        credits = [int(c) for c in snap["credits"]]
        return {
            "balance": int(snap["balance"]),
            "live": int(snap["liveDeposits"]),
            "credits": credits,
        }

    def _pick_deal(self, pick: int, want=None) -> Deal | None:
        deals = list(self.model.deals.values())
        live = [d for d in deals if d.live]
        wanted = [d for d in live if want is None or want(d)]
        if wanted and pick % 8 != 7:
            return wanted[pick % len(wanted)]
        if live and pick % 8 != 7:
            return live[pick % len(live)]
        return deals[pick % len(deals)] if deals else None

    def _check_deal(self, deal: Deal) -> None:
        on_chain = self.storage.getDeal(deal.id).dict()
        assert on_chain["status"] == deal.status, f"deal {deal.id} status"
        assert (on_chain["paidEpochs"], on_chain["start"]) == (deal.paid, deal.start)
        assert on_chain["feeBps"] == deal.fee_bps
        c = self.storage.getChallenge(deal.id).dict()
        assert (c["respondBy"], c["epochPlusOne"]) == (deal.respond_by, deal.epoch_plus_one)
        assert c["drawBlock"] == deal.draw_block

    # ---------------------------------------------------------------- operations

    def _open_deals(self, renter, entries, *, keeps=True, batch=True):
        args = [terms(*e) for e in entries]
        fn, call_args = (
            (self.storage.openDeals, (args,)) if batch else (self.storage.openDeal, (args[0],))
        )
        tx, first = self._act(
            "openDeals" if batch else "openDeal",
            fn,
            *call_args,
            sender=renter,
            model=lambda ts: self.model.open_deals(renter, entries, keeps, ts),
        )
        if tx is not None:
            assert self.storage.dealCount() == len(self.model.deals)
            assert [e["dealId"] for e in tx.events["DealOpened"]] == list(
                range(first, first + len(entries))
            )
            self.stats["deal:opened"] += len(entries)
        return first

    def _accept_deal(self, deal, sender):
        tx, _ = self._act(
            "acceptDeal",
            self.storage.accept,
            deal.id,
            sender=sender,
            model=lambda ts: self.model.accept_deal(deal.id, sender, ts),
        )
        if tx is not None:
            self._check_deal(deal)

    def _cancel_deal(self, deal, sender):
        tx, refund = self._act(
            "cancelDeal",
            self.storage.cancel,
            deal.id,
            sender=sender,
            model=lambda ts: self.model.cancel_deal(deal.id, sender, ts),
        )
        if tx is not None:
            assert tx.events["DealCancelled"]["refund"] == refund
            self.stats["deal:cancelled"] += 1
            self._check_deal(deal)

    def _challenge_deal(self, deal, sender):
        tx, _ = self._act(
            "challenge",
            self.storage.challenge,
            deal.id,
            sender=sender,
            model=lambda ts: self.model.challenge_deal(deal.id, sender, ts, web3.eth.block_number),
        )
        if tx is not None:
            assert tx.events["ChallengeIssued"]["drawBlock"] == tx.block_number + 1
            self.stats["deal:challenged"] += 1
            self._check_deal(deal)

    def _respond_deal(self, deal, sender, truthful):
        chunk, proof = answer(deal.shard, deal.chunk())
        if not truthful:
            chunk = chunk + b"\x00"
        tx, _ = self._act(
            "respond",
            self.storage.respond,
            deal.id,
            chunk,
            proof,
            sender=sender,
            model=lambda ts: self.model.respond_deal(
                deal.id, sender, truthful, ts, web3.eth.block_number
            ),
        )
        if tx is not None:
            self.stats["deal:answered"] += 1
            self._check_deal(deal)

    def _slash_missed(self, deal, sender):
        tx, outcome = self._act(
            "slashMissed",
            self.storage.slashMissed,
            deal.id,
            sender=sender,
            model=lambda ts: self.model.slash_missed(deal.id, ts, web3.eth.block_number),
        )
        if tx is not None:
            refund, slashed = outcome
            event = tx.events["DealSlashed"]
            assert (event["node"], event["refund"]) == (deal.node, refund)
            assert (event["slashed"], event["released"]) == (slashed, deal.collateral - slashed)
            if slashed:
                assert tx.events["ProviderSlashed"]["amount"] == slashed
            self.stats["deal:slashed"] += 1
            self._check_deal(deal)

    def _settle_one(self, deal, sender):
        tx, count = self._act(
            "settleDeal",
            self.storage.settle,
            deal.id,
            sender=sender,
            model=lambda ts: self.model.settle_deal(deal.id, ts),
        )
        if tx is not None:
            self._after_deal_settled(deal, count, tx)

    def _settle_many(self, ids, sender):
        tx, settled = self._act(
            "settleMany",
            self.storage.settleMany,
            ids,
            sender=sender,
            model=lambda ts: self.model.settle_deals(ids, ts),
        )
        paid = [(e["dealId"], e["epochs"]) for e in events(tx, "EpochsPaid")]
        assert paid == settled
        for deal_id, count in settled:
            self._after_deal_settled(self.model.deals[deal_id], count, tx)

    def _after_deal_settled(self, deal, count, tx):
        self.stats["deal:epochs_paid"] += count
        if deal.status == DEAL_COMPLETED:
            assert deal.id in [e["dealId"] for e in events(tx, "DealCompleted")]
            self.stats["deal:completed"] += 1
        self._check_deal(deal)

    def _set_storage_fee(self, sender, fee_bps):
        tx, _ = self._act(
            "setStorageFee",
            self.storage.setFee,
            self.model.treasury,
            fee_bps,
            sender=sender,
            model=lambda ts: self.model.set_storage_fee(sender, fee_bps),
        )
        if tx is not None:
            self.stats["deal:fee_set"] += 1

    def _storage_withdraw(self, account):
        tx, _ = self._act(
            "storageWithdraw",
            self.storage.withdraw,
            sender=account,
            model=lambda ts: self.model.storage_withdraw(account),
        )
        if tx is not None:
            self.stats["deal:withdrawn"] += 1

    # --------------------------------------------------------------------- rules

    def rule_storage(self, seed="st_seed"):
        """One storage call chosen by `seed`, with its deal, sender and terms."""
        op, pick, who, extra = seed % 10, seed // 10 % 251, seed // 2510 % 8, seed // 20080
        renter = self.renters[extra % 2]
        deal = self._pick_deal(pick)
        stranger = self.tracked[who]
        if op <= 1 or deal is None:
            count = 1 if op == 0 or deal is None else extra % 4  # 0: an empty batch
            entries = []
            for k in range(count):
                price = EPOCH_PRICES[(extra >> 2) % 2] if extra % 13 != 12 else 0
                epochs = EPOCH_COUNTS[(extra >> 3) % 3] if extra % 17 != 16 else 0
                shard = (extra >> 5) % len(SHARDS)
                chunks = len(_LEAVES[shard])
                length = EPOCH_LENGTHS[(extra >> 7) % 3]
                entries.append(
                    (self.providers[(who + k) % 5], shard, price, epochs, length, chunks)
                )
            self._open_deals(renter, entries, keeps=bool(extra & 1), batch=op == 1)
        elif op == 2:
            self._accept_deal(deal, deal.node if who < 6 else stranger)
        elif op == 3:
            self._settle_one(deal, stranger)
        elif op == 4:
            self._settle_many([*self.model.deals, len(self.model.deals) + 1], stranger)
        elif op == 5:
            self._cancel_deal(deal, deal.renter if who < 5 else stranger)
        elif op == 6:
            senders = [deal.renter, self.auditor, deal.node, stranger]
            self._challenge_deal(deal, senders[who % 4])
        elif op == 7:
            self._respond_deal(deal, deal.node if who != 7 else stranger, truthful=who % 3 != 0)
        elif op == 8:
            self._slash_missed(deal, stranger)
        elif extra % 4 == 3:
            sender = self.auditor if who < 6 else stranger
            self._set_storage_fee(sender, FEES_BPS[(extra >> 2) % len(FEES_BPS)])
        else:
            credited = [a for a in self.tracked if self.model.storage_credits[a]]
            self._storage_withdraw(credited[who % len(credited)] if credited else stranger)

    def rule_storage_advance(self, seed="st_seed"):
        """Take a live deal (or a new one) through its next natural steps."""
        pick, steps, who = seed % 251, 1 + seed // 251 % 3, seed // 753 % 8
        deal = self._pick_deal(pick)
        if deal is None or not deal.live:
            if seed // 6024 % 3 == 0:  # the admin changes the fee of new deals first
                self._set_storage_fee(self.auditor, FEES_BPS[seed // 18072 % len(FEES_BPS)])
            entry = (self.providers[who % 5], who % 4, EPOCH_PRICES[who % 2], 2, 150, None)
            entry = (*entry[:5], len(_LEAVES[entry[1]]))
            self._open_deals(self.renters[seed % 2], [entry], keeps=who % 4 != 0, batch=False)
            deal = self.model.deals.get(len(self.model.deals))
        for step in range(steps):
            if deal is None or not deal.live:
                return
            self._advance_deal(deal, (who + step) % 8)

    def _advance_deal(self, deal, who):
        now = chain.time()
        if deal.status == DEAL_OFFERED:
            if now < deal.accept_by - 2:
                self._accept_deal(deal, deal.node)
            else:
                self._cancel_deal(deal, self.tracked[who])
        elif deal.respond_by:
            if web3.eth.block_number < deal.draw_block:
                chain.mine()  # the draw block, as the auditor agent mines it on dev chains
                now = chain.time()
            if who == 3 and not deal.keeps_data:
                # the node sits it out past the 256-block horizon: too late to answer,
                # slashable even while the window is still open
                chain.mine(max(0, deal.draw_block + HORIZON - web3.eth.block_number))
                self._respond_deal(deal, deal.node, truthful=True)
                self._slash_missed(deal, self.tracked[who])
            elif now < deal.respond_by - 2 and (deal.keeps_data or who % 2):
                # a node that lost the shard sometimes tries a forged chunk first
                self._respond_deal(deal, deal.node, truthful=deal.keeps_data)
            else:
                if now <= deal.respond_by:
                    chain.sleep(deal.respond_by - now + 1 + who)
                self._slash_missed(deal, self.tracked[who])
        elif who == 7:
            self._cancel_deal(deal, deal.renter)
        elif now < deal.ends_at - 2 and deal.epoch_plus_one <= (now - deal.start) // deal.length:
            self._challenge_deal(deal, deal.renter if who % 2 else self.auditor)
        else:
            next_epoch = deal.start + (deal.paid + 1) * deal.length
            if now < next_epoch and who % 2:
                chain.sleep(next_epoch - now + 1)
            self._settle_one(deal, self.tracked[who])

    # ----------------------------------------------------------------- invariant

    def _check_storage_invariant(self, snap: dict[str, Any]) -> None:
        """Run by the host's invariant on the same snapshot after every step."""
        model = self.model
        assert snap["balance"] == snap["live"] + sum(snap["credits"])
        assert snap["balance"] == model.storage_balance
        assert snap["live"] == model.storage_live_deposits()
        for i, account in enumerate(self.tracked):
            assert snap["credits"][i] == model.storage_credits[account], f"storage credit {account}"


STORAGE_PATHS = (
    "deal:opened",
    "deal:challenged",
    "deal:answered",
    "deal:epochs_paid",
    "deal:completed",
    "deal:cancelled",
    "deal:slashed",
    "deal:withdrawn",
    "deal:fee_set",
)
