"""LeaseEscrow's events applied to the marketplace's tables (called by the indexer).

Each lease gets a :class:`~marketplace.store.models.ChainLeaseRow` (offered, running,
ended with its reason; deposit, rate, what was paid, when it was accepted and reported
serving). ``LeaseOpened`` links the lease to the deployment it pays for, as a funding
links a job: the same spec hash, renter and provider, not linked yet, a placed one
first. The deployment follows its lease: ``leased`` when opened, no reservation deadline
once accepted, ``serving`` when reported serving, ``ended`` with the lease's end reason,
when the capacity it may still hold is given back at once.

Pure database work inside the indexer's transaction, given decoded event arguments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from web3 import Web3

from marketplace.services import catalog
from marketplace.store.models import ChainLeaseRow, ProviderRow, ServiceRow
from protocol.leases import EndReason
from protocol.services import ServiceSpec

logger = logging.getLogger(__name__)

OFFERED, RUNNING, ENDED = "offered", "running", "ended"
Args = Mapping[str, Any]


def apply_lease_event(session: Session, name: str, args: Args, block: int) -> None:
    """Apply one LeaseEscrow event; unknown events are ignored."""
    handler = _HANDLERS.get(name)
    if handler is not None:
        handler(session, args, block)


def reset(session: Session) -> None:
    """Forget the leases learned from the chain (a re-index follows). Deployments keep
    their lease links; re-indexing confirms or replaces them."""
    session.execute(delete(ChainLeaseRow))


def end_reason_name(reason: int) -> str:
    """EndReason 5 -> 'out of funds'."""
    return EndReason(reason).name.lower().replace("_", " ")


def _opened(session: Session, a: Args, block: int) -> None:
    lease_id = int(a["leaseId"])
    renter, provider = to_checksum_address(a["renter"]), to_checksum_address(a["provider"])
    spec_hash = _hex(a["specHash"])
    lease = session.get(ChainLeaseRow, lease_id) or ChainLeaseRow(lease_id=lease_id)
    session.add(lease)
    lease.renter, lease.provider, lease.spec_hash = renter, provider, spec_hash
    lease.rate_wei_per_s, lease.deposit_wei = str(a["ratePerSecond"]), str(a["deposit"])
    lease.paid_wei, lease.collateral_wei = "0", "0"
    lease.accept_by, lease.accepted_at, lease.serving_at = int(a["acceptBy"]), 0, 0
    lease.state, lease.end_reason, lease.updated_block = OFFERED, "", block
    row = _linked(session, lease)
    if row is None:
        logger.info(
            "lease opened for no deployment placed here",
            extra={"lease_id": lease_id, "provider": provider, "spec_hash": spec_hash},
        )
        return
    row.lease_id = lease_id
    if row.status in (catalog.PLACED, catalog.EXPIRED, catalog.UNMATCHED) and _name_free(
        session, row
    ):
        row.status, row.reason, row.ended_at = catalog.LEASED, "", None
    catalog.touch(row)
    logger.info("service leased", extra={"service": row.name, "lease_id": lease_id})


def _linked(session: Session, lease: ChainLeaseRow) -> ServiceRow | None:
    """The deployment this lease pays for: already linked to it, else the best unlinked
    one with the same spec hash, renter and provider (placed first, newest first)."""
    matches = (
        ServiceRow.spec_hash == lease.spec_hash,
        func.lower(ServiceRow.renter) == lease.renter.lower(),
        ServiceRow.provider == lease.provider,
    )
    same = session.scalars(select(ServiceRow).where(ServiceRow.lease_id == lease.lease_id)).all()
    for row in same:
        if (row.spec_hash, row.renter.lower(), row.provider) == (
            lease.spec_hash,
            lease.renter.lower(),
            lease.provider,
        ):
            return row
        row.lease_id = None  # a lease id the chain (reset since) gave another lease
    candidates = session.scalars(
        select(ServiceRow)
        .where(*matches, ServiceRow.lease_id.is_(None))
        .order_by(ServiceRow.created_at.desc())
    ).all()
    return min(candidates, key=lambda r: r.status != catalog.PLACED, default=None)


def _name_free(session: Session, row: ServiceRow) -> bool:
    """Whether no other deployment of the row's name is live."""
    other = catalog.live(session, row.name)
    return other is None or other.id == row.id


