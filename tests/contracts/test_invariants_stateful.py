"""Stateful test: honest and adversarial actors drive both escrows and the registry.

Two renters, eight providers with fixed roles (``adversaries.py``: honest, silent,
junk, copier) and the matcher fund, accept, commit, reveal, confirm, finalize,
dispute, claim no-shows, cancel, withdraw, stake, unstake, change the fee and travel
in time, in random order and often at the wrong moment; storage deals are opened,
accepted, challenged, answered (or not), slashed, settled and cancelled among them
(``test_storage_escrow_stateful.py``), locking collateral in the same registry, and
so are leases of services paid by the second (``test_lease_stateful.py``): renters
closing at odd times, providers that never serve or walk away, and a prober that lies
by never reporting some services that came up.

Attacks tried: a renter funds a replicated job, or disputes, with providers it
picked itself (self-signed, unsigned, a matcher signature for another list, renter
or job, or an expired one): the escrow must refuse, as it must a matcher signature
that names the renter or the original as a voter. A copying provider reads the other
slots from chain before it commits: while it can still commit it must find only
commitments, never a result hash; it commits its own commitment to what it read, or
the other's digest verbatim and later replays the other's public reveal (refused: a
commitment binds its sender). Silent co-replicas and verifiers accept and vanish;
junk providers agree on a wrong hash (and sometimes reveal what they did not
commit).

Assumption (the design's): the matcher draws at most a minority of dishonest
providers per vote (fewer than half of a replicated job's providers; at most one
dishonest among a dispute's original and two verifiers), and only honest providers
that can lock the collateral. Honest providers are live: they accept the matcher's
assignment at once, commit the true result as soon as they hold a slot and reveal
it as soon as the escrow allows; they watch the chain between steps, and every time
jump in this test stops at the moments a reveal opens (``_sleep``).

Each transaction's outcome (success, or the custom error it reverts with) is
predicted by a Python model of the rules in JobEscrow's, JobAssignments' and
StorageEscrow's docstrings, at the timestamp of the block it was mined in; on
success the model applies the same effects. After every step:

- the token supply is unchanged, and the balances of every holder (accounts and
  contracts) add up to it;
- the job escrow holds exactly the deposits of live jobs (bonds included) plus all
  credits, the storage escrow the unpaid epochs of live deals plus its credits, the
  lease escrow the unpaid deposits of live leases plus its credits, and the registry
  the providers' stake;
- each provider's locked stake is the collateral of its live accepted job replicas,
  its active deals and its running leases, and ``lockedBy`` splits it per escrow
  exactly so;
- every balance, credit and stake equals the model's, so nobody's balance or credit
  moves except by the amounts the rules name;
- no honest provider has missed a window.

At each settlement: no honest provider is slashed, and every honest provider that
committed the true result is Paid (it is never Released: that needs a dissent no
majority backs, which an honest minority of voters cannot produce; nor cancelled: a
job cannot be cancelled once anyone committed, and honest providers commit at
once); the deposit splits exactly into payments, fees and the renter's refund, so
the renter gets back more than it paid only through a provider slashed to it.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections import Counter
from typing import Any, ClassVar

import pytest
import requests
import test_storage_escrow_stateful as storage_rules
from adversaries import (
    COPIER,
    HONEST,
    JUNK,
    SILENT,
    SYBIL_FORMS,
    Matcher,
    Signed,
    dispute_message,
    fund_message,
    junk_result,
    true_result,
    unsigned,
)
from brownie import StorageStateReader, accounts, chain, web3
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
    PROVIDER_TOKENS,
    RELEASED,
    REVEALED,
    SETTLED,
    SLASHED,
    SPEC,
    STAKE,
    TOKEN,
    ZERO_ADDRESS,
    Revert,
    commitment,
    need,
    plain,
    result_hash,
    salt_for,
)
from test_lease_stateful import LEASE_PATHS, LEASE_RARE_PATHS, LeaseModel, LeaseRules
from test_storage_escrow_stateful import STORAGE_PATHS, StorageModel, StorageRules

ACCEPT, REVEAL, CHALLENGE = PARAMS.accept_window, PARAMS.reveal_window, PARAMS.challenge_window
MAX_RUN_TIME = 7 * 86_400
MAX_HOLD = 2 * 86_400
MAX_BATCH = 100
HOLDS = [30, 90, 600, 0, -50, MAX_HOLD + 60]  # seconds from now to a job's start
MAX_FEE_BPS = 1_000
PRICES = [1 * TOKEN, 10 * TOKEN, 40 * TOKEN]
DEADLINE_EXTRAS = [150, 30, 300, -5]  # seconds after acceptBy; -5 is too soon
SLEEPS = [3, 40, 110, 250, 520, 1_100]
STAKE_AMOUNTS = [1 * TOKEN, 50 * TOKEN, 300 * TOKEN, 950 * TOKEN]
FEES = [200, 0, 1_000, 37, 1_001]  # bps; 1 001 is over the cap
ZERO_HASH = bytes(32)
# Roles of the eight providers: conftest's five, then three more accounts.
ROLES = [HONEST, HONEST, SILENT, JUNK, HONEST, HONEST, JUNK, COPIER]
EXTRA_KEYS = [
    web3.keccak(text=f"dcloud stateful provider {i}").hex().removeprefix("0x") for i in range(3)
]


def events(tx: Any, name: str) -> list[Any]:
    """Every `name` event of a receipt (none for a reverted call)."""
    return list(tx.events[name]) if tx is not None and name in tx.events else []


@dataclasses.dataclass
class Slot:
    provider: str | None = None
    state: int = NONE
    result: bytes | None = None  # the hash behind the commitment
    hash: bytes = ZERO_HASH  # what getReplica shows: the commitment, then the revealed hash
    copied_from: str | None = None  # a copier's verbatim source


@dataclasses.dataclass
class Job:
    id: int
    renter: str
    price: int
    collateral: int
    fee_bps: int
    replicas: int
    open: bool
    accept_by: int
    deadline: int
    slots: list[Slot]
    truth: bytes
    challenge_ends: int = 0
    accepted: int = 0
    committed: int = 0
    revealed: int = 0
    status: int = FUNDED

    @property
    def live(self) -> bool:
        return self.status in (FUNDED, DISPUTED)

    @property
    def deposit(self) -> int:
        return self.price * self.replicas  # a dispute's bond included


class Model(StorageModel, LeaseModel):
    """The protocol's rules as JobEscrow's and ProviderRegistry's docs state them
    (StorageEscrow's come from `StorageModel`, LeaseEscrow's from `LeaseModel`).

    Every operation first checks, in the contract's order (raising `Revert` without
    touching state), then applies.
    """

    def __init__(
        self,
        *,
        balances: dict[str, int],
        stakes: dict[str, list[int]],
        treasury: str,
        owner: str,
        auditor: str,
        prober: str,
    ):
        self.balances = balances
        self.credits: dict[str, int] = dict.fromkeys(balances, 0)
        self.stakes = stakes  # provider -> [staked, locked, unbonding, readyAt]
        self.treasury = treasury
        self.owner = owner
        self.fee_bps = PARAMS.fee_bps
        self.jobs: dict[int, Job] = {}
        self.escrow_balance = 0
        self.registry_balance = sum(s[0] for s in stakes.values())
        self._init_storage(auditor)
        self._init_leases(prober)

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

    def can_lock(self, provider: str, amount: int) -> bool:
        try:
            self._check_lock(provider, amount)
        except Revert:
            return False
        return True

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
            elif account == "leases":
                self.lease_balance += delta
            else:
                self.balances[account] += delta
        assert min(self.registry_balance, self.escrow_balance, self.storage_balance) >= 0
        assert self.lease_balance >= 0
        assert min(self.balances.values()) >= 0

    def job_locked(self, provider: str) -> int:
        """Collateral of `provider`'s accepted replicas of live jobs."""
        return sum(
            job.collateral
            for job in self.jobs.values()
            if job.live
            for slot in job.slots
            if slot.provider == provider and slot.state in (ACCEPTED, COMMITTED, REVEALED)
        )

    def deal_locked(self, provider: str) -> int:
        """Collateral of `provider`'s active storage deals."""
        return sum(
            d.collateral
            for d in self.deals.values()
            if d.node == provider and d.status == storage_rules.DEAL_ACTIVE
        )

    # -------------------------------------------------------------------- escrow

    def set_fee(self, sender: str, fee_bps: int) -> None:
        need(sender == self.owner, "AccessControlUnauthorizedAccount")
        need(fee_bps <= MAX_FEE_BPS, "EscrowFeeTooHigh")
        self.fee_bps = fee_bps

    def _live(self, job_id: int) -> Job:
        job = self.jobs.get(job_id)
        need(job is not None and job.live, "EscrowJobNotLive")
        assert job is not None
        return job

    @staticmethod
    def _check_signed(signed: Signed, message: tuple[Any, ...], ts: int) -> None:
        """JobAssignments: unexpired, and the matcher signed exactly this message."""
        need(ts <= signed.expires, "EscrowAssignmentExpired")
        need(signed.signer == "matcher" and signed.message == message, "EscrowNotMatcherSigned")

    def fund(
        self,
        renter: str,
        price: int,
        deadline: int,
        replicas: int,
        signed: Signed,
        ts: int,
        start_at: int = 0,
    ) -> int:
        need(price > 0, "EscrowZeroPrice")
        need(1 <= replicas <= 5, "EscrowBadReplicas")
        start = ts
        if start_at > ts:  # held: nobody accepts before its start
            need(start_at <= ts + MAX_HOLD, "EscrowStartTooLate")
            start = start_at
        accept_by = start + ACCEPT
        need(deadline > accept_by, "EscrowDeadlineTooSoon")
        need(deadline - accept_by <= MAX_RUN_TIME, "EscrowDeadlineTooLate")
        named = list(signed.providers)
        if replicas != 1:
            need(len(named) == replicas, "EscrowBadProviders")
            self._check_signed(signed, fund_message(renter, named), ts)
        else:
            need(len(named) <= 1, "EscrowBadProviders")
        for i, provider in enumerate(named):
            need(provider != ZERO_ADDRESS, "EscrowBadProvider")
            need(replicas == 1 or provider != renter, "EscrowBadProvider")
            need(provider not in named[:i], "EscrowBadProvider")
        need(self.balances[renter] >= price * replicas, "ERC20InsufficientBalance")
        job_id = len(self.jobs) + 1
        self.jobs[job_id] = Job(
            id=job_id,
            renter=renter,
            price=price,
            collateral=price * PARAMS.collateral_bps // 10_000,
            fee_bps=self.fee_bps,
            replicas=replicas,
            open=not named,
            accept_by=accept_by,
            deadline=deadline,
            slots=[Slot(provider=named[i] if named else None) for i in range(replicas)],
            truth=true_result(job_id),
        )
        self._move(renter, "escrow", price * replicas)
        return job_id

    def accept(self, job_id: int, provider: str, ts: int, *, lock: bool = True) -> int:
        """Takes a slot; locks the collateral unless `lock` is false (a batch locks the
        sum once). Returns the collateral."""
        job = self._live(job_id)
        need(ts <= job.accept_by, "EscrowWindowClosed")
        need(ts >= job.accept_by - ACCEPT, "EscrowNotStarted")
        slot = None
        for candidate in job.slots:
            if candidate.provider == provider:
                need(candidate.state == NONE, "EscrowAlreadyAccepted")
                slot = candidate
                break
        if slot is None and job.open:
            slot = next((s for s in job.slots if s.provider is None), None)
        need(slot is not None, "EscrowNoSlotFor")
        if lock:
            self._check_lock(provider, job.collateral)
        assert slot is not None
        slot.provider, slot.state = provider, ACCEPTED
        job.accepted += 1
        if lock:
            self.stakes[provider][1] += job.collateral
        return job.collateral

    # batched forms: all or nothing, so a refused job leaves the model as it was

    def _atomic(self, apply: Any) -> Any:
        jobs = dict(self.jobs)
        saved = {i: copy.deepcopy(j.__dict__) for i, j in jobs.items()}
        held = copy.deepcopy((self.balances, self.credits, self.stakes))
        totals = (self.escrow_balance, self.registry_balance)
        try:
            return apply()
        except Revert:
            self.jobs.clear()
            self.jobs.update(jobs)
            for job_id, fields in saved.items():
                jobs[job_id].__dict__.update(fields)
            for current, before in zip(
                (self.balances, self.credits, self.stakes), held, strict=True
            ):
                current.clear()
                current.update(before)
            self.escrow_balance, self.registry_balance = totals
            raise

    @staticmethod
    def _batch(size: int, *others: int) -> None:
        need(size != 0, "EscrowEmptyBatch")
        need(size <= MAX_BATCH, "EscrowBatchTooLarge")
        for other in others:
            need(other == size, "EscrowBatchLengthMismatch")

    def fund_many(self, renter: str, requests: list[tuple[Any, ...]], ts: int) -> int:
        """`requests`: (price, start_at, deadline, replicas, signed) per job."""
        self._batch(len(requests))

        def apply() -> int:
            ids = [
                self.fund(renter, price, deadline, replicas, signed, ts, start_at)
                for price, start_at, deadline, replicas, signed in requests
            ]
            return ids[0]

        return int(self._atomic(apply))

    def accept_many(self, job_ids: list[int], provider: str, ts: int) -> None:
        self._batch(len(job_ids))

        def apply() -> None:
            total = sum(self.accept(i, provider, ts, lock=False) for i in job_ids)
            self._check_lock(provider, total)
            self.stakes[provider][1] += total

        self._atomic(apply)

    def commit_many(
        self, job_ids: list[int], provider: str, digests: list[bytes], results: list[bytes], ts: int
    ) -> None:
        self._batch(len(job_ids), len(digests))
        self._atomic(
            lambda: [
                self.commit(i, provider, d, r, ts)
                for i, d, r in zip(job_ids, digests, results, strict=True)
            ]
        )

    def reveal_many(
        self, job_ids: list[int], provider: str, results: list[bytes], salts: int, ts: int
    ) -> None:
        self._batch(len(job_ids), len(results), salts)
        self._atomic(
            lambda: [
                self.reveal(i, provider, r, salt_for(provider), ts)
                for i, r in zip(job_ids, results, strict=True)
            ]
        )

    def _slot_of(self, job: Job, provider: str, state: int) -> Slot:
        for slot in job.slots:
            if slot.provider == provider and slot.state != NONE:
                need(slot.state == state, "EscrowWrongReplicaState")
                return slot
        raise Revert("EscrowNotProvider")

    def commit(
        self, job_id: int, provider: str, digest: bytes, result: bytes | None, ts: int
    ) -> None:
        """`digest` is what `provider` sends; `result` the hash behind it, if it knows one."""
        job = self._live(job_id)
        need(ts <= job.deadline, "EscrowWindowClosed")
        slot = self._slot_of(job, provider, ACCEPTED)
        slot.state, slot.result, slot.hash = COMMITTED, result, digest
        job.committed += 1
        if job.replicas == 1:
            job.challenge_ends = ts + CHALLENGE

    @staticmethod
    def reveal_open(job: Job, ts: int) -> bool:
        """No more commits can come: all slots, or all accepted ones, committed, or too late."""
        return (
            job.committed == job.replicas
            or (ts > job.accept_by and job.committed == job.accepted)
            or ts > job.deadline
        )

    @staticmethod
    def all_revealed(job: Job, ts: int) -> bool:
        return job.revealed == job.replicas or (
            job.revealed == job.accepted and job.revealed != 0 and ts > job.accept_by
        )

    def reveal(self, job_id: int, provider: str, result: bytes, salt: bytes, ts: int) -> None:
        job = self._live(job_id)
        need(ts <= job.deadline + REVEAL, "EscrowWindowClosed")
        need(job.replicas != 1, "EscrowResultHidden")
        need(self.reveal_open(job, ts), "EscrowRevealTooEarly")
        slot = self._slot_of(job, provider, COMMITTED)
        need(
            commitment(result, salt_for(provider), provider) == slot.hash,
            "EscrowCommitmentMismatch",
        )
        slot.state, slot.hash = REVEALED, result
        job.revealed += 1
        if self.all_revealed(job, ts):
            job.challenge_ends = ts + CHALLENGE

    def confirm(self, job_id: int, sender: str, ts: int) -> dict[str, Any]:
        job = self._live(job_id)
        need(sender == job.renter, "EscrowNotRenter")
        if job.replicas == 1:
            need(job.committed == 1, "EscrowNotCommitted")
        else:
            need(self.all_revealed(job, ts), "EscrowNotAllRevealed")
        return self._settle(job)

    def dispute(self, job_id: int, sender: str, signed: Signed, ts: int) -> None:
        job = self._live(job_id)
        need(sender == job.renter, "EscrowNotRenter")
        need(job.replicas == 1 and job.committed == 1, "EscrowNotDisputable")
        need(ts <= job.challenge_ends, "EscrowWindowClosed")
        verifiers = list(signed.providers)
        need(len(verifiers) == 2, "EscrowBadProviders")
        self._check_signed(signed, dispute_message(job_id, verifiers), ts)
        original = job.slots[0].provider
        for i, verifier in enumerate(verifiers):
            bad = verifier in (ZERO_ADDRESS, original, sender) or (
                i == 1 and verifier == verifiers[0]
            )
            need(not bad, "EscrowBadProvider")
        bond = 2 * job.price
        need(self.balances[sender] >= bond, "ERC20InsufficientBalance")
        job.slots += [Slot(provider=v) for v in verifiers]
        job.replicas = 3
        run_time = job.deadline - job.accept_by
        job.accept_by = ts + ACCEPT
        job.deadline = job.accept_by + run_time
        job.challenge_ends, job.open, job.status = 0, False, DISPUTED
        self._move(sender, "escrow", bond)

    def cancel(self, job_id: int, sender: str, ts: int) -> None:
        job = self._live(job_id)
        need(job.status == FUNDED and job.committed == 0, "EscrowNotCancellable")
        early = job.accepted == 0 and sender == job.renter
        lapsed = (
            ts > job.accept_by
            and job.accepted < job.replicas
            and (job.accepted == 0 or ts <= job.deadline)
        )
        need(early or lapsed, "EscrowNotCancellable")
        job.status = CANCELLED
        for slot in job.slots:
            assert slot.state in (NONE, ACCEPTED), "model: cancelled a committed replica"
            if slot.state != NONE:
                slot.state = RELEASED
                self._unlock(slot.provider, job.collateral)
        self.credits[job.renter] += job.deposit

    def claim_no_show(self, job_id: int, ts: int) -> dict[str, Any]:
        job = self._live(job_id)
        if job.committed == 0:
            too_late = ts > job.deadline
        else:
            too_late = job.replicas != 1 and ts > job.deadline + REVEAL
        need(job.accepted != 0 and job.revealed == 0 and too_late, "EscrowNotNoShow")
        return self._settle(job)

    @staticmethod
    def finalizable_at(job: Job) -> int:
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
    def majority(job: Job) -> tuple[bytes | None, bool]:
        """(winner, by default): the hash revealed by a strict majority of the accepted
        replicas; without one, in a dispute, the original's revealed hash."""
        if job.replicas == 1:
            return None, False
        votes = Counter(s.hash for s in job.slots if s.state == REVEALED)
        for value, count in votes.items():
            if 2 * count > job.accepted:
                return value, False
        if job.status == DISPUTED and job.slots[0].state == REVEALED:
            return job.slots[0].hash, True
        return None, False

    def _settle(self, job: Job) -> dict[str, Any]:
        """Pays the winners (or everyone who delivered), slashes the proven wrong and
        the silent, releases a dispute's unbacked dissent, refunds the rest."""
        winner, by_default = self.majority(job)
        hidden = job.replicas == 1
        fee = job.price * job.fee_bps // 10_000
        refund = fees = 0
        outcome: dict[str, Any] = {"job": job.id, "paid": [], "slashed": [], "released": []}
        for slot in job.slots:
            if slot.state == NONE:
                refund += job.price
                continue
            delivered = slot.state == REVEALED or (hidden and slot.state == COMMITTED)
            if delivered and (hidden or winner is None or slot.hash == winner):
                slot.state = PAID
                self.credits[slot.provider] += job.price - fee
                fees += fee
                outcome["paid"].append(slot.provider)
                self._unlock(slot.provider, job.collateral)
            elif delivered and by_default:
                slot.state = RELEASED
                refund += job.price
                outcome["released"].append(slot.provider)
                self._unlock(slot.provider, job.collateral)
            else:
                slot.state = SLASHED
                refund += job.price
                outcome["slashed"].append(slot.provider)
                self._slash(slot.provider, job.collateral, job.renter)
        job.status = SETTLED
        self.credits[job.renter] += refund
        self.credits[self.treasury] += fees
        outcome["refund"] = refund
        return outcome

    def live_deposits(self) -> int:
        return sum(j.deposit for j in self.jobs.values() if j.live)


