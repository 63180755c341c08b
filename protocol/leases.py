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
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.contract import Contract

from protocol.deployments import Deployment
from protocol.escrow import Sender

CONTRACT = "LeaseEscrow"
MIN_PREPAID_SECONDS = 60  # LeaseEscrow.MIN_PREPAID_SECONDS


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

    @property
    def live(self) -> bool:
        return self.status in (LeaseStatus.OFFERED, LeaseStatus.RUNNING)

    @property
    def runs_out_at(self) -> int:
        """When the deposit runs out (0 unless running), as ``runsOutAt`` computes it."""
        if self.status != LeaseStatus.RUNNING:
            return 0
        return self.accepted_at + self.deposit // self.rate_per_second

    def accrued(self, now: int) -> int:
        """Earned and not yet credited at `now`, before the fee (``accruedOf``)."""
        if self.status != LeaseStatus.RUNNING:
            return 0
        until = min(now, self.runs_out_at)
        return self.rate_per_second * max(0, until - self.accepted_at) - self.paid

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
        )

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
    ) -> Any:
        """Open a lease (renter); `permit` is (deadline, v, r, s) of an ERC-2612 permit
        for `deposit`, else the escrow must already be approved."""
        fn = self.contract.functions
        if permit is None:
            return send(fn.open(provider, rate_per_second, deposit, spec_hash))
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
