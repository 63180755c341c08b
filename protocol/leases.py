"""Typed access to the deployed LeaseEscrow (web3 8): services paid by the second.

Reads return plain dataclasses; writes build the contract call and hand it to a
caller-supplied sender (the agents' ``Wallet.transact``), so this module holds no keys.
The rules are in the NatSpec of ``contracts/LeaseEscrow.sol``; in short: the renter
opens a lease for one provider with a deposit of at least a minute of its rate; the
provider accepts within the accept window (collateral locked) and earns
``rate * (min(now, runOut) - acceptedAt)``; the marketplace's prober (or the renter)
reports the service serving within the serve window, or anyone may end the lease as
never served (the provider slashed, the deposit refunded); once serving, anyone
settles what accrued (the provider's periodic claim is :meth:`Leases.settle_many`),
and settling after the deposit ran out ends the lease.

Watchers (WATCHER_ROLE) sign what they saw of a service as EIP-712 typed data
``WatchReport(uint256 leaseId,uint32 from,uint32 to,bool up)`` under the domain
``{name: "dcloud LeaseEscrow", version: "1", chainId, verifyingContract: the escrow}``
(:func:`sign_watch_report`); anyone posts "down" reports in batches
(:meth:`Leases.report_down`, each report's signatures sorted by signer,
:func:`down_report`). Seconds a quorum of watchers signed down are not paid; a lease
down continuously past the grace period is failed: anyone may end it
(:meth:`Leases.claim_down_past_grace`, the provider slashed by the slash share), or a
FAILOVER_ROLE key moves the rest of its deposit to another provider at no more than
the rate cap the renter set (:meth:`Leases.set_failover`, :meth:`Leases.failover`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from protocol.deployments import Deployment
from protocol.escrow import Sender

CONTRACT = "LeaseEscrow"
MIN_PREPAID_SECONDS = 60  # LeaseEscrow.MIN_PREPAID_SECONDS
# Local dev chains: a second well-known watcher key beside the dev matcher's, so a
# devnet's default quorum of two can be met. Never use it on a real chain.
DEV_WATCHER_KEY = "0x" + Web3.keccak(text="dcloud dev-chain watcher key").hex().removeprefix("0x")
DEV_WATCHER = Account.from_key(DEV_WATCHER_KEY).address
WATCH_DOMAIN_NAME = "dcloud LeaseEscrow"
WATCH_DOMAIN_VERSION = "1"
_WATCH_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "WatchReport": [
        {"name": "leaseId", "type": "uint256"},
        {"name": "from", "type": "uint32"},
        {"name": "to", "type": "uint32"},
        {"name": "up", "type": "bool"},
    ],
}


class LeaseStatus(enum.IntEnum):
    NONE = 0
    OFFERED = 1  # deposited, waiting for the provider
    RUNNING = 2  # accepted: collateral locked, seconds accruing
    ENDED = 3  # see EndReason


class EndReason(enum.IntEnum):
    NONE = 0  # not ended
    CANCELLED_BEFORE_ACCEPT = 1
    NOT_ACCEPTED = 2
    CLOSED_BY_RENTER = 3
    CLOSED_BY_PROVIDER = 4
    OUT_OF_FUNDS = 5
    NEVER_SERVED = 6
    DOWN_PAST_GRACE = 7  # paid to the failure, slashed by the slash share, refunded
    FAILED_OVER = 8  # the same, the rest of the deposit moved to a new lease


@dataclass(frozen=True)
class Lease:
    """One lease as ``getLease`` returns it."""

    lease_id: int
    renter: str
    deposit: int  # everything deposited, top-ups included
    provider: str
    paid: int  # credited so far, fees included
    rate_per_second: int
    collateral: int
    accept_by: int
    accepted_at: int  # 0 until accepted
    serving_at: int  # 0 until reported serving
    fee_bps: int
    status: LeaseStatus
    reason: EndReason
    down_seconds: int = 0  # quorum-confirmed down seconds (not paid)
    down_since: int = 0  # the current (or failing) down stretch [down_since, down_to)
    down_to: int = 0
    failed_at: int = 0  # down past the grace period since then; 0 if not

    @property
    def failed(self) -> bool:
        return self.failed_at != 0

    @property
    def live(self) -> bool:
        return self.status in (LeaseStatus.OFFERED, LeaseStatus.RUNNING)

    @property
    def runs_out_at(self) -> int:
        """When the deposit runs out (0 unless running), as ``runsOutAt`` computes it."""
        if self.status != LeaseStatus.RUNNING:
            return 0
        return self.accepted_at + self.deposit // self.rate_per_second + self.down_seconds

    def accrued(self, now: int) -> int:
        """Earned and not yet credited at `now`, before the fee (``accruedOf``)."""
        if self.status != LeaseStatus.RUNNING:
            return 0
        down = self.down_seconds
        if self.failed_at:
            until, down = self.failed_at, down - (self.down_to - self.failed_at)
        else:
            until = min(now, self.runs_out_at)
        return max(0, self.rate_per_second * max(0, until - self.accepted_at - down) - self.paid)

    def serve_by(self, serve_window: int) -> int:
        """The last second a serving report is accepted (0 unless accepted)."""
        return self.accepted_at + serve_window if self.accepted_at else 0


@dataclass(frozen=True)
class LeaseParameters:
    accept_window: int
    serve_window: int
    collateral_bps: int
    fee_bps: int  # for leases opened now


@dataclass(frozen=True)
class WatchRules:
    quorum: int  # distinct watchers that must sign the same down interval
    grace: int  # seconds a provider may be down continuously before it fails
    slash_bps: int  # of the lease's collateral, slashed to the renter then


@dataclass(frozen=True)
class LeaseOpening:
    """What the renter opened, from the lease's LeaseOpened event."""

    lease_id: int
    renter: str
    provider: str
    spec_hash: bytes
    rate_per_second: int
    deposit: int
    accept_by: int
    block_number: int


