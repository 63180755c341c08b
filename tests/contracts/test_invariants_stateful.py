"""Stateful test: random sequences over both escrows and the registry, checked against a model.

Two renters and five providers fund, accept, commit, reveal, confirm, finalize,
dispute, claim no-shows, cancel, withdraw, stake, unstake and travel in time, in
random order and often at the wrong moment; storage deals are opened, accepted,
challenged, answered (or not), slashed, settled and cancelled among them
(``test_storage_escrow_stateful.py``), locking collateral in the same registry. Each
transaction's outcome (success, or the custom error it reverts with) is predicted by
a Python model of the rules in JobEscrow's and StorageEscrow's docstrings, evaluated
at the timestamp of the block the transaction was mined in; on success the model
applies the same effects. After every step:

- the token supply is unchanged;
- the job escrow holds exactly the deposits of live jobs (price x replicas, dispute
  bond included) plus all credits, the storage escrow exactly the unpaid epochs of
  live deals plus its credits, and the registry exactly the providers' stake;
- every balance, credit and stake equals the model's (so nothing is paid twice and
  credits move only through settlement, cancel and withdraw);
- and at each settlement only providers at fault were slashed (accepted and did not
  reveal, or revealed a minority result while a majority existed), each honest
  majority replica was paid exactly once, and nobody else.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any, ClassVar

import pytest
from brownie import StorageStateReader, chain, web3
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy
from conftest import (
    ACCEPTED,
    CANCELLED,
    COMMITTED,
    DISPUTED,
    FUNDED,
    NONE,
    PAID,
    PARAMS,
    RELEASED,
    REVEALED,
    SETTLED,
    SLASHED,
    TOKEN,
    Revert,
    commitment,
    need,
    plain,
    result_hash,
    salt_for,
)
from test_storage_escrow_stateful import STORAGE_PATHS, StorageModel, StorageRules

ACCEPT, REVEAL, CHALLENGE = PARAMS.accept_window, PARAMS.reveal_window, PARAMS.challenge_window
PRICES = [1 * TOKEN, 10 * TOKEN, 40 * TOKEN]
DEADLINE_EXTRAS = [150, 30, 300, -5]  # seconds after acceptBy; -5 is too soon
SLEEPS = [3, 40, 110, 250, 520, 1_100]
STAKE_AMOUNTS = [1 * TOKEN, 50 * TOKEN, 300 * TOKEN, 950 * TOKEN]
LABELS = ["a", "a", "b", "c"]  # the honest result is the likeliest
SPEC = web3.keccak(text="spec")


def events(tx: Any, name: str) -> list[Any]:
    """Every `name` event of a receipt (brownie's EventDict has no `get`)."""
    return list(tx.events[name]) if name in tx.events else []


@dataclasses.dataclass
class Slot:
    provider: str | None = None
    state: int = NONE
    committed: str | None = None  # label behind the commitment
    revealed: str | None = None


@dataclasses.dataclass
class Job:
    id: int
    renter: str
    price: int
    collateral: int
    replicas: int
    open: bool
    accept_by: int
    deadline: int
    slots: list[Slot]
    challenge_ends: int = 0
    accepted: int = 0
    committed: int = 0
    revealed: int = 0
    status: int = FUNDED

    @property
    def live(self) -> bool:
        return self.status in (FUNDED, DISPUTED)


class Model(StorageModel):
    """The protocol's rules as JobEscrow's and ProviderRegistry's docs state them
    (StorageEscrow's come from `StorageModel`).

    Every operation first checks (raising `Revert` without touching state), then applies.
    """

    def __init__(
        self,
        *,
        balances: dict[str, int],
        stakes: dict[str, list[int]],
        treasury: str,
        auditor: str,
    ):
        self.balances = balances
        self.credits: dict[str, int] = dict.fromkeys(balances, 0)
        self.stakes = stakes  # provider -> [staked, locked, unbonding, readyAt]
        self.treasury = treasury
        self.jobs: dict[int, Job] = {}
        self.escrow_balance = 0
        self.registry_balance = sum(s[0] for s in stakes.values())
        self._init_storage(auditor)

    # ------------------------------------------------------------------ registry

    def stake(self, provider: str, amount: int) -> None:
        need(amount > 0, "RegistryZeroAmount")
        need(self.balances[provider] >= amount, "ERC20InsufficientBalance")
        self.stakes[provider][0] += amount
        self._move(provider, "registry", amount)

    def request_unstake(self, provider: str, amount: int, ts: int) -> None:
        staked, locked, unbonding, _ = self.stakes[provider]
        need(amount > 0, "RegistryZeroAmount")
        need(amount <= staked - locked - unbonding, "RegistryInsufficientFreeStake")
        self.stakes[provider][2] += amount
        self.stakes[provider][3] = ts + PARAMS.unbonding_delay

    def cancel_unstake(self, provider: str) -> None:
        need(self.stakes[provider][2] != 0, "RegistryNothingUnbonding")
        self.stakes[provider][2:] = [0, 0]

    def withdraw_unstaked(self, provider: str, ts: int) -> None:
        _, _, unbonding, ready_at = self.stakes[provider]
        need(unbonding != 0, "RegistryNothingUnbonding")
        need(ts >= ready_at, "RegistryUnbondingNotReady")
        self.stakes[provider][0] -= unbonding
        self.stakes[provider][2:] = [0, 0]
        self._move("registry", provider, unbonding)

    def _check_lock(self, provider: str, amount: int) -> None:
        staked, locked, unbonding, _ = self.stakes.get(provider, [0, 0, 0, 0])
        active = staked - unbonding
        need(active != 0 and active >= PARAMS.min_stake, "RegistryProviderInactive")
        need(amount <= active - locked, "RegistryInsufficientFreeStake")

    def _slash(self, provider: str, amount: int, beneficiary: str) -> None:
        stake = self.stakes[provider]
        assert stake[1] >= amount, "model: slash beyond locked"
        stake[1] -= amount
        stake[0] -= amount
        to_treasury = amount * PARAMS.slash_treasury_bps // 10_000
        self._move("registry", self.treasury, to_treasury)
        self._move("registry", beneficiary, amount - to_treasury)

    def _unlock(self, provider: str, amount: int) -> None:
        assert self.stakes[provider][1] >= amount, "model: unlock beyond locked"
        self.stakes[provider][1] -= amount

    def _move(self, src: str, dst: str, amount: int) -> None:
        for account, delta in ((src, -amount), (dst, amount)):
            if account == "registry":
                self.registry_balance += delta
            elif account == "escrow":
                self.escrow_balance += delta
            elif account == "storage":
                self.storage_balance += delta
            else:
                self.balances[account] += delta
        assert min(self.registry_balance, self.escrow_balance, self.storage_balance) >= 0
        assert min(self.balances.values()) >= 0

    # -------------------------------------------------------------------- escrow

    def _live(self, job_id: int) -> Job:
        job = self.jobs.get(job_id)
        need(job is not None and job.live, "EscrowJobNotLive")
        assert job is not None
        return job

    def fund(
        self, renter: str, price: int, deadline: int, replicas: int, named: list[str], ts: int
    ) -> int:
        accept_by = ts + ACCEPT
        need(deadline > accept_by, "EscrowDeadlineTooSoon")
        need(len(set(named)) == len(named), "EscrowBadProvider")
        need(self.balances[renter] >= price * replicas, "ERC20InsufficientBalance")
        job_id = len(self.jobs) + 1
        slots = [Slot(provider=named[i] if named else None) for i in range(replicas)]
        self.jobs[job_id] = Job(
            id=job_id,
            renter=renter,
            price=price,
            collateral=price * PARAMS.collateral_bps // 10_000,
            replicas=replicas,
            open=not named,
            accept_by=accept_by,
            deadline=deadline,
            slots=slots,
        )
        self._move(renter, "escrow", price * replicas)
        return job_id

    def accept(self, job_id: int, provider: str, ts: int) -> None:
        job = self._live(job_id)
        need(ts <= job.accept_by, "EscrowWindowClosed")
        slot = None
        for candidate in job.slots:
            if candidate.provider == provider:
                need(candidate.state == NONE, "EscrowAlreadyAccepted")
                slot = candidate
                break
        if slot is None and job.open:
            slot = next((s for s in job.slots if s.provider is None), None)
        need(slot is not None, "EscrowNoSlotFor")
        self._check_lock(provider, job.collateral)
        assert slot is not None
        slot.provider, slot.state = provider, ACCEPTED
        job.accepted += 1
        self.stakes[provider][1] += job.collateral

    def _slot_of(self, job: Job, provider: str, state: int) -> Slot:
        for slot in job.slots:
            if slot.provider == provider and slot.state != NONE:
                need(slot.state == state, "EscrowWrongReplicaState")
                return slot
        raise Revert("EscrowNotProvider")

    def commit(self, job_id: int, provider: str, label: str, ts: int) -> None:
        job = self._live(job_id)
        need(ts <= job.deadline, "EscrowWindowClosed")
        slot = self._slot_of(job, provider, ACCEPTED)
        slot.state, slot.committed = COMMITTED, label
        job.committed += 1

    def reveal(self, job_id: int, provider: str, label: str, ts: int) -> None:
        job = self._live(job_id)
        need(ts <= job.deadline + REVEAL, "EscrowWindowClosed")
        need(job.committed == job.replicas or ts > job.deadline, "EscrowRevealTooEarly")
        slot = self._slot_of(job, provider, COMMITTED)
        need(label == slot.committed, "EscrowCommitmentMismatch")
        slot.state, slot.revealed = REVEALED, label
        job.revealed += 1
        if job.revealed == job.replicas:
            job.challenge_ends = ts + CHALLENGE

    def confirm(self, job_id: int, sender: str) -> dict[str, Any]:
        job = self._live(job_id)
        need(sender == job.renter, "EscrowNotRenter")
        need(job.revealed == job.replicas, "EscrowNotAllRevealed")
        return self._settle(job)

    def dispute(
        self, job_id: int, sender: str, deadline: int, verifiers: list[str], ts: int
    ) -> None:
        job = self._live(job_id)
        need(sender == job.renter, "EscrowNotRenter")
        need(job.replicas == 1 and job.revealed == 1, "EscrowNotDisputable")
        need(ts <= job.challenge_ends, "EscrowWindowClosed")
        need(deadline > ts + ACCEPT, "EscrowDeadlineTooSoon")
        original = job.slots[0].provider
        need(
            original not in verifiers and len(set(verifiers)) == len(verifiers), "EscrowBadProvider"
        )
        bond = 2 * job.price
        need(self.balances[sender] >= bond, "ERC20InsufficientBalance")
        job.slots += [Slot(provider=v) for v in verifiers] or [Slot(), Slot()]
        job.replicas = 3
        job.accept_by, job.deadline, job.challenge_ends = ts + ACCEPT, deadline, 0
        job.open = not verifiers
        job.status = DISPUTED
        self._move(sender, "escrow", bond)

    def cancel(self, job_id: int, sender: str, ts: int) -> None:
        job = self._live(job_id)
        need(job.status == FUNDED, "EscrowNotCancellable")
        early = job.accepted == 0 and sender == job.renter
        lapsed = (
            ts > job.accept_by
            and job.accepted < job.replicas
            and (job.accepted == 0 or ts <= job.deadline)
        )
        need(early or lapsed, "EscrowNotCancellable")
        job.status = CANCELLED
        for slot in job.slots:
            if slot.state != NONE:
                slot.state = RELEASED
                self._unlock(slot.provider, job.collateral)
        self.credits[job.renter] += job.price * job.replicas

    def claim_no_show(self, job_id: int, ts: int) -> dict[str, Any]:
        job = self._live(job_id)
        ends = job.deadline if job.committed == 0 else job.deadline + REVEAL
        need(job.accepted != 0 and job.revealed == 0 and ts > ends, "EscrowNotNoShow")
        return self._settle(job)

    def finalizable_at(self, job: Job) -> int:
        return job.challenge_ends or job.deadline + REVEAL + CHALLENGE

    def finalize(self, job_id: int, ts: int) -> dict[str, Any]:
        job = self._live(job_id)
        need(ts > self.finalizable_at(job), "EscrowNotFinalizable")
        return self._settle(job)

    def finalize_many(self, job_ids: list[int], ts: int) -> list[dict[str, Any]]:
        return [
            self._settle(self.jobs[i])
            for i in job_ids
            if i in self.jobs and self.jobs[i].live and ts > self.finalizable_at(self.jobs[i])
        ]

    def withdraw(self, account: str) -> None:
        need(self.credits[account] != 0, "EscrowNothingToWithdraw")
        self._move("escrow", account, self.credits[account])
        self.credits[account] = 0

    @staticmethod
    def majority(job: Job) -> str | None:
        """The result revealed by a strict majority of the accepted replicas, if any."""
        votes = Counter(s.revealed for s in job.slots if s.state == REVEALED)
        for label, count in votes.items():
            if 2 * count > job.accepted:
                return label
        return None

    def _settle(self, job: Job) -> dict[str, Any]:
        """Pays the majority, slashes the minority and the silent, refunds the rest."""
        winner = self.majority(job)
        fee = job.price * PARAMS.fee_bps // 10_000
        refund = fees = 0
        outcome: dict[str, Any] = {"job": job.id, "paid": [], "slashed": [], "winner": winner}
        for slot in job.slots:
            if slot.state == NONE:
                refund += job.price
            elif slot.state == REVEALED and (winner is None or slot.revealed == winner):
                if winner is not None:
                    slot.state = PAID
                    self.credits[slot.provider] += job.price - fee
                    fees += fee
                    outcome["paid"].append(slot.provider)
                else:
                    slot.state = RELEASED
                    refund += job.price
                self._unlock(slot.provider, job.collateral)
            else:
                slot.state = SLASHED
                refund += job.price
                outcome["slashed"].append(slot.provider)
                self._slash(slot.provider, job.collateral, job.renter)
        job.status = SETTLED
        self.credits[job.renter] += refund
        self.credits[self.treasury] += fees
        return outcome

    def live_deposits(self) -> int:
        return sum(j.price * j.replicas for j in self.jobs.values() if j.live)


class EscrowMachine(StorageRules):
    st_pick = strategy("uint16")
    st_renter = strategy("uint8", max_value=1)
    st_provider = strategy("uint8", max_value=4)
    st_account = strategy("uint8", max_value=7)
    st_replicas = strategy("uint8", min_value=1, max_value=3)
    st_price = strategy("uint8", max_value=len(PRICES) - 1)
    st_extra = strategy("uint8", max_value=len(DEADLINE_EXTRAS) - 1)
    st_label = strategy("uint8", max_value=len(LABELS) - 1)
    st_sleep = strategy("uint8", max_value=len(SLEEPS) - 1)
    st_amount = strategy("uint8", max_value=len(STAKE_AMOUNTS) - 1)
    st_seed = strategy("uint32")
    st_bool = strategy("bool")

    stats: ClassVar[Counter[str]] = Counter()

    def __init__(
        cls,  # noqa: N805 (brownie calls __init__ on the class)
        token,
        escrow,
        registry,
        reader,
        renters,
        providers,
        treasury,
        storage,
    ):
        cls.token, cls.escrow, cls.registry, cls.reader = token, escrow, registry, reader
        cls.renters = [str(a) for a in renters]
        cls.providers = [str(a) for a in providers]
        cls.treasury = str(treasury)
        cls.tracked = [*cls.renters, *cls.providers, cls.treasury]
        cls.stats = Counter()
        StorageRules._init_storage_rules(cls, *storage)

    def setup(self):
        snap = self._read()
        self.model = Model(
            balances=dict(zip(self.tracked, snap["balances"], strict=True)),
            stakes={
                p: [snap["staked"][i], 0, 0, 0]
                for i, p in enumerate(self.tracked)
                if p in self.providers
            },
            treasury=self.treasury,
            auditor=self.auditor,
        )
        self.model.escrow_balance = snap["escrowBalance"]
        self.model.storage_balance = snap["storage"]["balance"]
        self.model.registry_balance = snap["registryBalance"]

    def teardown_final(cls):  # noqa: N805
        print(f"\nstateful run: {dict(sorted(cls.stats.items()))}")
        if getattr(cls, "_failed", False):
            return  # keep the failing step's error, not a coverage complaint
        # the run must reach the interesting paths, or it proves little
        for path in ("settled", "paid", "slashed", "cancelled", "disputed", "withdrawn"):
            assert cls.stats[path] > 0, f"no '{path}' in the whole stateful run"
        for path in STORAGE_PATHS:
            assert cls.stats[path] > 0, f"no '{path}' in the whole stateful run"

    # ------------------------------------------------------------------ plumbing

    def _read(self) -> dict[str, Any]:
        """Job escrow and registry state; the storage escrow's under "storage"."""
        jobs, storage = self.reader.read(
            self.token, self.escrow, self.registry, self.storage, self.tracked
        )
        snap = {
            key: [int(v) for v in value] if isinstance(value, list | tuple) else int(value)
            for key, value in jobs.dict().items()
        }
        snap["storage"] = self._storage_snapshot(storage)
        return snap

    def _send(self, fn, *args, sender):
        """Send a transaction; return (block timestamp, error name or None, receipt)."""
        before = web3.eth.block_number
        try:
            tx = fn(*args, {"from": sender})
        except VirtualMachineError as exc:
            assert web3.eth.block_number == before + 1, "the reverting transaction was not mined"
            timestamp = web3.eth.get_block("latest")["timestamp"]
            return timestamp, (exc.revert_msg or "").partition(":")[0], None
        return tx.timestamp, None, tx

    def _act(self, name, fn, *args, sender, model):
        """Run `fn` on chain and `model(ts)` in the model; both must agree on the outcome."""
        ts, error, tx = self._send(fn, *args, sender=sender)
        try:
            result = model(ts)
            expected = None
        except Revert as revert:
            result, expected = None, revert.name
        assert error == expected, f"{name}{args}: chain says {error}, model says {expected}"
        self.stats[f"{name}:{'ok' if error is None else error}"] += 1
        return tx, result

    def _pick_job(self, pick, want=None) -> Job | None:
        """Mostly a live job for which `want(job)` holds, sometimes any job at all."""
        jobs = list(self.model.jobs.values())
        live = [j for j in jobs if j.live]
        wanted = [j for j in live if want is None or want(j)]
        if wanted and pick % 8 != 7:
            return wanted[pick % len(wanted)]
        if live and pick % 8 != 7:
            return live[pick % len(live)]
        return jobs[pick % len(jobs)] if jobs else None

    def _check_job(self, job: Job) -> None:
        on_chain = self.escrow.getJob(job.id).dict()
        assert on_chain["status"] == job.status
        assert on_chain["replicas"] == job.replicas
        assert (on_chain["accepted"], on_chain["committed"], on_chain["revealed"]) == (
            job.accepted,
            job.committed,
            job.revealed,
        )
        assert (on_chain["acceptBy"], on_chain["deadline"], on_chain["challengeEnds"]) == (
            job.accept_by,
            job.deadline,
            job.challenge_ends,
        )
        for i, slot in enumerate(job.slots):
            provider, state, _ = plain(self.escrow.getReplica(job.id, i))
            assert state == slot.state, f"job {job.id} slot {i}: {state} != {slot.state}"
            if slot.provider is not None:
                assert provider == slot.provider

    def _check_settlement(self, job: Job, outcome: dict[str, Any], tx) -> None:
        """On chain: only the faulty slashed, each honest majority replica paid once.

        Fault as JobEscrow's docs define it: accepted and did not reveal, or revealed
        a result other than the strict majority's when there is one.
        """
        winner = outcome["winner"]  # the spec's strict majority, taken before settling
        fee = job.price * PARAMS.fee_bps // 10_000
        expected_paid = []
        for i, slot in enumerate(job.slots):
            state = plain(self.escrow.getReplica(job.id, i))[1]
            if slot.provider is None or state == NONE:
                assert state == NONE
                continue
            faulty = slot.revealed is None or (winner is not None and slot.revealed != winner)
            if faulty:
                assert state == SLASHED, f"job {job.id}: faulty {slot.provider} not slashed"
            elif winner is None:
                assert state == RELEASED, f"job {job.id}: {slot.provider} not released"
            else:
                assert state == PAID, f"job {job.id}: honest {slot.provider} not paid"
                expected_paid.append(slot.provider)
        paid = [
            (e["provider"], e["amount"]) for e in events(tx, "ReplicaPaid") if e["jobId"] == job.id
        ]
        assert sorted(paid) == sorted((p, job.price - fee) for p in expected_paid)
        assert len(set(expected_paid)) == len(expected_paid)
        slashed = [e["provider"] for e in events(tx, "ReplicaSlashed") if e["jobId"] == job.id]
        assert sorted(slashed) == sorted(outcome["slashed"])
        self.stats["settled"] += 1
        self.stats["paid"] += len(paid)
        self.stats["slashed"] += len(slashed)

    def _after_settle(self, job, outcome, tx):
        if outcome is None:
            return
        self._check_settlement(job, outcome, tx)
        self._check_job(job)

    # ------------------------------------------------------------------ escrow rules

    def rule_fund(
        self,
        renter="st_renter",
        replicas="st_replicas",
        named="st_bool",
        first="st_provider",
        price="st_price",
        extra="st_extra",
    ):
        providers = [self.providers[(first + k) % 5] for k in range(replicas)] if named else []
        self._fund(self.renters[renter], replicas, providers, PRICES[price], DEADLINE_EXTRAS[extra])

    def _fund(self, renter, replicas, providers, price, extra):
        deadline = chain.time() + ACCEPT + extra
        _, job_id = self._act(
            "fund",
            self.escrow.fund,
            SPEC,
            0,
            price,
            deadline,
            replicas,
            providers,
            sender=renter,
            model=lambda ts: self.model.fund(renter, price, deadline, replicas, providers, ts),
        )
        if job_id is not None:
            assert self.escrow.jobCount() == job_id
            self._check_job(self.model.jobs[job_id])

    def rule_accept(self, pick="st_pick", who="st_provider"):
        job = self._pick_job(pick, lambda j: j.accepted < j.replicas)
        if job is None:
            return
        waiting = [s.provider for s in job.slots if s.provider and s.state == NONE]
        provider = waiting[who % len(waiting)] if waiting and who < 3 else self.providers[who]
        self._accept(job, provider)

    def _accept(self, job, provider):
        tx, _ = self._act(
            "accept",
            self.escrow.accept,
            job.id,
            sender=provider,
            model=lambda ts: self.model.accept(job.id, provider, ts),
        )
        if tx is not None:
            self._check_job(job)

    def _slot_provider(self, job, which) -> str:
        holders = [s.provider for s in job.slots if s.provider and s.state != NONE]
        return holders[which % len(holders)] if holders else self.providers[which % 5]

    def rule_commit(self, pick="st_pick", which="st_provider", label="st_label"):
        job = self._pick_job(pick, lambda j: any(s.state == ACCEPTED for s in j.slots))
        if job is not None:
            self._commit(job, self._slot_provider(job, which), LABELS[label])

    def _commit(self, job, provider, label):
        digest = commitment(result_hash(label), salt_for(provider), provider)
        self._act(
            "commit",
            self.escrow.commit,
            job.id,
            digest,
            sender=provider,
            model=lambda ts: self.model.commit(job.id, provider, label, ts),
        )

    def rule_reveal(self, pick="st_pick", which="st_provider", lie="st_label"):
        job = self._pick_job(pick, lambda j: any(s.state == COMMITTED for s in j.slots))
        if job is None:
            return
        provider = self._slot_provider(job, which)
        slot = next((s for s in job.slots if s.provider == provider and s.state != NONE), None)
        label = slot.committed if slot and slot.committed and lie != 3 else "forged"
        self._reveal(job, provider, label)

    def _reveal(self, job, provider, label):
        self._act(
            "reveal",
            self.escrow.reveal,
            job.id,
            result_hash(label),
            salt_for(provider),
            sender=provider,
            model=lambda ts: self.model.reveal(job.id, provider, label, ts),
        )

    def rule_confirm(self, pick="st_pick", by_renter="st_bool"):
        job = self._pick_job(pick, lambda j: j.revealed == j.replicas)
        if job is not None:
            sender = job.renter if by_renter else self.renters[self.renters[0] == job.renter]
            self._confirm(job, sender)

    def _confirm(self, job, sender):
        tx, outcome = self._act(
            "confirm",
            self.escrow.confirm,
            job.id,
            sender=sender,
            model=lambda ts: self.model.confirm(job.id, sender),
        )
        self._after_settle(job, outcome, tx)

    def rule_finalize(self, pick="st_pick", who="st_account"):
        job = self._pick_job(pick, lambda j: chain.time() > self.model.finalizable_at(j))
        if job is not None:
            self._finalize(job, self.tracked[who])

    def _finalize(self, job, sender):
        tx, outcome = self._act(
            "finalize",
            self.escrow.finalize,
            job.id,
            sender=sender,
            model=lambda ts: self.model.finalize(job.id, ts),
        )
        self._after_settle(job, outcome, tx)

    def rule_finalize_many(self, who="st_account"):
        ids = [*self.model.jobs, len(self.model.jobs) + 1]
        tx, outcomes = self._act(
            "finalizeMany",
            self.escrow.finalizeMany,
            ids,
            sender=self.tracked[who],
            model=lambda ts: self.model.finalize_many(ids, ts),
        )
        assert len(events(tx, "JobSettled")) == len(outcomes)
        for outcome in outcomes:
            self._after_settle(self.model.jobs[outcome["job"]], outcome, tx)

    def rule_dispute(self, pick="st_pick", named="st_bool", first="st_provider", extra="st_extra"):
        job = self._pick_job(pick, lambda j: j.replicas == 1 and j.revealed == 1)
        if job is None:
            return
        verifiers = [self.providers[first], self.providers[(first + 1) % 5]] if named else []
        deadline = chain.time() + ACCEPT + DEADLINE_EXTRAS[extra]
        self._dispute(job, deadline, verifiers)

    def _dispute(self, job, deadline, verifiers):
        tx, _ = self._act(
            "dispute",
            self.escrow.dispute,
            job.id,
            deadline,
            verifiers,
            sender=job.renter,
            model=lambda ts: self.model.dispute(job.id, job.renter, deadline, verifiers, ts),
        )
        if tx is not None:
            self.stats["disputed"] += 1
            self._check_job(job)

    def rule_claim_no_show(self, pick="st_pick", who="st_account"):
        job = self._pick_job(pick, lambda j: j.accepted and not j.revealed)
        if job is not None:
            self._claim_no_show(job, self.tracked[who])

    def _claim_no_show(self, job, sender):
        tx, outcome = self._act(
            "claimNoShow",
            self.escrow.claimNoShow,
            job.id,
            sender=sender,
            model=lambda ts: self.model.claim_no_show(job.id, ts),
        )
        self._after_settle(job, outcome, tx)

    def rule_cancel(self, pick="st_pick", by_renter="st_bool"):
        job = self._pick_job(pick, lambda j: j.accepted < j.replicas)
        if job is not None:
            self._cancel(job, job.renter if by_renter else self.providers[job.id % 5])

    def _cancel(self, job, sender):
        tx, _ = self._act(
            "cancel",
            self.escrow.cancel,
            job.id,
            sender=sender,
            model=lambda ts: self.model.cancel(job.id, sender, ts),
        )
        if tx is not None:
            assert "ReplicaSlashed" not in tx.events
            self.stats["cancelled"] += 1
            self._check_job(job)

    def rule_withdraw(self, who="st_account"):
        credited = [a for a in self.tracked if self.model.credits[a]]
        account = credited[who % len(credited)] if credited and who != 7 else self.tracked[who]
        tx, _ = self._act(
            "withdraw",
            self.escrow.withdraw,
            sender=account,
            model=lambda ts: self.model.withdraw(account),
        )
        if tx is not None:
            self.stats["withdrawn"] += 1

    def rule_advance(self, seed="st_seed"):
        """Take a live job (or a new one) through its next natural steps.

        Accept, commit, reveal, then confirm, dispute, claim a no-show or finalize:
        whatever the model says comes next at the current time, checked like any rule.
        One `seed` drives every choice: hypothesis favours rules with fewer arguments,
        and this rule is the one that carries jobs to settlement.
        """
        pick, steps, who, label = seed % 251, 1 + seed // 251 % 4, seed // 1004 % 5, seed % 4
        job = self._pick_job(pick)
        if job is None or not job.live:
            self._fund(self.renters[seed % 2], 1 + who % 3, [], PRICES[pick % 3], 150)
            job = self.model.jobs.get(len(self.model.jobs))
        for _ in range(steps):
            if job is None or not job.live:
                return
            self._advance(job, who, label)

    def _advance(self, job, who, label):
        now = chain.time()
        empty = [s for s in job.slots if s.state == NONE]
        accepted = [s for s in job.slots if s.state == ACCEPTED]
        committed = [s for s in job.slots if s.state == COMMITTED]
        if empty and now < job.accept_by:
            waiting = [s.provider for s in empty if s.provider]
            taken = {s.provider for s in job.slots}
            free = [p for p in self.providers if p not in taken]
            choices = waiting or free or self.providers
            self._accept(job, choices[(who + job.accepted) % len(choices)])
        elif accepted and now <= job.deadline:
            self._commit(job, accepted[0].provider, LABELS[(label + job.committed) % 4])
        elif committed and now <= job.deadline + REVEAL:
            self._reveal(job, committed[0].provider, committed[0].committed)
        elif job.revealed == job.replicas == 1 and who % 2 == 0 and now < job.challenge_ends:
            verifiers = [p for p in self.providers if p != job.slots[0].provider][who : who + 2]
            self._dispute(job, now + ACCEPT + 200, verifiers if who < 2 else [])
        elif job.revealed == job.replicas:
            self._confirm(job, job.renter)
        elif job.accepted and not job.revealed and job.status == FUNDED and who % 2:
            self._claim_no_show(job, self.providers[who])
        else:
            ready_at = self.model.finalizable_at(job)
            if now <= ready_at and who % 2:
                chain.sleep(ready_at - now + 1 + label)  # wait out the job's windows
            self._finalize(job, self.providers[who])

    # --------------------------------------------------------------- registry rules

    def rule_stake(self, who="st_provider", amount="st_amount"):
        provider, value = self.providers[who], STAKE_AMOUNTS[amount]
        self._act(
            "stake",
            self.registry.stake,
            value,
            sender=provider,
            model=lambda ts: self.model.stake(provider, value),
        )

    def rule_request_unstake(self, who="st_provider", amount="st_amount", cancel="st_bool"):
        provider, value = self.providers[who], STAKE_AMOUNTS[amount]
        if cancel and amount == 0:
            self._act(
                "cancelUnstake",
                self.registry.cancelUnstake,
                sender=provider,
                model=lambda ts: self.model.cancel_unstake(provider),
            )
            return
        self._act(
            "requestUnstake",
            self.registry.requestUnstake,
            value,
            sender=provider,
            model=lambda ts: self.model.request_unstake(provider, value, ts),
        )

    def rule_withdraw_unstaked(self, who="st_provider"):
        provider = self.providers[who]
        self._act(
            "withdrawUnstaked",
            self.registry.withdrawUnstaked,
            sender=provider,
            model=lambda ts: self.model.withdraw_unstaked(provider, ts),
        )

    # --------------------------------------------------------------------- time

    def rule_sleep(self, seconds="st_sleep"):
        chain.sleep(SLEEPS[seconds])
        chain.mine()

    # --------------------------------------------------------------- invariants

    def invariant(self):
        snap = self._read()
        model = self.model
        assert snap["supply"] == PARAMS.supply
        # chain-only conservation
        assert snap["escrowBalance"] == snap["liveDeposits"] + sum(snap["credits"])
        assert snap["registryBalance"] == sum(snap["staked"])
        for staked, locked, unbonding in zip(
            snap["staked"], snap["locked"], snap["unbonding"], strict=True
        ):
            assert locked + unbonding <= staked
        # chain equals model
        assert snap["escrowBalance"] == model.escrow_balance
        assert snap["registryBalance"] == model.registry_balance
        assert snap["liveDeposits"] == model.live_deposits()
        for i, account in enumerate(self.tracked):
            assert snap["balances"][i] == model.balances[account], f"balance of {account}"
            assert snap["credits"][i] == model.credits[account], f"credit of {account}"
            if account in model.stakes:
                assert [snap["staked"][i], snap["locked"][i], snap["unbonding"][i]] == (
                    model.stakes[account][:3]
                ), f"stake of {account}"
        self._check_storage_invariant(snap["storage"])


@pytest.fixture(scope="module")
def reader(module_isolation, deployer):
    """Reads the job escrow, registry and storage escrow in one call."""
    return StorageStateReader.deploy({"from": deployer})


def test_random_sequences_conserve_tokens_and_slash_only_the_faulty(
    state_machine,
    token,
    escrow,
    registry,
    reader,
    renter,
    renter2,
    providers,
    treasury,
    storage,
    deployer,
):
    state_machine(
        EscrowMachine,
        token,
        escrow,
        registry,
        reader,
        [renter, renter2],
        providers,
        treasury,
        (storage, deployer),
        settings={
            "max_examples": int(os.environ.get("DCLOUD_STATEFUL_EXAMPLES", 50)),
            "stateful_step_count": int(os.environ.get("DCLOUD_STATEFUL_STEPS", 40)),
            "deadline": None,
            "derandomize": True,
            "database": None,
        },
    )
