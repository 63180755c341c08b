"""What a cancelled or settled job gave back to its renter, read from the chain's events.

Money comes back by two roads. The escrow *credits* the refunded deposit (``JobCancelled``
or ``JobSettled``'s ``refund``), and the renter pulls it with ``withdraw``; the registry
*pays* a slashed provider's collateral to the renter directly, in the same transaction
(``ProviderSlashed``, less the treasury's share). A renter's wallet grows by what it
withdraws plus what the registry paid it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.logs import DISCARD

from agents.errors import NotFoundError
from protocol.escrow import Escrow


@dataclass(frozen=True)
class Slash:
    provider: str
    to_renter: int  # paid to the renter's wallet by the registry
    to_treasury: int  # the treasury's share of the same slash


@dataclass(frozen=True)
class Payback:
    """Job `job_id`'s money back to `renter`, from the transaction that closed the job."""

    job_id: int
    renter: str
    how: str  # "cancelled" or "settled"
    refund: int  # deposit credited in JobEscrow (pulled with withdraw)
    slashes: list[Slash] = field(default_factory=list)
    tx_hash: str = ""

    @property
    def slashed(self) -> int:
        """Collateral the registry paid straight into the renter's wallet."""
        return sum(s.to_renter for s in self.slashes)


def payback(escrow: Escrow, job_id: int, renter: str, *, from_block: int) -> Payback:
    """Read how job `job_id` closed (at or after `from_block`) and what it gave `renter`.

    Raises:
        NotFoundError: the job was neither cancelled nor settled since `from_block`.
    """
    renter = Web3.to_checksum_address(renter)
    found = _closing_event(escrow, job_id, from_block)
    if found is None:
        raise NotFoundError(f"job {job_id} was not cancelled or settled since block {from_block}")
    how, log = found
    receipt = escrow.w3.eth.get_transaction_receipt(log["transactionHash"])
    slashes = []
    for e in escrow.registry.events.ProviderSlashed().process_receipt(receipt, errors=DISCARD):
        a = e["args"]
        if Web3.to_checksum_address(a["beneficiary"]) == renter:
            to_treasury = int(a["toTreasury"])
            slashes.append(
                Slash(
                    provider=Web3.to_checksum_address(a["provider"]),
                    to_renter=int(a["amount"]) - to_treasury,
                    to_treasury=to_treasury,
                )
            )
    return Payback(
        job_id=job_id,
        renter=renter,
        how=how,
        refund=int(log["args"]["refund"]),
        slashes=slashes,
        tx_hash=Web3.to_hex(log["transactionHash"]),
    )


def _closing_event(escrow: Escrow, job_id: int, from_block: int) -> tuple[str, Any] | None:
    """The job's JobCancelled or JobSettled event (a job closes once), with which it was."""
    events = escrow.contract.events
    for how, event in (("cancelled", events.JobCancelled), ("settled", events.JobSettled)):
        logs = event().get_logs(from_block=from_block, argument_filters={"jobId": job_id})
        if logs:
            return how, logs[0]
    return None