def watch_report_typed_data(
    *, chain_id: int, escrow: str, lease_id: int, start: int, end: int, up: bool = False
) -> dict[str, Any]:
    """The EIP-712 typed data a watcher signs for lease `lease_id` over [start, end)."""
    return {
        "types": _WATCH_TYPES,
        "primaryType": "WatchReport",
        "domain": {
            "name": WATCH_DOMAIN_NAME,
            "version": WATCH_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": escrow,
        },
        "message": {"leaseId": lease_id, "from": start, "to": end, "up": up},
    }


def sign_watch_report(
    key: Any, *, chain_id: int, escrow: str, lease_id: int, start: int, end: int, up: bool = False
) -> bytes:
    """A watcher's signature of what it saw of lease `lease_id` in [start, end)."""
    full = watch_report_typed_data(
        chain_id=chain_id, escrow=escrow, lease_id=lease_id, start=start, end=end, up=up
    )
    return bytes(Account.sign_typed_data(key, full_message=full).signature)


def down_report(
    lease_id: int, start: int, end: int, signed: Sequence[tuple[str, bytes]]
) -> tuple[int, int, int, list[bytes]]:
    """One ``reportDown`` entry: `signed` is (watcher address, signature) pairs, put in
    the ascending signer order the contract counts (a duplicate signer counts once)."""
    ordered = sorted(signed, key=lambda pair: int(pair[0], 16))
    return (lease_id, start, end, [sig for _, sig in ordered])


def min_deposit(rate_per_second: int) -> int:
    """The least a lease at `rate_per_second` may be opened with."""
    return rate_per_second * MIN_PREPAID_SECONDS


