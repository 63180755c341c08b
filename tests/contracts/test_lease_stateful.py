"""The lease half of the stateful test in ``test_invariants_stateful.py``.

``LeaseModel`` adds LeaseEscrow's rules (its NatSpec, restated in Python) to that
test's ``Model``; ``LeaseRules`` adds to its ``EscrowMachine`` rules that open,
accept, report, settle, top up, close, cancel and slash leases, often at odd times
or from the wrong account, and the invariant (checked by the host after every step)
that the lease escrow holds exactly ``deposit - paid`` of its live leases plus its
credits, as the model says. Leases lock collateral in the same registry as jobs and
deals, so the host's stake invariants cover all three.

The actors: providers keep their roles from ``adversaries.py``. An honest provider
accepts a lease naming it at once (when it can lock the collateral) and its service
comes up; a silent one accepts and never serves; a junk or copying provider's
service comes up too, but it may walk away (close) before the report. The prober
reports every service that came up at once, except for the leases it lies about
(every fourth): it never reports those, and the honest provider is slashed, the
risk the contract's docs name. Renters close, top up and report at odd times.

Watchers (``conftest.WATCHER_KEYS``, a quorum of two) sign down intervals only for
services that are down: an honest provider's never is, a junk or copying provider's
may be, for stretches long enough to pass the grace period. A lying watcher alone
reports honest providers down, and signatures made for another lease are replayed;
both must be refused. Renters agree to failovers at a cap; the failover key (the
prober's) moves failed leases to other providers, sometimes above the cap; anyone
claims a failed lease as down past grace.

Checked at every ending: an honest provider whose service was reported serving is
never slashed, never counted down, and is paid exactly ``rate * (min(end, runOut) -
acceptedAt)``; pay plus refund (or plus what a failover moved) is the whole deposit.
This module holds no tests of its own.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from adversaries import HONEST, SILENT
from brownie import chain
from conftest import (
    CANCELLED_BEFORE_ACCEPT,
    CLOSED_BY_PROVIDER,
    CLOSED_BY_RENTER,
    DOWN_PAST_GRACE,
    FAILED_OVER,
    LEASE_ENDED,
    LEASE_OFFERED,
    LEASE_RUNNING,
    LEASE_SPEC,
    NEVER_SERVED,
    NOT_ACCEPTED,
    OUT_OF_FUNDS,
    PARAMS,
    STRANGER_KEY,
    WATCHER_KEYS,
    ZERO_ADDRESS,
    down,
    need,
)

from protocol.leases import down_report

ACCEPT_L, SERVE_L = PARAMS.lease_accept_window, PARAMS.lease_serve_window
MIN_SECONDS = 60
RATES = [10**15, 3 * 10**15 + 1, 10**16]
SECONDS = [200, 61, 900, 59]  # prepaid seconds; 59 is below the minimum
FEES_BPS = [0, PARAMS.fee_bps, 1000]
REASONS = {
    CANCELLED_BEFORE_ACCEPT: "cancelled",
    NOT_ACCEPTED: "not-accepted",
    CLOSED_BY_RENTER: "closed-by-renter",
    CLOSED_BY_PROVIDER: "closed-by-provider",
    OUT_OF_FUNDS: "out-of-funds",
    NEVER_SERVED: "never-served",
    DOWN_PAST_GRACE: "down-past-grace",
    FAILED_OVER: "failed-over",
}
GRACE, SLASH_BPS, QUORUM = PARAMS.lease_grace, PARAMS.lease_slash_bps, PARAMS.lease_quorum


@dataclasses.dataclass
class Lease:
    id: int
    renter: str
    provider: str
    rate: int
    deposit: int
    collateral: int
    fee_bps: int
    accept_by: int
    prober_lies: bool
    accepted_at: int = 0
    serving_at: int = 0
    paid: int = 0
    status: int = LEASE_OFFERED
    reason: int = 0
    down_seconds: int = 0
    down_since: int = 0
    down_to: int = 0
    failed_at: int = 0
    cap: int = 0  # the failover rate cap the renter agreed to

    @property
    def live(self) -> bool:
        return self.status in (LEASE_OFFERED, LEASE_RUNNING)

    @property
    def run_out(self) -> int:
        return self.accepted_at + self.deposit // self.rate + self.down_seconds

    def earned(self, ts: int) -> int:
        if self.failed_at:
            before = self.down_seconds - (self.down_to - self.failed_at)
            return self.rate * (self.failed_at - self.accepted_at - before)
        return self.rate * (min(ts, self.run_out) - self.accepted_at - self.down_seconds)


class LeaseModel:
    """LeaseEscrow's rules; mixed into the stateful test's ``Model``.

    Uses the host's ``_move``, ``_slash``, ``_unlock``, ``_check_lock``, ``stakes``,
    ``balances``, ``owner`` and ``treasury``. Every operation checks first (raising
    ``Revert`` in the contract's order), then applies.
    """

    def _init_leases(self, prober: str) -> None:
        self.prober = prober
        self.lease_fee_bps = PARAMS.fee_bps
        self.leases: dict[int, Lease] = {}
        self.lease_credits: dict[str, int] = dict.fromkeys(self.balances, 0)
        self.lease_balance = 0

    def _lease(self, lease_id: int) -> Lease | None:
        return self.leases.get(lease_id)

    def _status(self, lease_id: int) -> int:
        lease = self.leases.get(lease_id)
        return lease.status if lease else 0

    def _running_lease(self, lease_id: int) -> Lease:
        need(self._status(lease_id) == LEASE_RUNNING, "LeaseNotRunning")
        return self.leases[lease_id]

    def open_lease(self, renter: str, provider: str, rate: int, deposit: int, ts: int) -> int:
        need(rate > 0, "LeaseZeroRate")
        need(deposit > 0, "LeaseZeroDeposit")
        need(deposit >= rate * MIN_SECONDS, "LeaseDepositTooSmall")
        need(provider not in (ZERO_ADDRESS, renter), "LeaseBadProvider")
        staked, _, unbonding, _ = self.stakes.get(provider, [0, 0, 0, 0])
        active = staked - unbonding
        need(active != 0 and active >= PARAMS.min_stake, "LeaseProviderInactive")
        need(self.balances[renter] >= deposit, "ERC20InsufficientBalance")
        lease_id = len(self.leases) + 1
        self.leases[lease_id] = Lease(
            id=lease_id,
            renter=renter,
            provider=provider,
            rate=rate,
            deposit=deposit,
            collateral=deposit * PARAMS.lease_collateral_bps // 10_000,
            fee_bps=self.lease_fee_bps,
            accept_by=ts + ACCEPT_L,
            prober_lies=lease_id % 4 == 3,
        )
        self._move(renter, "leases", deposit)
        return lease_id

    def accept_lease(self, lease_id: int, sender: str, ts: int) -> None:
        need(self._status(lease_id) == LEASE_OFFERED, "LeaseNotOffered")
        lease = self.leases[lease_id]
        need(sender == lease.provider, "LeaseNotProvider")
        need(ts <= lease.accept_by, "LeaseWindowClosed")
        self._check_lock(sender, lease.collateral)
        lease.status, lease.accepted_at = LEASE_RUNNING, ts
        self.stakes[sender][1] += lease.collateral

    def report_serving(self, lease_id: int, sender: str, ts: int) -> None:
        lease = self._running_lease(lease_id)
        need(sender in (lease.renter, self.prober), "LeaseNotProber")
        need(lease.serving_at == 0, "LeaseAlreadyServing")
        need(ts <= lease.accepted_at + SERVE_L, "LeaseWindowClosed")
        lease.serving_at = ts

    def top_up(self, lease_id: int, sender: str, amount: int, ts: int) -> None:
        need(self._status(lease_id) in (LEASE_OFFERED, LEASE_RUNNING), "LeaseNotRunning")
        lease = self.leases[lease_id]
        need(sender == lease.renter, "LeaseNotRenter")
        need(amount > 0, "LeaseZeroDeposit")
        need(lease.status == LEASE_OFFERED or ts < lease.run_out, "LeaseRanOut")
        need(self.balances[sender] >= amount, "ERC20InsufficientBalance")
        lease.deposit += amount
        self._move(sender, "leases", amount)

    def settle_lease(self, lease_id: int, ts: int) -> dict[str, Any]:
        lease = self._running_lease(lease_id)
        need(lease.serving_at != 0, "LeaseNotServing")
        need(lease.failed_at == 0, "LeaseFailed")
        need(ts >= lease.run_out or lease.earned(ts) > lease.paid, "LeaseNothingDue")
        return self._settle_lease(lease, ts)

    def settle_leases(self, lease_ids: list[int], ts: int) -> list[dict[str, Any]]:
        out = []
        for lease_id in lease_ids:
            lease = self.leases.get(lease_id)
            if lease is None or lease.status != LEASE_RUNNING or lease.serving_at == 0:
                continue
            if lease.failed_at:
                continue
            if ts >= lease.run_out or lease.earned(ts) > lease.paid:
                out.append(self._settle_lease(lease, ts))
        return out

    def close_lease(self, lease_id: int, sender: str, ts: int) -> dict[str, Any]:
        status = self._status(lease_id)
        if status == LEASE_OFFERED:
            lease = self.leases[lease_id]
            need(sender == lease.renter, "LeaseNotRenter")
            return self._end_lease(lease, CANCELLED_BEFORE_ACCEPT, due=0)
        lease = self._running_lease(lease_id)
        if lease.failed_at:
            need(sender in (lease.renter, lease.provider), "LeaseNotParty")
            due = self._pay_lease(lease, ts)
            return self._end_lease(lease, DOWN_PAST_GRACE, due=due, slash_bps=SLASH_BPS)
        if sender == lease.renter:
            due = self._pay_lease(lease, ts)
            return self._end_lease(lease, CLOSED_BY_RENTER, due=due)
        need(sender == lease.provider, "LeaseNotParty")
        served = lease.serving_at != 0
        due = self._pay_lease(lease, ts) if served else 0
        return self._end_lease(
            lease, CLOSED_BY_PROVIDER, due=due, slash_bps=0 if served else 10_000
        )

    def cancel_unaccepted(self, lease_id: int, ts: int) -> dict[str, Any]:
        need(self._status(lease_id) == LEASE_OFFERED, "LeaseNotOffered")
        lease = self.leases[lease_id]
        need(ts > lease.accept_by, "LeaseWindowOpen")
        return self._end_lease(lease, NOT_ACCEPTED, due=0)

    def claim_never_served(self, lease_id: int, ts: int) -> dict[str, Any]:
        lease = self._running_lease(lease_id)
        need(lease.serving_at == 0, "LeaseAlreadyServing")
        need(ts > lease.accepted_at + SERVE_L, "LeaseWindowOpen")
        return self._end_lease(lease, NEVER_SERVED, due=0, slash_bps=10_000)

    def report_down(self, reports: list[tuple[int, int, int, int]], ts: int) -> list[dict]:
        """`reports`: (lease id, from, to, distinct appointed watchers who signed it)."""
        staged: dict[int, Lease] = {}
        out = []
        for lease_id, start, end, signers in reports:
            need(start < end <= ts, "LeaseBadInterval")
            if lease_id not in self.leases:
                continue
            lease = staged.setdefault(lease_id, copy.copy(self.leases[lease_id]))
            if lease.status != LEASE_RUNNING or not lease.serving_at or lease.failed_at:
                continue
            first = max(start, lease.serving_at, lease.down_to)
            if first >= end or first >= lease.run_out:
                continue
            need(signers >= QUORUM, "LeaseNoQuorum")
            since = lease.down_since if lease.down_since and start <= lease.down_to else first
            lease.down_seconds += end - first
            lease.down_since, lease.down_to = since, end
            failed = end - since > GRACE
            if failed:
                lease.failed_at = since
            out.append({"lease": lease_id, "from": first, "to": end, "failed": failed})
        self.leases.update(staged)
        return out

    def set_failover(self, lease_id: int, sender: str, cap: int) -> None:
        need(self._status(lease_id) in (LEASE_OFFERED, LEASE_RUNNING), "LeaseNotRunning")
        lease = self.leases[lease_id]
        need(sender == lease.renter, "LeaseNotRenter")
        lease.cap = cap

    def claim_down_past_grace(self, lease_id: int, ts: int) -> dict[str, Any]:
        lease = self._running_lease(lease_id)
        need(lease.failed_at != 0, "LeaseNotDownPastGrace")
        due = self._pay_lease(lease, ts)
        return self._end_lease(lease, DOWN_PAST_GRACE, due=due, slash_bps=SLASH_BPS)

    def failover(
        self, lease_id: int, sender: str, provider: str, rate: int, ts: int
    ) -> tuple[dict[str, Any], int]:
        need(sender == self.prober, "AccessControlUnauthorizedAccount")
        lease = self._running_lease(lease_id)
        need(lease.failed_at != 0, "LeaseNotDownPastGrace")
        need(lease.cap != 0, "LeaseNoFailover")
        need(rate <= lease.cap, "LeaseRateAboveCap")
        need(provider != lease.provider, "LeaseBadProvider")
        rest = lease.deposit - max(lease.paid, lease.earned(ts))
        need(rate > 0, "LeaseZeroRate")
        need(rest > 0, "LeaseZeroDeposit")
        need(rest >= rate * MIN_SECONDS, "LeaseDepositTooSmall")
        need(provider not in (ZERO_ADDRESS, lease.renter), "LeaseBadProvider")
        staked, _, unbonding, _ = self.stakes.get(provider, [0, 0, 0, 0])
        active = staked - unbonding
        need(active != 0 and active >= PARAMS.min_stake, "LeaseProviderInactive")
        due = self._pay_lease(lease, ts)
        new_id = len(self.leases) + 1
        self.leases[new_id] = Lease(
            id=new_id,
            renter=lease.renter,
            provider=provider,
            rate=rate,
            deposit=rest,
            collateral=rest * PARAMS.lease_collateral_bps // 10_000,
            fee_bps=lease.fee_bps,
            accept_by=ts + ACCEPT_L,
            prober_lies=new_id % 4 == 3,
            cap=lease.cap,
        )
        outcome = self._end_lease(lease, FAILED_OVER, due=due, slash_bps=SLASH_BPS, refund=False)
        outcome["moved"] = rest
        return outcome, new_id

    def set_lease_fee(self, sender: str, fee_bps: int) -> None:
        need(sender == self.owner, "AccessControlUnauthorizedAccount")
        self.lease_fee_bps = fee_bps

    def lease_withdraw(self, account: str) -> None:
        need(self.lease_credits[account] != 0, "EscrowNothingToWithdraw")
        self._move("leases", account, self.lease_credits[account])
        self.lease_credits[account] = 0

    def _settle_lease(self, lease: Lease, ts: int) -> dict[str, Any]:
        ran_out = ts >= lease.run_out
        due = self._pay_lease(lease, ts)
        if ran_out:
            return self._end_lease(lease, OUT_OF_FUNDS, due=due)
        return {"lease": lease.id, "due": due, "reason": 0}

    def _pay_lease(self, lease: Lease, ts: int) -> int:
        due = max(0, lease.earned(ts) - lease.paid)
        fee = due * lease.fee_bps // 10_000
        lease.paid += due
        self.lease_credits[lease.provider] += due - fee
        self.lease_credits[self.treasury] += fee
        return due

    def _end_lease(
        self, lease: Lease, reason: int, *, due: int, slash_bps: int = 0, refund: bool = True
    ):
        locked = lease.status == LEASE_RUNNING
        lease.status, lease.reason = LEASE_ENDED, reason
        rest = lease.deposit - lease.paid if refund else 0
        self.lease_credits[lease.renter] += rest
        cut = lease.collateral * slash_bps // 10_000 if locked else 0
        if cut:
            self._slash(lease.provider, cut, lease.renter)
        if locked and cut != lease.collateral:
            self._unlock(lease.provider, lease.collateral - cut)
        return {"lease": lease.id, "due": due, "reason": reason, "refund": rest, "slash": cut}

    def lease_locked(self, provider: str) -> int:
        return sum(
            lease.collateral
            for lease in self.leases.values()
            if lease.provider == provider and lease.status == LEASE_RUNNING
        )

    def lease_live_deposits(self) -> int:
        return sum(lease.deposit - lease.paid for lease in self.leases.values() if lease.live)


class LeaseRules:
    """Lease rules and invariant; mixed into the stateful test's ``EscrowMachine``."""

    def _init_lease_rules(cls, leases, prober) -> None:  # noqa: N805
        cls.leases, cls.prober = leases, str(prober)

    # ------------------------------------------------------------------ plumbing

    def _lease_reads(self) -> list[tuple[Any, tuple[Any, ...]]]:
        """The view calls the host batches into its snapshot for the lease checks."""
        model = getattr(self, "model", None)  # none yet while setting up
        count = len(model.leases) if model is not None else 0
        return [
            (self.token.balanceOf, (self.leases,)),
            *((self.leases.creditOf, (a,)) for a in self.tracked),
            *((self.leases.getLease, (i,)) for i in range(1, count + 1)),
        ]

    def _lease_snapshot(self, reads: list[Any]) -> dict[str, Any]:
        n = len(self.tracked)
        return {
            "balance": int(reads[0]),
            "credits": [int(c) for c in reads[1 : 1 + n]],
            "leases": [dict(r.dict()) for r in reads[1 + n :]],
        }

    def _pick_lease(self, pick: int, want=None) -> Lease | None:
        leases = list(self.model.leases.values())
        live = [lease for lease in leases if lease.live]
        wanted = [lease for lease in live if want is None or want(lease)]
        if wanted and pick % 8 != 7:
            return wanted[pick % len(wanted)]
        if live and pick % 8 != 7:
            return live[pick % len(live)]
        return leases[pick % len(leases)] if leases else None

    def _lease_act(self, name, fn, *args, sender, model):
        tx, outcome = self._act(f"lease.{name}", fn, *args, sender=sender, model=model)
        if tx is not None:
            self.stats[f"lease:{name}"] += 1
        return tx, outcome

    def _after_lease(self, tx, outcomes) -> None:
        """Events equal the model's outcomes; an ending pays the honest served exactly."""
        if tx is None:
            return
        settled = [
            (int(e["leaseId"]), int(e["amount"]), int(e["fee"])) for e in _ev(tx, "LeaseSettled")
        ]
        expected = []
        for o in outcomes:
            lease = self.model.leases[o["lease"]]
            if o["due"]:
                fee = o["due"] * lease.fee_bps // 10_000
                expected.append((lease.id, o["due"] - fee, fee))
        assert settled == expected, f"LeaseSettled {settled} != {expected}"
        ends = [
            (
                int(e["leaseId"]),
                int(e["reason"]),
                int(e["paidToProvider"]),
                int(e["refundedToRenter"]),
            )
            for e in _ev(tx, "LeaseEnded")
        ]
        assert ends == [
            (o["lease"], o["reason"], self.model.leases[o["lease"]].paid, o["refund"])
            for o in outcomes
            if o["reason"]
        ]
        slashed = [(int(e["leaseId"]), int(e["collateral"])) for e in _ev(tx, "LeaseSlashed")]
        assert slashed == [(o["lease"], o["slash"]) for o in outcomes if o.get("slash")]
        for o in outcomes:
            lease = self.model.leases[o["lease"]]
            if o["due"]:
                self.stats["lease:paid"] += 1
            if not o["reason"]:
                continue
            self.stats[f"lease:end:{REASONS[o['reason']]}"] += 1
            assert lease.paid + o["refund"] + o.get("moved", 0) == lease.deposit
            if self._role(lease.provider) == HONEST and lease.serving_at:
                assert lease.down_seconds == 0, f"lease {lease.id}: honest provider counted down"
                assert not o.get("slash"), f"lease {lease.id}: honest served provider slashed"
                end = min(tx.timestamp, lease.run_out)
                assert lease.paid == lease.rate * (end - lease.accepted_at), "honest pay"
                self.stats["lease:honest-paid-exactly"] += 1
            if o.get("slash") and self._role(lease.provider) == HONEST:
                assert lease.prober_lies, f"lease {lease.id}: honest slashed, prober truthful"
                self.stats["lease:honest-slashed-by-lying-prober"] += 1

    # ---------------------------------------------------------------- operations

    def _open_lease(self, renter, provider, rate, deposit):
        tx, lease_id = self._lease_act(
            "open",
            self.leases.open,
            provider,
            rate,
            deposit,
            LEASE_SPEC,
            sender=renter,
            model=lambda ts: self.model.open_lease(renter, provider, rate, deposit, ts),
        )
        if tx is not None:
            assert tx.return_value == lease_id == self.leases.leaseCount()
        return lease_id

    def _accept_lease(self, lease, sender):
        return self._lease_act(
            "accept",
            self.leases.accept,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.accept_lease(lease.id, sender, ts),
        )[0]

    def _report_serving(self, lease, sender):
        return self._lease_act(
            "serving",
            self.leases.reportServing,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.report_serving(lease.id, sender, ts),
        )[0]

    def _top_up(self, lease, sender, amount):
        self._lease_act(
            "topUp",
            self.leases.topUp,
            lease.id,
            amount,
            sender=sender,
            model=lambda ts: self.model.top_up(lease.id, sender, amount, ts),
        )

    def _settle_lease(self, lease, sender):
        tx, outcome = self._lease_act(
            "settle",
            self.leases.settle,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.settle_lease(lease.id, ts),
        )
        self._after_lease(tx, [outcome] if tx is not None else [])

    def _settle_leases(self, ids, sender):
        tx, outcomes = self._lease_act(
            "settleMany",
            self.leases.settleMany,
            ids,
            sender=sender,
            model=lambda ts: self.model.settle_leases(ids, ts),
        )
        if tx is not None:
            assert tx.return_value == len(outcomes)
        self._after_lease(tx, outcomes or [])

    def _close_lease(self, lease, sender):
        tx, outcome = self._lease_act(
            "close",
            self.leases.close,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.close_lease(lease.id, sender, ts),
        )
        self._after_lease(tx, [outcome] if tx is not None else [])

    def _cancel_unaccepted(self, lease, sender):
        tx, outcome = self._lease_act(
            "cancelUnaccepted",
            self.leases.cancelUnaccepted,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.cancel_unaccepted(lease.id, ts),
        )
        self._after_lease(tx, [outcome] if tx is not None else [])

    def _claim_never_served(self, lease, sender):
        tx, outcome = self._lease_act(
            "claimNeverServed",
            self.leases.claimNeverServed,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.claim_never_served(lease.id, ts),
        )
        self._after_lease(tx, [outcome] if tx is not None else [])

    def _report_down(self, entries, sender):
        """`entries`: (lease id, from, to, signing keys, lease id the keys signed for)."""
        args, reports = [], []
        for lease_id, start, end, keys, signed_for in entries:
            sigs = down(self.leases, signed_for, start, end, keys)[3] if keys else []
            args.append((*down_report(lease_id, start, end, [])[:3], sigs))
            distinct = len(set(keys) & set(WATCHER_KEYS)) if signed_for == lease_id else 0
            reports.append((lease_id, start, end, distinct))
        tx, outcome = self._lease_act(
            "reportDown",
            self.leases.reportDown,
            args,
            sender=sender,
            model=lambda ts: self.model.report_down(reports, ts),
        )
        if tx is None:
            return
        assert tx.return_value == len(outcome)
        got = [(int(e["leaseId"]), int(e["from"]), int(e["to"])) for e in _ev(tx, "LeaseDown")]
        assert got == [(o["lease"], o["from"], o["to"]) for o in outcome]
        failed = [int(e["leaseId"]) for e in _ev(tx, "LeaseDownPastGrace")]
        assert failed == [o["lease"] for o in outcome if o["failed"]]
        self.stats["lease:down-counted"] += len(outcome)
        self.stats["lease:failed"] += len(failed)

    def _set_failover(self, lease, sender, cap):
        self._lease_act(
            "setFailover",
            self.leases.setFailover,
            lease.id,
            cap,
            LEASE_SPEC,
            sender=sender,
            model=lambda ts: self.model.set_failover(lease.id, sender, cap),
        )

    def _claim_down_past_grace(self, lease, sender):
        tx, outcome = self._lease_act(
            "claimDownPastGrace",
            self.leases.claimDownPastGrace,
            lease.id,
            sender=sender,
            model=lambda ts: self.model.claim_down_past_grace(lease.id, ts),
        )
        self._after_lease(tx, [outcome] if tx is not None else [])

    def _failover(self, lease, sender, provider, rate):
        tx, result = self._lease_act(
            "failover",
            self.leases.failover,
            lease.id,
            provider,
            rate,
            sender=sender,
            model=lambda ts: self.model.failover(lease.id, sender, provider, rate, ts),
        )
        if tx is None:
            return
        outcome, new_id = result
        assert tx.return_value == new_id == self.leases.leaseCount()
        moved = tx.events["LeaseFailedOver"]
        assert (int(moved["newLeaseId"]), int(moved["deposit"])) == (new_id, outcome["moved"])
        self._after_lease(tx, [outcome])

    def _set_lease_fee(self, sender, fee_bps):
        self._lease_act(
            "setFee",
            self.leases.setFee,
            self.model.treasury,
            fee_bps,
            sender=sender,
            model=lambda ts: self.model.set_lease_fee(sender, fee_bps),
        )

    def _lease_withdraw(self, account):
        self._lease_act(
            "withdraw",
            self.leases.withdraw,
            sender=account,
            model=lambda ts: self.model.lease_withdraw(account),
        )

    # ------------------------------------------------------------ honest actors

    def _lease_react(self) -> bool:
        """Honest providers accept the leases naming them; the prober reports every
        service that came up, except those it lies about. True if anyone acted."""
        now = chain.time()
        for lease in [x for x in self.model.leases.values() if x.live]:
            role = self._role(lease.provider)
            if (
                lease.status == LEASE_OFFERED
                and role == HONEST
                and now < lease.accept_by - 2
                and self.model.can_lock(lease.provider, lease.collateral)
            ):
                assert self._accept_lease(lease, lease.provider) is not None
                return True
            if (
                lease.status == LEASE_RUNNING
                and not lease.serving_at
                and role != SILENT
                and not lease.prober_lies
                and now < lease.accepted_at + SERVE_L - 2
            ):
                assert self._report_serving(lease, self.prober) is not None
                return True
        return False

    # --------------------------------------------------------------------- rules

    def rule_lease(self, seed="st_seed"):
        """Half the time a lease's next natural steps, else one random lease call.

        One rule, not two, so the job and storage rules keep their share of the steps."""
        if seed % 2:
            self._lease_advance(seed // 2)
        else:
            self._lease_random(seed // 2)

    def _lease_random(self, seed):
        """One lease call chosen by `seed`, often at the wrong moment or from the wrong account."""
        op, pick, who, extra = seed % 14, seed // 14 % 251, seed // 3514 % 8, seed // 28112
        lease = self._pick_lease(pick)
        stranger = self.tracked[who]
        if op == 0 or lease is None:
            renter = self.renters[extra % 2]
            provider = self.providers[who] if extra % 9 != 8 else renter
            rate = RATES[(extra >> 1) % len(RATES)] if extra % 13 != 12 else 0
            deposit = rate * SECONDS[(extra >> 3) % len(SECONDS)] if extra % 11 != 10 else 0
            self._open_lease(renter, provider, rate, deposit)
        elif op == 1:
            self._accept_lease(lease, lease.provider if who < 5 else stranger)
        elif op == 2:
            senders = [self.prober, lease.renter, lease.provider, stranger]
            self._report_serving(lease, senders[who % 4])
        elif op == 3:
            self._settle_lease(lease, stranger)
        elif op == 4:
            self._settle_leases([*self.model.leases, len(self.model.leases) + 1], stranger)
        elif op == 5:
            sender = lease.renter if who < 6 else stranger
            self._top_up(lease, sender, lease.rate * (1 + extra % 300) if extra % 7 else 0)
        elif op == 6:
            senders = [lease.renter, lease.renter, lease.provider, stranger]
            self._close_lease(lease, senders[who % 4])
        elif op == 7:
            self._cancel_unaccepted(lease, stranger)
        elif op == 8:
            self._claim_never_served(lease, stranger)
        elif op == 9:
            sender = self.model.owner if who < 6 else stranger
            self._set_lease_fee(sender, FEES_BPS[extra % len(FEES_BPS)])
        elif op == 10:
            credited = [a for a in self.tracked if self.model.lease_credits[a]]
            self._lease_withdraw(credited[who % len(credited)] if credited else stranger)
        elif op == 11:
            now = chain.time()
            lease = self._pick_lease(pick, want=lambda x: x.serving_at and now < x.run_out) or lease
            self._report_down(self._liars_reports(lease, who, extra), stranger)
        elif op == 12:
            provider = self.providers[extra % len(self.providers)]
            rate = lease.rate * (1 + extra % 3) if extra % 5 else 0
            self._failover(lease, self.prober if who < 6 else stranger, provider, rate)
        else:
            if who < 4:
                self._set_failover(lease, lease.renter if who else stranger, lease.rate * who)
            else:
                self._claim_down_past_grace(lease, stranger)

    def _liars_reports(self, lease, who, extra):
        """Reports a quorum would not sign: one watcher (or a stranger with it) alone,
        a quorum's signatures replayed for another lease, an empty interval, and now
        and then a true one (which counts only for a service that is down)."""
        now = chain.time() - 1
        start = max(lease.serving_at, lease.accepted_at, now - 60 - extra % 120)
        end = now if start < now else start + 1
        keys = [[WATCHER_KEYS[0]], [WATCHER_KEYS[1], STRANGER_KEY], [WATCHER_KEYS[2]] * 2][who % 3]
        other = lease.id % len(self.model.leases) + 1
        if other == lease.id:
            other += 1_000  # a lease that does not exist yet: still another lease
        entries = [(lease.id, start, end, keys, lease.id)]
        if who == 3:
            entries = [(lease.id, start, end, WATCHER_KEYS[:2], other)]
        elif who == 4:
            entries = [(lease.id, end, end, WATCHER_KEYS[:2], lease.id)]
        elif who >= 6 and self._role(lease.provider) not in (HONEST, None):
            entries = [(lease.id, start, end, WATCHER_KEYS[1:], lease.id)]
        return entries

    def _lease_advance(self, seed):
        """Take a live lease (or a new one) through its next natural steps."""
        pick, steps, who = seed % 251, 1 + seed // 251 % 3, seed // 753 % 8
        lease = self._pick_lease(pick)
        if lease is None or not lease.live:
            credited = [a for a in self.tracked if self.model.lease_credits[a]]
            if credited and who % 2:  # someone pulls pay or a refund first
                self._lease_withdraw(credited[seed // 6024 % len(credited)])
            provider = self.providers[seed // 6024 % len(self.providers)]
            if who % 3 == 0:  # a provider that accepts and never serves
                provider = next(p for p in self.providers if self._role(p) == SILENT)
            elif who % 3 == 1:  # one whose service comes up, and may go down
                flaky = [p for p in self.providers if self._role(p) not in (HONEST, SILENT)]
                provider = flaky[seed // 6024 % len(flaky)]
            rate = RATES[who % len(RATES)]
            renter = self.renters[seed % 2]
            lease_id = self._open_lease(renter, provider, rate, rate * SECONDS[who % 3])
            lease = self.model.leases.get(len(self.model.leases))
            if lease_id and who % 2:  # the renter agrees to a failover up to twice the rate
                self._set_failover(lease, renter, rate * 2)
        for step in range(steps):
            if lease is None or not lease.live:
                return
            self._advance_lease(lease, (who + step) % 8)

    def _advance_lease(self, lease, who):
        now = chain.time()
        role = self._role(lease.provider)
        if lease.status == LEASE_OFFERED:
            if now < lease.accept_by - 2 and who % 4:
                self._accept_lease(lease, lease.provider)
            elif who == 0:
                self._close_lease(lease, lease.renter)
            else:
                self._sleep(max(0, lease.accept_by - now + 1))
                self._cancel_unaccepted(lease, self.tracked[who])
        elif not lease.serving_at:
            serve_by = lease.accepted_at + SERVE_L
            if role != HONEST and role != SILENT and who % 3 == 0:
                self._close_lease(lease, lease.provider)  # walks away before serving
            elif who == 5 and now < serve_by - 2:
                self._report_serving(lease, lease.renter)  # against its own interest
            else:
                self._sleep(max(0, serve_by - now + 1))
                self._claim_never_served(lease, self.tracked[who])
        elif lease.failed_at:
            if who % 3:
                others = [p for p in self.providers if p != lease.provider]
                rate = lease.cap if who % 3 == 1 else lease.cap + 1  # at, or above, the cap
                self._failover(lease, self.prober, others[who % len(others)], rate or lease.rate)
            else:
                self._claim_down_past_grace(lease, self.tracked[who])
        elif who in (1, 3, 4) and self._role(lease.provider) != HONEST:
            self._watchers_see_down(lease, who)
        elif who == 2:  # a lying watcher alone, or replayed signatures
            self._report_down(self._liars_reports(lease, who * 3 % 5, 0), self.tracked[who])
        elif who == 7:
            self._close_lease(lease, lease.renter)  # at an odd time
        elif who == 6:
            self._close_lease(lease, lease.provider)
        elif who == 5 and now < lease.run_out - 2:
            self._top_up(lease, lease.renter, lease.rate * 100)
        else:
            if who % 2:
                self._sleep(max(0, lease.run_out - now + who))
            else:
                self._sleep(30 + who)
            self._settle_lease(lease, lease.provider if who % 3 else self.tracked[who])

    def _watchers_see_down(self, lease, who):
        """A junk or copying provider's service is down: the watchers' quorum signs the
        seconds since the last counted one, in one or two contiguous reports."""
        start = lease.down_to or max(lease.serving_at, chain.time() - 5)
        self._sleep(GRACE // 2 + 10 * who)
        end = chain.time() - 1
        if end <= start:
            return
        mid = (start + end) // 2
        pieces = [(start, end)] if who == 3 else [(start, mid), (mid, end)]
        keys = WATCHER_KEYS if who == 4 else WATCHER_KEYS[:2]
        if who != 4:  # one watcher's report of the same seconds alone counts for nothing
            alone = [(lease.id, a, b, WATCHER_KEYS[2:], lease.id) for a, b in pieces if a < b]
            self._report_down(alone, self.tracked[who])
        self._report_down(
            [(lease.id, a, b, keys, lease.id) for a, b in pieces if a < b], self.tracked[who]
        )

    # ----------------------------------------------------------------- invariant

    def _check_lease_invariant(self, snap: dict[str, Any]) -> None:
        """Run by the host's invariant on the same snapshot after every step."""
        model = self.model
        live = 0
        for raw, lease in zip(snap["leases"], model.leases.values(), strict=True):
            got = (raw["status"], raw["reason"], raw["deposit"], raw["paid"])
            assert got == (lease.status, lease.reason, lease.deposit, lease.paid), (
                f"lease {lease.id}"
            )
            assert (raw["acceptedAt"], raw["servingAt"]) == (lease.accepted_at, lease.serving_at)
            assert (raw["feeBps"], raw["collateral"]) == (lease.fee_bps, lease.collateral)
            assert (raw["downSeconds"], raw["downSince"], raw["downTo"], raw["failedAt"]) == (
                lease.down_seconds,
                lease.down_since,
                lease.down_to,
                lease.failed_at,
            ), f"lease {lease.id} down"
            if raw["status"] in (LEASE_OFFERED, LEASE_RUNNING):
                live += raw["deposit"] - raw["paid"]
        assert snap["balance"] == live + sum(snap["credits"]), "lease escrow holds what it owes"
        assert snap["balance"] == model.lease_balance
        assert live == model.lease_live_deposits()
        for i, account in enumerate(self.tracked):
            assert snap["credits"][i] == model.lease_credits[account], f"lease credit {account}"


LEASE_PATHS = (
    "lease:open",
    "lease:accept",
    "lease:serving",
    "lease:paid",
    "lease:withdraw",
    "lease:end:closed-by-renter",
    "lease:end:out-of-funds",
    "lease:end:never-served",
    "lease:honest-paid-exactly",
    "lease:down-counted",
    "lease:failed",
    "lease.reportDown:LeaseNoQuorum",
)
# reached by the full-size run; a reduced one may miss them (its runs are shorter)
LEASE_RARE_PATHS = frozenset({"lease:end:out-of-funds", "lease:failed", "lease:down-counted"})


def _ev(tx: Any, name: str) -> list[Any]:
    return list(tx.events[name]) if tx is not None and name in tx.events else []
