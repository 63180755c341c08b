"""The renter's side of LeaseEscrow: open a lease with a permit, top it up, close it and
take the rest back; every amount in token wei."""

from __future__ import annotations

from dataclasses import dataclass

from web3.logs import DISCARD

from agents.errors import UserError
from agents.renter.client import Renter
from agents.units import fmt_tokens
from protocol.leases import EndReason, Lease, Leases, LeaseStatus
from protocol.permit import sign_permit

PERMIT_LIFETIME_S = 3600


@dataclass(frozen=True)
class Closed:
    before: Lease
    after: Lease
    provider_now: int  # credited to the provider by this close, after the fee
    fee_now: int
    refund: int  # the deposit's rest, credited to the renter by this close
    withdrawn: int  # LeaseEscrow credit pulled into the wallet


class RenterLeases:
    """One renter's leases: its key's wallet on the deployment's LeaseEscrow."""

    def __init__(self, renter: Renter) -> None:
        self.renter = renter
        self.address = renter.address
        self.wallet = renter.wallet
        self.leases = Leases(renter.escrow.w3, renter.escrow.deployment)
        self.wallet.learn_errors([dict(i) for i in self.leases.contract.abi])

    def lease(self, lease_id: int) -> Lease:
        return self.leases.lease(lease_id)

    def now(self) -> int:
        return self.renter.escrow.now()

    def check_tokens(self, amount: int) -> None:
        """Raise :class:`UserError` (naming how to get tokens) if the wallet holds less."""
        have = self.renter.escrow.balance_of(self.address)
        if have < amount:
            raise UserError(
                f"not enough tokens: that takes {fmt_tokens(amount)} and you hold "
                f"{fmt_tokens(have)}; get tokens with `dcloud token buy AMOUNT` (or `dcloud "
                "token faucet` on a devnet)"
            )

    def permit(self, amount: int) -> tuple[int, int, bytes, bytes]:
        """(deadline, v, r, s): an ERC-2612 permit for LeaseEscrow to take `amount`."""
        token = self.renter.escrow.token
        deadline = self.now() + PERMIT_LIFETIME_S
        v, r, s = sign_permit(
            self.renter.account.key,
            token_name=token.functions.name().call(),
            token=token.address,
            chain_id=self.wallet.chain_id,
            spender=self.leases.address,
            value=amount,
            nonce=token.functions.nonces(self.address).call(),
            deadline=deadline,
        )
        return deadline, v, r, s

    def open(
        self, *, provider: str, rate: int, deposit: int, spec_hash: str, failover_cap: int = 0
    ) -> int:
        """Open a lease with a permit; its id. A `failover_cap` agrees in the same
        transaction to a failover at no more than that rate per second."""
        receipt = self.leases.open(
            self.wallet.transact,
            provider=provider,
            rate_per_second=rate,
            deposit=deposit,
            spec_hash=bytes.fromhex(spec_hash.removeprefix("0x")),
            permit=self.permit(deposit),
            failover_cap=failover_cap,
        )
        events = self.leases.contract.events.LeaseOpened().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["leaseId"])

    def successor(self, lease_id: int) -> tuple[int, str] | None:
        """(new lease id, new provider) when LeaseEscrow failed the lease over, else None."""
        lease = self.lease(lease_id)
        if lease.status != LeaseStatus.ENDED or lease.reason != EndReason.FAILED_OVER:
            return None
        for old, new, provider in self.leases.failovers():
            if old == lease_id:
                return new, provider
        return None

    def top_up(self, lease_id: int, amount: int) -> Lease:
        """Add `amount` to a live lease's deposit (topUpWithPermit); the lease after."""
        self.check_tokens(amount)
        self.leases.top_up(self.wallet.transact, lease_id, amount, permit=self.permit(amount))
        return self.lease(lease_id)

    def close(self, lease_id: int) -> Closed:
        """Close the lease if it is live (the provider paid to this second, the rest
        refunded), then withdraw whatever LeaseEscrow holds for the renter."""
        before = self.lease(lease_id)
        provider_now = fee_now = refund = 0
        if before.live:
            receipt = self.leases.close(self.wallet.transact, lease_id)
            events = self.leases.contract.events
            for e in events.LeaseSettled().process_receipt(receipt, errors=DISCARD):
                provider_now += int(e["args"]["amount"])
                fee_now += int(e["args"]["fee"])
            for e in events.LeaseEnded().process_receipt(receipt, errors=DISCARD):
                refund = int(e["args"]["refundedToRenter"])
        credit = self.leases.credit_of(self.address)
        if credit:
            self.leases.withdraw(self.wallet.transact)
        return Closed(
            before=before,
            after=self.lease(lease_id),
            provider_now=provider_now,
            fee_now=fee_now,
            refund=refund,
            withdrawn=credit,
        )