def _accepted(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is None:
        return
    lease.state, lease.accepted_at = RUNNING, int(a["acceptedAt"])
    lease.collateral_wei = str(a["collateral"])
    row = _service(session, lease)
    if row is not None:
        row.reserved_until = None  # accepted: no longer a reservation that expires
        if row.status == catalog.EXPIRED and _name_free(session, row):
            row.status, row.reason, row.ended_at = catalog.LEASED, "", None
        catalog.touch(row)


def _serving(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is None:
        return
    lease.serving_at = int(a["servingAt"])
    row = _service(session, lease)
    if row is not None and row.status == catalog.LEASED:
        row.status = catalog.SERVING
        catalog.touch(row)


def _topped_up(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is not None:
        lease.deposit_wei = str(a["deposit"])


def _settled(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is not None:
        lease.paid_wei = str(int(lease.paid_wei) + int(a["amount"]) + int(a["fee"]))


def _ended(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is None:
        return
    reason = end_reason_name(int(a["reason"]))
    lease.state, lease.end_reason = ENDED, reason
    row = _service(session, lease)
    if row is None:
        return
    if row.status in catalog.LIVE:
        catalog.end(
            session,
            row,
            status=catalog.ENDED,
            reason=f"lease {lease.lease_id} ended: {reason}",
            now=time.time(),
        )
    else:
        catalog.release(session, row)


def _slashed(session: Session, a: Args, block: int) -> None:
    """A provider slashed on a lease (never served, or walked away before serving) loses
    reputation as for a slashed job: the scorer ranks it lower for jobs and services."""
    _lease(session, a, block)
    provider = session.get(ProviderRow, Web3.to_checksum_address(a["provider"]))
    if provider is not None:
        provider.jobs_slashed = (provider.jobs_slashed or 0) + 1


def _down(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is not None:
        lease.down_s, lease.down_to = int(a["downSeconds"]), int(a["to"])


def _down_past_grace(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is None:
        return
    lease.failed_at = int(a["failedAt"])
    row = _service(session, lease)
    if row is not None and row.status in catalog.LIVE:
        row.reason = f"down past the grace period since {lease.failed_at} (chain time)"
        catalog.touch(row)
    logger.warning(
        "lease down past the grace period",
        extra={
            "lease_id": lease.lease_id,
            "provider": lease.provider,
            "failed_at": lease.failed_at,
        },
    )


def _failover_set(session: Session, a: Args, block: int) -> None:
    lease = _lease(session, a, block)
    if lease is not None:
        lease.failover_cap_wei = str(a["maxRatePerSecond"])


def _failed_over(session: Session, a: Args, block: int) -> None:
    """The old deployment ends and the new lease's takes the name (created here when
    another marketplace moved it: the same spec, on the new provider)."""
    old = _lease(session, a, block)
    if old is None:
        return
    new_id, provider = int(a["newLeaseId"]), to_checksum_address(a["newProvider"])
    old.next_lease_id = new_id
    new = session.get(ChainLeaseRow, new_id)
    if new is not None:
        new.failover_cap_wei = old.failover_cap_wei
    was = _service(session, old)
    now = time.time()
    if was is not None and was.status in catalog.LIVE:
        catalog.end(
            session,
            was,
            status=catalog.ENDED,
            reason=f"failed over to lease {new_id} on provider {provider}",
            now=now,
        )
    row = session.scalars(select(ServiceRow).where(ServiceRow.lease_id == new_id)).first()
    if row is None and was is not None:
        row = _successor(session, was, new_id, provider, now)
    if (
        row is not None
        and row.status in (catalog.PLACED, catalog.EXPIRED)
        and _name_free(session, row)
    ):
        row.status, row.reason, row.ended_at = catalog.LEASED, "", None
        row.failover_from = old.lease_id
        catalog.touch(row, now)
    logger.warning(
        "service failed over",
        extra={"lease_id": old.lease_id, "new_lease_id": new_id, "provider": provider},
    )


def _successor(
    session: Session, was: ServiceRow, lease_id: int, provider: str, now: float
) -> ServiceRow:
    """A deployment for a failover this marketplace did not place (no capacity held)."""
    spec = ServiceSpec.model_validate(was.spec)
    row = catalog.new_row(name=was.name, renter=was.renter, spec=spec, now=now)
    host = session.get(ProviderRow, provider)
    row.provider, row.endpoint = provider, host.endpoint if host is not None else ""
    row.status, row.lease_id, row.failover_from = catalog.PLACED, lease_id, was.lease_id
    session.add(row)
    return row


def _lease(session: Session, a: Args, block: int) -> ChainLeaseRow | None:
    lease = session.get(ChainLeaseRow, int(a["leaseId"]))
    if lease is None:
        logger.warning("event for a lease the indexer never saw opened", extra={"args": a})
        return None
    lease.updated_block = block
    return lease


def _service(session: Session, lease: ChainLeaseRow) -> ServiceRow | None:
    return session.scalars(select(ServiceRow).where(ServiceRow.lease_id == lease.lease_id)).first()


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


_HANDLERS: dict[str, Callable[[Session, Args, int], None]] = {
    "LeaseOpened": _opened,
    "LeaseAccepted": _accepted,
    "LeaseServing": _serving,
    "LeaseToppedUp": _topped_up,
    "LeaseSettled": _settled,
    "LeaseSlashed": _slashed,
    "LeaseDown": _down,
    "LeaseDownPastGrace": _down_past_grace,
    "LeaseFailoverSet": _failover_set,
    "LeaseFailedOver": _failed_over,
    "LeaseEnded": _ended,
}