class Leases:
    """The LeaseEscrow on one chain: typed reads, and the calls agents send."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.contract: Contract = deployment.contract(w3, CONTRACT)
        self.address = self.contract.address
        self._parameters: LeaseParameters | None = None

    # ------------------------------------------------------------------ reads

    def parameters(self) -> LeaseParameters:
        if self._parameters is None:
            p = self.contract.functions.parameters().call()
            self._parameters = LeaseParameters(
                accept_window=int(p[4]),
                serve_window=int(p[5]),
                collateral_bps=int(p[6]),
                fee_bps=int(p[3]),
            )
        return self._parameters

    def lease(self, lease_id: int) -> Lease:
        raw = self.contract.functions.getLease(lease_id).call()
        return Lease(
            lease_id=lease_id,
            renter=Web3.to_checksum_address(raw[0]),
            deposit=int(raw[1]),
            provider=Web3.to_checksum_address(raw[2]),
            paid=int(raw[3]),
            rate_per_second=int(raw[4]),
            collateral=int(raw[5]),
            accept_by=int(raw[6]),
            accepted_at=int(raw[7]),
            serving_at=int(raw[8]),
            fee_bps=int(raw[9]),
            status=LeaseStatus(int(raw[10])),
            reason=EndReason(int(raw[11])),
            down_seconds=int(raw[12]),
            down_since=int(raw[13]),
            down_to=int(raw[14]),
            failed_at=int(raw[15]),
        )

    def watch_rules(self) -> WatchRules:
        quorum, grace, slash_bps = self.contract.functions.watchRules().call()
        return WatchRules(quorum=int(quorum), grace=int(grace), slash_bps=int(slash_bps))

    def failover_of(self, lease_id: int) -> tuple[int, bytes]:
        """(max rate per second of a replacement, spec hash) the renter agreed to; 0 = none."""
        cap, spec_hash = self.contract.functions.failoverOf(lease_id).call()
        return int(cap), bytes(spec_hash)

    def is_watcher(self, account: str) -> bool:
        role = self.contract.functions.WATCHER_ROLE().call()
        return bool(self.contract.functions.hasRole(role, account).call())

    def may_fail_over(self, account: str) -> bool:
        role = self.contract.functions.FAILOVER_ROLE().call()
        return bool(self.contract.functions.hasRole(role, account).call())

    def lease_count(self) -> int:
        return int(self.contract.functions.leaseCount().call())

    def accrued_of(self, lease_id: int) -> int:
        """Earned and not yet credited now, before the fee (0 unless running)."""
        return int(self.contract.functions.accruedOf(lease_id).call())

    def runs_out_at(self, lease_id: int) -> int:
        """When the running lease's deposit runs out (0 unless running)."""
        return int(self.contract.functions.runsOutAt(lease_id).call())

    def credit_of(self, account: str) -> int:
        return int(self.contract.functions.creditOf(account).call())

    def is_prober(self, account: str) -> bool:
        role = self.contract.functions.PROBER_ROLE().call()
        return bool(self.contract.functions.hasRole(role, account).call())

    def openings(
        self, *, from_block: int | None = None, to_block: int | str = "latest"
    ) -> list[LeaseOpening]:
        """LeaseOpened events in the block range (from the deployment block by default)."""
        start = self.deployment.deployed_at_block if from_block is None else from_block
        logs = self.contract.events.LeaseOpened().get_logs(from_block=start, to_block=to_block)
        return [_opening(e) for e in logs]

    # ----------------------------------------------------------------- writes

    def open(
        self,
        send: Sender,
        *,
        provider: str,
        rate_per_second: int,
        deposit: int,
        spec_hash: bytes,
        permit: tuple[int, int, bytes, bytes] | None = None,
        failover_cap: int = 0,
    ) -> Any:
        """Open a lease (renter); `permit` is (deadline, v, r, s) of an ERC-2612 permit
        for `deposit`, else the escrow must already be approved. A `failover_cap` (with a
        permit) agrees in the same transaction to a failover at no more than that rate per
        second (``openWithPermitAndFailover``)."""
        fn = self.contract.functions
        if permit is None:
            if failover_cap:
                raise ValueError("opening with failover terms needs a permit")
            return send(fn.open(provider, rate_per_second, deposit, spec_hash))
        if failover_cap:
            return send(
                fn.openWithPermitAndFailover(
                    provider, rate_per_second, deposit, spec_hash, failover_cap, *permit
                )
            )
        return send(fn.openWithPermit(provider, rate_per_second, deposit, spec_hash, *permit))

    def top_up(
        self,
        send: Sender,
        lease_id: int,
        amount: int,
        *,
        permit: tuple[int, int, bytes, bytes] | None = None,
    ) -> Any:
        """Add `amount` to the deposit (renter only, before it runs out)."""
        fn = self.contract.functions
        if permit is None:
            return send(fn.topUp(lease_id, amount))
        return send(fn.topUpWithPermit(lease_id, amount, *permit))

    def accept(self, send: Sender, lease_id: int) -> Any:
        """Accept a lease naming the sender (provider) within the accept window."""
        return send(self.contract.functions.accept(lease_id))

    def report_serving(self, send: Sender, lease_id: int) -> Any:
        """Attest that the service came up (a prober key, or the renter)."""
        return send(self.contract.functions.reportServing(lease_id))

    def settle(self, send: Sender, lease_id: int) -> Any:
        """Credit the provider what accrued (anyone); ends a lease that ran out."""
        return send(self.contract.functions.settle(lease_id))

    def settle_many(self, send: Sender, lease_ids: Sequence[int]) -> Any:
        """The provider's periodic claim: settle every lease that can be, skip the rest."""
        return send(self.contract.functions.settleMany(list(lease_ids)))

    def close(self, send: Sender, lease_id: int) -> Any:
        """End the lease now (renter or provider; see the contract for who gets what)."""
        return send(self.contract.functions.close(lease_id))

    def cancel_unaccepted(self, send: Sender, lease_id: int) -> Any:
        """Refund an offer whose accept window passed unaccepted (anyone)."""
        return send(self.contract.functions.cancelUnaccepted(lease_id))

    def claim_never_served(self, send: Sender, lease_id: int) -> Any:
        """Slash a provider with no serving report past the serve window (anyone)."""
        return send(self.contract.functions.claimNeverServed(lease_id))

    def set_failover(
        self, send: Sender, lease_id: int, max_rate_per_second: int, spec_hash: bytes
    ) -> Any:
        """Agree to a failover of the lease at no more than `max_rate_per_second` (renter;
        0 turns it off)."""
        return send(self.contract.functions.setFailover(lease_id, max_rate_per_second, spec_hash))

    def report_down(
        self, send: Sender, reports: Sequence[tuple[int, int, int, Sequence[bytes]]]
    ) -> Any:
        """Post watchers' signed down intervals (anyone): entries from :func:`down_report`."""
        args = [(lease_id, start, end, list(sigs)) for lease_id, start, end, sigs in reports]
        return send(self.contract.functions.reportDown(args))

    def claim_down_past_grace(self, send: Sender, lease_id: int) -> Any:
        """End a failed lease (anyone): paid to the failure, slashed, the rest refunded."""
        return send(self.contract.functions.claimDownPastGrace(lease_id))

    def failover(self, send: Sender, lease_id: int, new_provider: str, new_rate: int) -> Any:
        """Move a failed lease's deposit to `new_provider` (a FAILOVER_ROLE key); the new
        lease's id is in the LeaseFailedOver event (:meth:`failovers`)."""
        return send(self.contract.functions.failover(lease_id, new_provider, new_rate))

    def failovers(
        self, *, from_block: int | None = None, to_block: int | str = "latest"
    ) -> list[tuple[int, int, str]]:
        """(old lease id, new lease id, new provider) of every failover in the range."""
        start = self.deployment.deployed_at_block if from_block is None else from_block
        logs = self.contract.events.LeaseFailedOver().get_logs(from_block=start, to_block=to_block)
        return [
            (
                int(e["args"]["leaseId"]),
                int(e["args"]["newLeaseId"]),
                Web3.to_checksum_address(e["args"]["newProvider"]),
            )
            for e in logs
        ]

    def withdraw(self, send: Sender) -> Any:
        """Pull the sender's credit (pay, refunds) to its wallet."""
        return send(self.contract.functions.withdraw())


def _opening(e: Any) -> LeaseOpening:
    a = e["args"]
    return LeaseOpening(
        lease_id=int(a["leaseId"]),
        renter=Web3.to_checksum_address(a["renter"]),
        provider=Web3.to_checksum_address(a["provider"]),
        spec_hash=bytes(a["specHash"]),
        rate_per_second=int(a["ratePerSecond"]),
        deposit=int(a["deposit"]),
        accept_by=int(a["acceptBy"]),
        block_number=int(e["blockNumber"]),
    )