class _HonestClock:
    """brownie's `chain` for the storage rules, except that time never skips a moment
    an honest provider must act in: sleeping stops there, and a long run of blocks
    (which may move the clock a second each) is mined in short stretches."""

    STRETCH = 16  # blocks, so seconds at most: far inside the reveal window

    def __init__(self, machine: EscrowMachine) -> None:
        self._machine = machine

    def sleep(self, seconds: int) -> None:
        self._machine._sleep(seconds)

    def mine(self, blocks: int = 1, **kwargs: Any) -> int:
        if kwargs or blocks <= self.STRETCH:
            return chain.mine(blocks, **kwargs)
        while blocks > 0:
            height = chain.mine(min(blocks, self.STRETCH))
            blocks -= self.STRETCH
            self._machine._honest_react()
        return height

    def __getattr__(self, name: str) -> Any:
        return getattr(chain, name)


class EscrowMachine(StorageRules, LeaseRules):
    st_pick = strategy("uint16")
    st_provider = strategy("uint8", max_value=len(ROLES) - 1)
    st_account = strategy("uint8", max_value=len(ROLES) + 2)
    st_sleep = strategy("uint8", max_value=len(SLEEPS) - 1)
    st_amount = strategy("uint8", max_value=len(STAKE_AMOUNTS) - 1)
    st_op = strategy("uint8", max_value=3)
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
        owner,
        others,
        storage,
        leases,
    ):
        cls.token, cls.escrow, cls.registry, cls.reader = token, escrow, registry, reader
        cls.renters = [str(a) for a in renters]
        cls.providers = [str(a) for a in providers]
        cls.roles = dict(zip(cls.providers, ROLES, strict=True))
        cls.honest = [p for p in cls.providers if cls.roles[p] == HONEST]
        cls.treasury, cls.owner = str(treasury), str(owner)
        cls.tracked = [*cls.renters, *cls.providers, cls.treasury]
        # every other token holder (deployer, outsider, sale, faucet) takes no part: what
        # they hold at the start, with what the tracked accounts and contracts hold, is
        # the whole supply, and stays so
        cls.others_hold = sum(int(token.balanceOf(a)) for a in others)
        cls.matcher = Matcher(escrow, cls.roles)
        cls.stats = Counter()
        StorageRules._init_storage_rules(cls, *storage)
        LeaseRules._init_lease_rules(cls, *leases)

    def setup(self):
        self._reacting = False
        self._changes, self._checked = 0, -1  # successful transactions; as of the last check
        self._last_error: str | None = None
        self.disputed: set[int] = set()
        snap, _ = self._read()
        self.model = Model(
            balances=dict(zip(self.tracked, snap["balances"], strict=True)),
            stakes={p: [snap["staked"][i], 0, 0, 0] for i, p in enumerate(self.providers, 2)},
            treasury=self.treasury,
            owner=self.owner,
            auditor=self.auditor,
            prober=self.prober,
        )
        self.model.escrow_balance = snap["escrowBalance"]
        self.model.storage_balance = snap["storage"]["balance"]
        self.model.registry_balance = snap["registryBalance"]
        self.model.lease_balance = snap["leases"]["balance"]

    def teardown_final(cls):  # noqa: N805
        print(f"\nstateful run: {dict(sorted(cls.stats.items()))}")
        if getattr(cls, "_failed", False):
            return  # keep the failing step's error, not a coverage complaint
        # the run must reach the interesting paths and attacks, or it proves little
        paths = (
            "settled",
            "paid",
            "slashed",
            "cancelled",
            "disputed",
            "withdrawn",
            "honest:paid",
            "honest:paid-after-dispute",
            "slashed:junk",
            "slashed:silent",
            "sybil:fund-refused",
            "sybil:dispute-refused",
            "copy:read-commitments",
            *STORAGE_PATHS,
            *LEASE_PATHS,
        )
        # the reduced run (Ganache, DCLOUD_STATEFUL_EXAMPLES below full size) reaches the
        # rarest lease endings too seldom to demand them; the full-size run (anvil) must
        full = int(os.environ.get("DCLOUD_STATEFUL_EXAMPLES", 50)) >= 50
        for path in paths:
            if not full and path in LEASE_RARE_PATHS:
                continue
            assert cls.stats[path] > 0, f"no '{path}' in the whole stateful run"

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _calls(calls: list[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
        """Run the view calls `(method, args)` in one JSON-RPC batch; decoded results.

        One round trip instead of one per call: the checks read a few dozen values per
        step, and the run's time goes mostly into round trips."""
        payload = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [{"to": fn._address, "data": fn.encode_input(*args)}, "latest"],
            }
            for i, (fn, args) in enumerate(calls)
        ]
        reply = requests.post(web3.provider.endpoint_uri, json=payload, timeout=60).json()
        results = {r["id"]: r for r in reply}
        out = []
        for i, (fn, args) in enumerate(calls):
            assert "result" in results[i], f"{fn._name}{args}: {results[i].get('error')}"
            out.append(fn.decode_output(results[i]["result"]))
        return out

    def _read(self) -> tuple[dict[str, Any], list[tuple[int, ...]]]:
        """Job escrow and registry state (the storage escrow's under "storage", the lease
        escrow's under "leases"), and lockedBy(escrow, p) of the job, storage and lease
        escrows per provider."""
        by = self.registry.lockedBy
        escrows = (self.escrow, self.storage, self.leases)
        lease_reads = self._lease_reads()
        reads = self._calls(
            [
                (
                    self.reader.read,
                    (self.token, self.escrow, self.registry, self.storage, self.tracked),
                ),
                *((by, (slasher, provider)) for provider in self.providers for slasher in escrows),
                *lease_reads,
            ]
        )
        lease_part = reads[len(reads) - len(lease_reads) :]
        reads = reads[: len(reads) - len(lease_reads)]
        jobs, storage = reads[0]
        snap = {
            key: [int(v) for v in value] if isinstance(value, list | tuple) else int(value)
            for key, value in jobs.dict().items()
        }
        snap["storage"] = self._storage_snapshot(storage)
        snap["leases"] = self._lease_snapshot(lease_part)
        locks = [int(v) for v in reads[1:]]
        return snap, list(zip(locks[::3], locks[1::3], locks[2::3], strict=True))

    def _replicas(self, job: Job) -> list[tuple[str, int, bytes]]:
        """Every slot of `job` as getReplica shows it: (provider, state, hash)."""
        fn = self.escrow.getReplica
        return [plain(r) for r in self._calls([(fn, (job.id, i)) for i in range(len(job.slots))])]

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
        """Run `fn` on chain and `model(ts)` in the model; both must agree on the outcome.
        After a success the honest providers react to the new state."""
        ts, error, tx = self._send(fn, *args, sender=sender)
        try:
            result = model(ts)
            expected = None
        except Revert as revert:
            result, expected = None, revert.name
        assert error == expected, f"{name}{args}: chain says {error}, model says {expected}"
        self.stats[f"{name}:{'ok' if error is None else error}"] += 1
        self._last_error = error
        if tx is not None:
            self._changes += 1
            self._honest_react()
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

    def _role(self, account: str | None) -> str | None:
        return self.roles.get(account) if account else None

    def _check_job(self, job: Job) -> list[tuple[str, int, bytes]]:
        """The job and its slots on chain equal the model's; returns the slots."""
        reads = self._calls(
            [
                (self.escrow.getJob, (job.id,)),
                *((self.escrow.getReplica, (job.id, i)) for i in range(len(job.slots))),
            ]
        )
        on_chain = reads[0].dict()
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
        assert (on_chain["feeBps"], on_chain["collateral"]) == (job.fee_bps, job.collateral)
        replicas = [plain(r) for r in reads[1:]]
        for i, (slot, (provider, state, digest)) in enumerate(
            zip(job.slots, replicas, strict=True)
        ):
            assert state == slot.state, f"job {job.id} slot {i}: {state} != {slot.state}"
            assert digest == slot.hash, f"job {job.id} slot {i}: hash"
            if slot.provider is not None:
                assert provider == slot.provider
        return replicas

    # -------------------------------------------------------------- honest actors

    def _honest_react(self) -> None:
        """Honest providers act on what the chain now allows: commit the true result
        of every slot they hold, reveal it once no more commits can come."""
        if self._reacting:
            return
        self._reacting = True
        try:
            acted = True
            while acted:
                acted = False
                now = chain.time()
                for job in [j for j in self.model.jobs.values() if j.live]:
                    for slot in job.slots:
                        if self._role(slot.provider) != HONEST or not job.live:
                            continue
                        if slot.state == ACCEPTED:
                            tx, _ = self._commit(job, slot.provider, job.truth)
                        elif (
                            slot.state == COMMITTED
                            and job.replicas > 1
                            and self.model.reveal_open(job, now)
                        ):
                            tx, _ = self._reveal(job, slot.provider, job.truth)
                        else:
                            continue
                        assert tx is not None, (
                            f"honest {slot.provider} could not act on job {job.id}"
                        )
                        self.stats["honest:acted"] += 1
                        acted = True
                if self._lease_react():
                    acted = True
        finally:
            self._reacting = False

    def _wakeups(self):
        """When a reveal opens for an honest provider that committed."""
        for job in self.model.jobs.values():
            if (
                job.live
                and job.replicas > 1
                and any(
                    s.state == COMMITTED and self._role(s.provider) == HONEST for s in job.slots
                )
            ):
                if job.committed == job.accepted:
                    yield job.accept_by + 2
                yield job.deadline + 2

    def _sleep(self, seconds: int) -> None:
        """Move time forward, stopping wherever an honest provider may now reveal."""
        target = chain.time() + seconds
        while True:
            self._honest_react()
            now = chain.time()
            wake = min((t for t in self._wakeups() if now < t < target), default=None)
            if wake is None:
                break
            chain.sleep(wake - now)
            chain.mine()
        if target > chain.time():
            chain.sleep(target - chain.time())

    def _check_settlement(self, job: Job, outcome: dict[str, Any], tx) -> None:
        """On chain: honest providers with the true result paid, never slashed; each
        payee paid once; the deposit split exactly into pay, fees and refund."""
        fee = job.price * job.fee_bps // 10_000
        names = {PAID: "paid", SLASHED: "slashed", RELEASED: "released"}
        for slot, (_, state, _) in zip(job.slots, self._check_job(job), strict=True):
            if slot.provider is None or state == NONE:
                continue
            role = self._role(slot.provider)
            self.stats[f"{names[state]}:{role}"] += 1
            if role == HONEST:
                assert state != SLASHED, f"job {job.id}: honest {slot.provider} slashed"
                assert slot.result == job.truth, f"job {job.id}: honest slot never committed"
                assert state == PAID, f"job {job.id}: honest {slot.provider} not paid"
                self.stats["honest:paid"] += 1
                if job.id in self.disputed:
                    self.stats["honest:paid-after-dispute"] += 1
        paid = [
            (e["provider"], int(e["amount"]))
            for e in events(tx, "ReplicaPaid")
            if e["jobId"] == job.id
        ]
        assert sorted(paid) == sorted((p, job.price - fee) for p in outcome["paid"])
        assert len(set(outcome["paid"])) == len(outcome["paid"])
        slashed = [e["provider"] for e in events(tx, "ReplicaSlashed") if e["jobId"] == job.id]
        assert sorted(slashed) == sorted(outcome["slashed"])
        (settled,) = [e for e in events(tx, "JobSettled") if e["jobId"] == job.id]
        refund = int(settled["refund"])
        assert refund == outcome["refund"]
        # every replica's price is paid out (the fee to the treasury) or refunded
        assert refund + sum(a for _, a in paid) + fee * len(paid) == job.deposit
        # so the renter ends up with more than it paid in only through a slash, each
        # of collateral, to the renter
        assert refund <= job.deposit
        cuts = Counter(
            (e["provider"], e["beneficiary"], int(e["amount"]))
            for e in events(tx, "ProviderSlashed")
        )
        for provider in slashed:
            assert cuts[(provider, job.renter, job.collateral)] > 0
        self.stats["settled"] += 1
        self.stats["paid"] += len(paid)
        self.stats["slashed"] += len(slashed)

    def _after_settle(self, job, outcome, tx):
        if outcome is None:
            return
        self._check_settlement(job, outcome, tx)

    # ------------------------------------------------------------ escrow steps

    def _fund(self, renter, replicas, signed, price, extra):
        deadline = chain.time() + ACCEPT + extra
        tx, job_id = self._act(
            "fund",
            self.escrow.fund,
            SPEC,
            0,
            price,
            deadline,
            replicas,
            signed.as_arg(),
            sender=renter,
            model=lambda ts: self.model.fund(renter, price, deadline, replicas, signed, ts),
        )
        if job_id is not None:
            assert self.escrow.jobCount() == job_id
            job = self.model.jobs[job_id]
            if replicas > 1:  # the matcher's honest picks take their slots at once
                for provider in signed.providers:
                    if self._role(provider) == HONEST:
                        self._accept(job, provider, must=True)
            self._check_job(job)
        return tx

    def _accept(self, job, provider, *, must=False):
        tx, _ = self._act(
            "accept",
            self.escrow.accept,
            job.id,
            sender=provider,
            model=lambda ts: self.model.accept(job.id, provider, ts),
        )
        assert tx is not None or not must, f"honest {provider} could not accept job {job.id}"
        if tx is not None:
            self._check_job(job)
        return tx

    def _commit(self, job, provider, result, *, digest=None):
        """Commit `result` (hidden under the provider's salt), or send `digest` as is."""
        if digest is None:
            digest = commitment(result, salt_for(provider), provider)
        return self._act(
            "commit",
            self.escrow.commit,
            job.id,
            digest,
            sender=provider,
            model=lambda ts: self.model.commit(job.id, provider, digest, result, ts),
        )

    def _reveal(self, job, provider, result, *, salt=None):
        salt = salt_for(provider) if salt is None else salt
        return self._act(
            "reveal",
            self.escrow.reveal,
            job.id,
            result,
            salt,
            sender=provider,
            model=lambda ts: self.model.reveal(job.id, provider, result, salt, ts),
        )

    def _holder(self, job, which) -> str:
        """Mostly a provider holding a slot of `job`, sometimes any provider."""
        holders = [s.provider for s in job.slots if s.provider and s.state != NONE]
        return holders[which % len(holders)] if holders and which < 6 else self.providers[which]

    def _play_commit(self, job, provider):
        """`provider` commits what its role commits (a silent one does nothing)."""
        role = self._role(provider)
        if role == HONEST:
            self._commit(job, provider, job.truth)
        elif role == JUNK:
            self._commit(job, provider, junk_result(job.id))
        elif role == COPIER:
            self._copy(job, provider)
        else:
            self.stats["silent:kept-silent"] += 1

    def _play_reveal(self, job, provider, *, forge):
        """`provider` reveals what its role reveals; a dishonest one may `forge`."""
        role = self._role(provider)
        if role == SILENT:
            self.stats["silent:kept-silent"] += 1
            return
        slot = next((s for s in job.slots if s.provider == provider and s.state != NONE), None)
        if slot is not None and slot.copied_from:
            self._replay_reveal(job, provider, slot)
            return
        value = slot.result if slot is not None and slot.result else junk_result(job.id)
        if role == HONEST:
            value = job.truth
        elif forge:
            value = result_hash("forged")  # not what it committed
        self._reveal(job, provider, value)

    def _replay_reveal(self, job, copier, slot):
        """A verbatim copy replays its source's reveal (result and salt, both public once
        the source revealed): the commitment binds its sender, so it never matches."""
        source = next(s for s in job.slots if s.provider == slot.copied_from)
        if source.state == REVEALED:
            tx, _ = self._reveal(job, copier, source.hash, salt=salt_for(source.provider))
            self.stats["copy:replayed-reveal"] += 1
        else:
            tx, _ = self._reveal(job, copier, junk_result(job.id))
        assert tx is None, f"job {job.id}: a copied commitment was revealed"

    def _copy(self, job, copier):
        """The copier reads every other slot from chain and commits what it found.

        While it can still commit (its slot accepted, the deadline not passed) it must
        find only commitments: a reveal is possible only once no commit can come."""
        own = next((s for s in job.slots if s.provider == copier and s.state != NONE), None)
        could_commit = job.live and own is not None and own.state == ACCEPTED
        latest = web3.eth.get_block("latest")["timestamp"]
        commitments, results = [], []
        for slot, (provider, state, digest) in zip(job.slots, self._replicas(job), strict=True):
            if provider == copier:
                continue
            assert (state, digest) == (slot.state, slot.hash)
            if state == COMMITTED:
                assert digest not in (slot.result, job.truth), "a commitment shows its result"
                commitments.append((slot, digest))
            elif state == REVEALED:
                results.append((slot, digest))
            elif state in (NONE, ACCEPTED):
                assert digest == ZERO_HASH
        if could_commit and results:
            assert latest > job.deadline, f"job {job.id}: a result is public before the deadline"
        found = results or commitments
        if not found:
            self.stats["copy:nothing-to-copy"] += 1
            return
        if could_commit and not results:
            self.stats["copy:read-commitments"] += 1
        source, digest = found[0]
        if job.id % 2:  # its own commitment to the value it read
            self._commit(job, copier, digest)
        else:  # the other's digest as is, to replay the other's reveal later
            tx, _ = self._commit(job, copier, None, digest=digest)
            if tx is not None:
                own.copied_from = source.provider
        if could_commit and results:
            assert self._last_error == "EscrowWindowClosed", "a copier committed a revealed result"
            self.stats["copy:too-late"] += 1

    def _matcher_dispute(self, job, seed):
        """The renter disputes with the two verifiers the matcher drew for this job."""
        original = job.slots[0].provider
        drawn = self.matcher.draw(
            2,
            seed=seed,
            exclude=[original],
            dishonest_budget=1 if self._role(original) == HONEST else 0,
            can_lock=lambda p: self.model.can_lock(p, job.collateral),
        )
        if drawn is None:
            self.stats["matcher:declined"] += 1
            return None
        return self._dispute(job, self.matcher.verifiers(job.id, drawn), job.renter)

    def _dispute(self, job, signed, sender):
        tx, _ = self._act(
            "dispute",
            self.escrow.dispute,
            job.id,
            signed.as_arg(),
            sender=sender,
            model=lambda ts: self.model.dispute(job.id, sender, signed, ts),
        )
        if tx is not None:
            self.disputed.add(job.id)
            self.stats["disputed"] += 1
            for verifier in signed.providers:  # honest verifiers take their slots at once
                if self._role(verifier) == HONEST:
                    self._accept(job, verifier, must=True)
            self._check_job(job)
        return tx

    def _confirm(self, job, sender):
        tx, outcome = self._act(
            "confirm",
            self.escrow.confirm,
            job.id,
            sender=sender,
            model=lambda ts: self.model.confirm(job.id, sender, ts),
        )
        self._after_settle(job, outcome, tx)

    def _finalize(self, job, sender):
        tx, outcome = self._act(
            "finalize",
            self.escrow.finalize,
            job.id,
            sender=sender,
            model=lambda ts: self.model.finalize(job.id, ts),
        )
        self._after_settle(job, outcome, tx)

    def _claim_no_show(self, job, sender):
        tx, outcome = self._act(
            "claimNoShow",
            self.escrow.claimNoShow,
            job.id,
            sender=sender,
            model=lambda ts: self.model.claim_no_show(job.id, ts),
        )
        self._after_settle(job, outcome, tx)

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
            for slot in job.slots:  # an honest provider commits at once: never cancelled
                assert self._role(slot.provider) != HONEST or slot.state == NONE
            self.stats["cancelled"] += 1
            self._check_job(job)

    # ------------------------------------------------------------ escrow rules

    def rule_fund(self, seed="st_seed"):
        """A renter funds a job: single replica (open or named by the renter), a
        replicated job the matcher assigned, or with co-replicas of its own choosing."""
        renter = self.renters[seed % 2]
        kind, price = seed // 2 % 8, PRICES[seed // 16 % len(PRICES)]
        extra, rest = DEADLINE_EXTRAS[seed // 48 % len(DEADLINE_EXTRAS)], seed // 192
        if kind <= 1:
            named = [] if kind == 0 else [self.providers[rest % len(self.providers)]]
            if rest % 13 == 12:
                named = self.providers[:2]  # two providers for one replica
            replicas = 6 if rest % 17 == 16 else 1  # 6: more than MAX_REPLICAS
            self._fund(renter, replicas, unsigned(named), price, extra)
            return
        replicas = 2 + rest % 4
        drawn = self.matcher.draw(
            replicas,
            seed=seed,
            dishonest_budget=(replicas - 1) // 2,
            can_lock=lambda p: self.model.can_lock(p, price * PARAMS.collateral_bps // 10_000),
        )
        if kind <= 5:
            if drawn is None:
                self.stats["matcher:declined"] += 1
                return
            self._fund(renter, replicas, self.matcher.assign(renter, drawn), price, extra)
            return
        self._sybil_fund(renter, replicas, price, extra, rest, drawn)

    def _sybil_fund(self, renter, replicas, price, extra, seed, drawn):
        """The renter funds with co-replicas it picked: mostly dishonest, maybe itself."""
        other = self.renters[self.renters[0] == renter]
        dishonest = [p for p in self.providers if self._role(p) != HONEST]
        turn = seed % len(dishonest)
        picks = [*([renter] if seed % 3 == 0 else []), *dishonest[turn:], *dishonest[:turn]]
        picks = [*picks, *self.honest][:replicas]
        form = SYBIL_FORMS[seed // 4 % len(SYBIL_FORMS)]
        if renter in picks and seed % 2:
            form = "careless"  # even the matcher's signature cannot make the renter a voter
        signed = self.matcher.forged_assignment(form, renter, other, picks, drawn or picks[::-1])
        tx = self._fund(renter, replicas, signed, price, extra)
        assert tx is None, f"a renter funded a replicated job with its own picks ({form})"
        self._count_refusal("fund", form)

    def rule_accept(self, pick="st_pick", who="st_provider"):
        job = self._pick_job(pick, lambda j: j.accepted < j.replicas)
        if job is None:
            return
        waiting = [s.provider for s in job.slots if s.provider and s.state == NONE]
        provider = waiting[who % len(waiting)] if waiting and who < 4 else self.providers[who]
        self._accept(job, provider)

    def rule_commit(self, pick="st_pick", who="st_provider"):
        job = self._pick_job(pick, lambda j: any(s.state == ACCEPTED for s in j.slots))
        if job is not None:
            self._play_commit(job, self._holder(job, who))

    def rule_copy(self, pick="st_pick"):
        """The copier tries to copy another provider's result of a job it holds: reads
        the other slots and commits, or replays the reveal its verbatim copy awaits."""
        copier = next(p for p in self.providers if self._role(p) == COPIER)
        slots = [
            (job, slot)
            for job in self.model.jobs.values()
            for slot in job.slots
            if slot.provider == copier and slot.state != NONE
        ]
        held = [(j, s) for j, s in slots if j.live and s.state in (ACCEPTED, COMMITTED)]
        if not (held or slots):
            return
        job, slot = (held or slots)[pick % len(held or slots)]
        if slot.state == COMMITTED and slot.copied_from:
            self._replay_reveal(job, copier, slot)
        else:
            self._copy(job, copier)

    def rule_reveal(self, pick="st_pick", who="st_provider", forge="st_bool"):
        job = self._pick_job(pick, lambda j: any(s.state == COMMITTED for s in j.slots))
        if job is not None:
            self._play_reveal(job, self._holder(job, who), forge=forge and who % 3 == 0)

    def rule_confirm(self, pick="st_pick", by_renter="st_bool"):
        job = self._pick_job(pick, lambda j: j.committed)
        if job is not None:
            sender = job.renter if by_renter else self.renters[self.renters[0] == job.renter]
            self._confirm(job, sender)

    def rule_dispute(self, seed="st_seed"):
        """The renter disputes with the matcher's verifiers, or with its own picks."""
        job = self._pick_job(
            seed % 251,
            lambda j: j.replicas == j.committed == 1 and chain.time() < j.challenge_ends,
        )
        if job is None or seed % 251 % 8 == 6:  # first a job to doubt: one replica, run
            provider = self.providers[seed // 251 % len(self.providers)]
            if (
                self._fund(
                    job.renter if job else self.renters[0], 1, unsigned([provider]), PRICES[1], 150
                )
                is None
            ):
                return
            job = self.model.jobs[len(self.model.jobs)]
            if self._accept(job, provider) is not None:
                self._play_commit(job, provider)
        kind = seed // 251 % 8
        if kind >= 5:
            self._sybil_dispute(job, seed // 2008)
        elif kind:
            self._matcher_dispute(job, seed)
        else:  # the other renter, with verifiers the matcher signed
            verifiers = [p for p in self.honest if p != job.slots[0].provider][:2]
            sender = self.renters[self.renters[0] == job.renter]
            self._dispute(job, self.matcher.verifiers(job.id, verifiers), sender)

    def _sybil_dispute(self, job, seed):
        """The renter disputes with verifiers it picked: mostly dishonest, or itself."""
        original = job.slots[0].provider
        dishonest = [p for p in self.providers if self._role(p) != HONEST and p != original]
        turn = seed % len(dishonest)
        picks = [*dishonest[turn:], *dishonest[:turn]][:2]
        form = SYBIL_FORMS[seed // 5 % len(SYBIL_FORMS)]
        if seed % 5 >= 3:  # the renter, or the original, verifies the dispute
            picks = [job.renter if seed % 5 == 4 else original, picks[0]]
            form = "careless" if seed // 25 % 2 else form
        signed = self.matcher.forged_verifiers(form, job.id, job.id + 1, picks, picks[::-1])
        tx = self._dispute(job, signed, job.renter)
        assert tx is None, f"a renter disputed with verifiers it picked ({form})"
        self._count_refusal("dispute", form)

    # ------------------------------------------------ held starts and batches

    def _fund_later(self, seed):
        """Held starts and batched funding: `fundAt` (now, later, too late), `fundMany` of a
        few single-replica jobs (sometimes one refused, sometimes none), the renter or
        someone else cancelling a held job, or time travel to a held job's start."""
        op, rest = seed % 6, seed // 6
        renter = self.renters[rest % 2]
        now = chain.time()
        if op == 4:
            held = [j for j in self.model.jobs.values() if j.live and j.accept_by - ACCEPT > now]
            if held:
                job = held[rest % len(held)]
                sender = job.renter if rest % 3 else self.providers[job.id % 8]
                self._cancel(job, sender)
            return
        if op == 5:
            held = [j for j in self.model.jobs.values() if j.live and j.accept_by - ACCEPT > now]
            if held:
                job = held[rest % len(held)]
                self._sleep(job.accept_by - ACCEPT - now + rest % 3)
                taken = [s.provider for s in job.slots if s.provider and s.state == NONE]
                self._accept(job, (taken or self.providers)[rest % len(taken or self.providers)])
            return
        count = 1 if op == 0 else rest % 4  # fundMany of none: refused
        requests = []
        for i in range(count):
            part = rest // (7 * (i + 1))
            start_at = max(now + HOLDS[part % len(HOLDS)], 0)
            extra = DEADLINE_EXTRAS[part // 6 % len(DEADLINE_EXTRAS)] if i == 1 else 150
            named = [] if part % 3 == 0 else [self.providers[part % len(self.providers)]]
            price = PRICES[part % len(PRICES)]
            deadline = max(start_at, now) + ACCEPT + extra
            requests.append((price, start_at, deadline, 1, unsigned(named)))
        if op == 0:
            price, start_at, deadline, replicas, signed = requests[0]
            args = (SPEC, 0, price, start_at, deadline, replicas, signed.as_arg())
            tx, job_id = self._act(
                "fundAt",
                self.escrow.fundAt,
                *args,
                sender=renter,
                model=lambda ts: self.model.fund(
                    renter, price, deadline, replicas, signed, ts, start_at
                ),
            )
            ids = [job_id] if tx is not None else []
        else:
            arg = [(SPEC, 0, p, a, d, r, s.as_arg()) for p, a, d, r, s in requests]
            tx, first = self._act(
                "fundMany",
                self.escrow.fundMany,
                arg,
                sender=renter,
                model=lambda ts: self.model.fund_many(renter, requests, ts),
            )
            ids = list(range(first, first + count)) if tx is not None else []
        if tx is not None:
            assert self.escrow.jobCount() == ids[-1]
            held = [e["jobId"] for e in events(tx, "JobHeld")]
            assert held == [i for i in ids if self.model.jobs[i].accept_by - ACCEPT > tx.timestamp]
            self.stats["held:funded"] += len(held)
            for job_id in ids:
                self._check_job(self.model.jobs[job_id])

    def _batch_step(self, seed):
        """A provider's batched steps: `acceptMany` of jobs it may take (sometimes one
        twice, or one it may not), or a dishonest provider's `commitMany` of junk and
        `revealMany` of what it committed (sometimes a job twice, or short arrays)."""
        op, rest = seed % 3, seed // 3
        provider = self.providers[rest % len(self.providers)]
        now = chain.time()
        live = [j for j in self.model.jobs.values() if j.live]
        flaw = rest // 8 % 6  # 0: the same job twice; 1: arrays of different lengths
        if op == 0:

            def takes(job, who):
                return any(
                    s.state == NONE and (s.provider == who or (job.open and not s.provider))
                    for s in job.slots
                )

            # mostly a provider some open window waits for (named, or any for an open job)
            waiting = [
                s.provider or provider
                for j in live
                if j.accept_by - ACCEPT < now < j.accept_by - 2
                for s in j.slots
                if s.state == NONE and (s.provider or j.open)
            ]
            if waiting and flaw != 5:
                provider = waiting[rest % len(waiting)]
            ids = [j.id for j in live if now < j.accept_by - 2 and takes(j, provider)]
            if not ids and flaw != 4:  # windows pass quickly here: fund open jobs to take
                price = PRICES[rest % len(PRICES)]
                deadline = now + ACCEPT + 150
                requests = [(price, 0, deadline, 1, unsigned([]))] * (1 + rest % 3)
                arg = [(SPEC, 0, p, a, d, r, s.as_arg()) for p, a, d, r, s in requests]
                renter = self.renters[rest % 2]
                tx, first = self._act(
                    "fundMany",
                    self.escrow.fundMany,
                    arg,
                    sender=renter,
                    model=lambda ts: self.model.fund_many(renter, requests, ts),
                )
                ids = list(range(first, first + len(requests))) if tx is not None else []
            ids = ids[: 1 + rest % 3]
            if ids and flaw == 0:
                ids.append(ids[0])
            self._act(
                "acceptMany",
                self.escrow.acceptMany,
                ids,
                sender=provider,
                model=lambda ts: self.model.accept_many(ids, provider, ts),
            )
            return
        dishonest = [p for p in self.providers if self._role(p) in (JUNK, COPIER)]
        holding = [
            p
            for p in dishonest
            if any(
                s.provider == p and s.state in (ACCEPTED, COMMITTED) for j in live for s in j.slots
            )
        ]
        pool = holding if holding and flaw != 5 else dishonest
        provider = pool[rest % len(pool)]
        if op == 1:
            jobs = [
                j
                for j in live
                if now < j.deadline - 2
                and any(s.provider == provider and s.state == ACCEPTED for s in j.slots)
            ][:3]
            ids = [j.id for j in jobs]
            results = [junk_result(i) for i in ids]
            digests = [commitment(r, salt_for(provider), provider) for r in results]
            if ids and flaw == 0:
                ids, digests, results = (
                    [*ids, ids[0]],
                    [*digests, digests[0]],
                    [*results, results[0]],
                )
            if ids and flaw == 1:
                digests = digests[:-1]
            self._act(
                "commitMany",
                self.escrow.commitMany,
                ids,
                digests,
                sender=provider,
                model=lambda ts: self.model.commit_many(ids, provider, digests, results, ts),
            )
            return
        slots = [
            (j, s)
            for j in live
            for s in j.slots
            if s.provider == provider
            and s.state == COMMITTED
            and not s.copied_from
            and s.result is not None
            and j.replicas > 1
            and self.model.reveal_open(j, now)
            and now < j.deadline + REVEAL - 2
        ][:3]
        ids = [j.id for j, _ in slots]
        results = [s.result for _, s in slots]
        if ids and flaw == 0:
            ids, results = [*ids, ids[0]], [*results, results[0]]
        salts = [salt_for(provider)] * (len(ids) - (flaw == 1 and bool(ids)))
        self._act(
            "revealMany",
            self.escrow.revealMany,
            ids,
            results,
            salts,
            sender=provider,
            model=lambda ts: self.model.reveal_many(ids, provider, results, len(salts), ts),
        )

    def _count_refusal(self, call, form):
        """Count a refused sybil attempt by the check that refused it."""
        if self._last_error in ("EscrowNotMatcherSigned", "EscrowAssignmentExpired"):
            self.stats[f"sybil:{call}-refused"] += 1
        elif form == "careless" and self._last_error == "EscrowBadProvider":
            self.stats["sybil:careless-matcher-refused"] += 1

    def rule_finalize(self, pick="st_pick", who="st_account"):
        job = self._pick_job(pick, lambda j: chain.time() > self.model.finalizable_at(j))
        if job is not None:
            self._finalize(job, self.tracked[who])

    def rule_finalize_many(self, who="st_account"):
        ids = [*self.model.jobs, *list(self.model.jobs)[:1], len(self.model.jobs) + 1]
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

    def rule_claim_no_show(self, pick="st_pick", who="st_account"):
        job = self._pick_job(pick, lambda j: j.accepted and not j.revealed)
        if job is not None:
            self._claim_no_show(job, self.tracked[who])

    def rule_cancel(self, pick="st_pick", by_renter="st_bool"):
        job = self._pick_job(pick, lambda j: j.accepted < j.replicas)
        if job is not None:
            self._cancel(job, job.renter if by_renter else self.providers[job.id % 8])

    def rule_withdraw(self, who="st_account", storage="st_bool"):
        """An account pulls its credit from the job escrow (or the storage escrow)."""
        credits = self.model.storage_credits if storage else self.model.credits
        credited = [a for a in self.tracked if credits[a]]
        account = credited[who % len(credited)] if credited and who != 7 else self.tracked[who]
        if storage:
            self._storage_withdraw(account)
            return
        tx, _ = self._act(
            "withdraw",
            self.escrow.withdraw,
            sender=account,
            model=lambda ts: self.model.withdraw(account),
        )
        if tx is not None:
            self.stats["withdrawn"] += 1

    def rule_set_fee(self, seed="st_seed"):
        """The owner changes the fee (funded jobs keep theirs); a renter tries to."""
        fee_bps = FEES[seed % len(FEES)]
        sender = self.owner if seed // 5 % 4 else self.renters[0]
        self._act(
            "setFee",
            self.escrow.setFee,
            self.treasury,
            fee_bps,
            sender=sender,
            model=lambda ts: self.model.set_fee(sender, fee_bps),
        )

    def rule_advance(self, seed="st_seed"):
        """Take a live job (or a new one) through its next natural steps.

        Accept, the dishonest providers' commits and reveals (the honest act on their
        own), then confirm, dispute, claim a no-show or finalize: whatever comes next
        at the current time, checked like any rule. One `seed` drives every choice:
        this rule is the one that carries jobs to settlement.
        """
        pick, steps, who = seed % 251, 1 + seed // 251 % 4, seed // 1004 % 8
        job = self._pick_job(pick)
        if job is None or not job.live:
            replicas = 1 + who % 3 if who % 4 else 5
            price = PRICES[pick % len(PRICES)]
            drawn = self.matcher.draw(
                replicas,
                seed=seed,
                dishonest_budget=(replicas - 1) // 2,
                can_lock=lambda p: self.model.can_lock(p, price),
            )
            renter = self.renters[seed % 2]
            if replicas == 1 or drawn is None:
                signed = unsigned([])
                replicas = 1
            else:
                if who % 4 == 1:  # a sybil master tries its own co-replicas first
                    self._sybil_fund(renter, replicas, price, 150, seed // 8032, drawn)
                signed = self.matcher.assign(renter, drawn)
            self._fund(renter, replicas, signed, price, 150)
            job = self.model.jobs.get(len(self.model.jobs))
        for step in range(steps):
            if job is None or not job.live:
                return
            self._advance(job, (who + step) % 8)

    def _advance(self, job, who):
        now = chain.time()
        empty = [s for s in job.slots if s.state == NONE]
        if empty and now < job.accept_by - 2 and who % 4 != 3:
            waiting = [s.provider for s in empty if s.provider]
            taken = {s.provider for s in job.slots}
            free = [p for p in self.providers if p not in taken]
            choices = waiting or free or self.providers
            self._accept(job, choices[who % len(choices)])
            return
        due = [
            s
            for s in job.slots
            if self._role(s.provider) in (JUNK, COPIER)
            and not s.copied_from
            and (
                (s.state == ACCEPTED and now < job.deadline - 2)
                or (
                    s.state == COMMITTED
                    and job.replicas > 1
                    and self.model.reveal_open(job, now)
                    and now < job.deadline + REVEAL - 2
                )
            )
        ]
        if due and who % 5 != 4:
            slot = due[who % len(due)]
            if slot.state == ACCEPTED:
                self._play_commit(job, slot.provider)
            else:
                self._play_reveal(job, slot.provider, forge=False)
        elif job.replicas == job.committed == 1 and now < job.challenge_ends - 2 and who % 2 == 0:
            if who % 4 == 0:  # a sybil master tries its own verifiers first
                self._sybil_dispute(job, job.id + who)
            self._matcher_dispute(job, who)
        elif (
            job.replicas == job.committed == 1
            or (job.replicas > 1 and self.model.all_revealed(job, now))
        ) and who % 3 != 2:
            self._confirm(job, job.renter)
        elif job.accepted and not job.revealed and who % 2:
            self._claim_no_show(job, self.tracked[who])
        else:
            ready_at = self.model.finalizable_at(job)
            if now <= ready_at and who % 4:
                self._sleep(ready_at - now + 1 + who)  # wait out the job's windows
            self._finalize(job, self.tracked[who])

    # ------------------------------------------------------------ registry rules

    def rule_registry(self, who="st_provider", amount="st_amount", op="st_op"):
        """A provider stakes, asks to unstake, cancels that, or withdraws what unbonded."""
        provider, value = self.providers[who], STAKE_AMOUNTS[amount]
        registry, model = self.registry, self.model
        name, fn, args, rule = [
            ("stake", registry.stake, (value,), lambda ts: model.stake(provider, value)),
            (
                "requestUnstake",
                registry.requestUnstake,
                (value,),
                lambda ts: model.request_unstake(provider, value, ts),
            ),
            (
                "cancelUnstake",
                registry.cancelUnstake,
                (),
                lambda ts: model.cancel_unstake(provider),
            ),
            (
                "withdrawUnstaked",
                registry.withdrawUnstaked,
                (),
                lambda ts: model.withdraw_unstaked(provider, ts),
            ),
        ][op]
        self._act(name, fn, *args, sender=provider, model=rule)

    # --------------------------------------------------------------------- time

    def rule_sleep(self, seconds="st_sleep"):
        self._sleep(SLEEPS[seconds])
        chain.mine()

    def rule_storage_advance(self, seed="st_seed"):
        """The storage rules' own step, its waits routed through `_sleep`."""
        storage_rules.chain = _HonestClock(self)
        try:
            super().rule_storage_advance(seed)
        finally:
            storage_rules.chain = chain

    # --------------------------------------------------------------- invariants

    def invariant(self):
        """Honest providers act on what happened (they watch the chain), then the checks."""
        self.stats["steps"] += 1
        self._honest_react()
        self._check_liveness()
        if self._changes == self._checked:
            return  # nothing succeeded since the last check, and a revert changes nothing
        self._checked = self._changes
        snap, locks = self._read()
        model = self.model
        assert snap["supply"] == PARAMS.supply
        held = (
            sum(snap["balances"])
            + snap["escrowBalance"]
            + snap["registryBalance"]
            + snap["storage"]["balance"]
            + snap["leases"]["balance"]
            + self.others_hold
        )
        assert held == PARAMS.supply, "tokens outside every known holder"
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
        # locks: exactly the collateral of live replicas, active deals and running
        # leases, per escrow
        for provider, by in zip(self.providers, locks, strict=True):
            expected = (
                model.job_locked(provider),
                model.deal_locked(provider),
                model.lease_locked(provider),
            )
            assert by == expected, f"lockedBy of {provider}: {by} != {expected}"
            assert model.stakes[provider][1] == sum(expected)
        self._check_storage_invariant(snap["storage"])
        self._check_lease_invariant(snap["leases"])

    def _check_liveness(self):
        """No time jump skipped a window an honest provider had to act in."""
        now = chain.time()
        for job in self.model.jobs.values():
            for slot in job.slots if job.live else ():
                if self._role(slot.provider) == HONEST:
                    assert slot.state != ACCEPTED, f"honest slot of job {job.id} not committed"
                    assert (
                        slot.state != COMMITTED
                        or job.replicas == 1
                        or (now <= job.deadline + REVEAL)
                    ), f"honest reveal of job {job.id} missed: a time jump bypassed _sleep"


class HeldBatchMachine(EscrowMachine):
    """The same actors and checks, plus held starts and batched steps (`_fund_later`,
    `_batch_step`). A run of its own, so the base run's sequences, and the paths they
    must reach, stay as they were; this one must reach the held and batched paths."""

    def rule_fund_later(self, seed="st_seed"):
        self._fund_later(seed)

    def rule_batch(self, seed="st_seed"):
        self._batch_step(seed)

    def rule_batch_again(self, seed="st_seed"):
        """(A second rule: batches need a provider and jobs at the right moment.)"""
        self._batch_step(seed)

    def teardown_final(cls):  # noqa: N805
        print(f"\nheld/batch stateful run: {dict(sorted(cls.stats.items()))}")
        if getattr(cls, "_failed", False):
            return
        for path in ("settled", "held:funded", "fundMany:ok"):
            assert cls.stats[path] > 0, f"no '{path}' in the whole held/batch stateful run"


@pytest.fixture(scope="module")
def reader(module_isolation, deployer):
    """Reads the job escrow, registry and storage escrow in one call."""
    return StorageStateReader.deploy({"from": deployer})


@pytest.fixture(scope="module")
def cast(deployment, deployer, providers):
    """The eight providers of `ROLES`: conftest's five and three more, staked alike."""
    token, registry = deployment["ComputeToken"], deployment["ProviderRegistry"]
    extra = [accounts.add(key) for key in EXTRA_KEYS]
    for account in extra:
        deployer.transfer(account, 10**19)
        token.transfer(account, PROVIDER_TOKENS, {"from": deployer})
        token.approve(registry, 2**256 - 1, {"from": account})
        registry.stake(STAKE, {"from": account})
    return [*providers, *extra]


def test_adversaries_never_break_conservation_nor_honest_pay(
    state_machine,
    token,
    escrow,
    registry,
    reader,
    renter,
    renter2,
    cast,
    treasury,
    storage,
    leases,
    deployer,
    outsider,
    sale,
    faucet,
):
    state_machine(
        EscrowMachine,
        token,
        escrow,
        registry,
        reader,
        [renter, renter2],
        cast,
        treasury,
        deployer,
        [deployer, outsider, sale, faucet],
        (storage, deployer),
        (leases, deployer),  # deployer: the prober, as conftest grants it
        settings={
            "max_examples": int(os.environ.get("DCLOUD_STATEFUL_EXAMPLES", 50)),
            "stateful_step_count": int(os.environ.get("DCLOUD_STATEFUL_STEPS", 40)),
            "deadline": None,
            "derandomize": True,
            "database": None,
        },
    )


def test_held_and_batched_steps_keep_conservation(
    state_machine,
    token,
    escrow,
    registry,
    reader,
    renter,
    renter2,
    cast,
    treasury,
    storage,
    leases,
    deployer,
    outsider,
    sale,
    faucet,
):
    state_machine(
        HeldBatchMachine,
        token,
        escrow,
        registry,
        reader,
        [renter, renter2],
        cast,
        treasury,
        deployer,
        [deployer, outsider, sale, faucet],
        (storage, deployer),
        (leases, deployer),  # deployer: the prober, as conftest grants it
        settings={
            "max_examples": int(os.environ.get("DCLOUD_STATEFUL_EXAMPLES", 50)),
            "stateful_step_count": int(os.environ.get("DCLOUD_STATEFUL_STEPS", 40)),
            "deadline": None,
            "derandomize": True,
            "database": None,
        },
    )
