"""Decoding escrow and registry logs, and applying them to the marketplace's tables.

Everything here runs inside the indexer's one transaction per step and does no chain I/O:
stakes are read beforehand and passed in, so applying a step is a pure database update
that either lands whole (with the cursor) or not at all.

Applying is idempotent per log: a log is recorded once per (block, log index), and a log
already recorded is skipped with its effects, so re-indexing a range changes nothing.

What the events drive: a chain job's state and its replica slots (JobEscrow), the
providers' job counters and stakes (JobEscrow, ProviderRegistry), the storage nodes'
audit counters (StorageEscrow: an answered challenge passes an audit, a slash for a
missed one fails it), which feed each node's reputation in storage placement, and
leases with the services they pay for (LeaseEscrow, :mod:`marketplace.services.leases`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_address, to_checksum_address
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from web3.contract import Contract
from web3.contract.contract import ContractEvent
from web3.types import LogReceipt

from marketplace.chain.client import Stake
from marketplace.compute import jobs
from marketplace.services import leases
from marketplace.store.models import (
    ChainEventRow,
    ChainJobRow,
    ChainReplicaRow,
    IndexerCursor,
    JobRow,
    ProviderRow,
    StorageNodeRow,
)

logger = logging.getLogger(__name__)

ESCROW, REGISTRY, STORAGE = "JobEscrow", "ProviderRegistry", "StorageEscrow"
LEASES = "LeaseEscrow"
# Registry events after which a provider's stake or activity may differ.
STAKE_EVENTS = frozenset(
    {"Staked", "UnstakeRequested", "UnstakeCancelled", "Unstaked", "ProviderSlashed"}
)
DISPUTE_REPLICAS = 3
_MAX_SAFE_INT = 2**53
_ZERO_HASH = "0x" + "00" * 32
# Chain job states only move forward; disputed, settled and cancelled end the ladder.
_RANK = {
    "funded": 0,
    "accepted": 1,
    "committed": 2,
    "revealed": 3,
    "disputed": 4,
    "settled": 5,
    "cancelled": 5,
}

EventMap = dict[str, tuple[str, ContractEvent]]
# INSERT ... ON CONFLICT DO NOTHING, which both databases the store runs on support.
_INSERT: dict[str, Callable[[Table], Any]] = {
    "postgresql": postgresql_insert,
    "sqlite": sqlite_insert,
}


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log: which contract emitted which event, where, with what arguments."""

    contract: str
    name: str
    block_number: int
    log_index: int
    tx_hash: str
    args: dict[str, Any]

    @property
    def job_id(self) -> int | None:
        value = self.args.get("jobId")
        return int(value) if value is not None else None


def event_map(contracts: Mapping[str, Contract]) -> EventMap:
    """topic0 (0x-hex, lowercase) -> (contract name, event) for every event in the ABIs."""
    topics: EventMap = {}
    for name, contract in contracts.items():
        for event in contract.all_events():
            topics[event.topic.lower()] = (name, event)
    return topics


def decode(logs: Iterable[LogReceipt], events: EventMap) -> list[ChainEvent]:
    """Decode `logs` in (block, log index) order; logs of unknown events are skipped."""
    decoded: list[ChainEvent] = []
    for log in sorted(logs, key=lambda entry: (entry["blockNumber"], entry["logIndex"])):
        if not log["topics"] or log.get("removed"):
            continue
        known = events.get(_hex(log["topics"][0]))
        if known is None:
            logger.debug(
                "skipping a log of an unknown event", extra={"tx": _hex(log["transactionHash"])}
            )
            continue
        contract, event = known
        data = event.process_log(log)
        decoded.append(
            ChainEvent(
                contract=contract,
                name=data["event"],
                block_number=int(data["blockNumber"]),
                log_index=int(data["logIndex"]),
                tx_hash=_hex(data["transactionHash"]),
                args=dict(data["args"]),
            )
        )
    return decoded


def stake_changes(events: Iterable[ChainEvent]) -> set[str]:
    """Providers whose stake may have changed in `events` (checksum addresses)."""
    return {
        to_checksum_address(e.args["provider"])
        for e in events
        if e.contract == REGISTRY and e.name in STAKE_EVENTS
    }


def json_safe(value: Any) -> Any:
    """`value` as JSON keeps it exactly: 0x-hex bytes, big ints as strings, checksum addresses."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > _MAX_SAFE_INT else value
    if isinstance(value, bytes | bytearray):
        return _hex(bytes(value))
    if isinstance(value, str):
        return to_checksum_address(value) if is_address(value) and len(value) == 42 else value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def reset_chain_state(session: Session) -> None:
    """Forget everything learned from the chain: events, chain jobs and their replicas,
    links, providers' job counters, storage nodes' audit counters, leases, cursor."""
    session.execute(delete(ChainEventRow))
    session.execute(delete(ChainReplicaRow))
    session.execute(delete(ChainJobRow))
    session.execute(delete(IndexerCursor))
    session.execute(
        update(JobRow)
        .where(JobRow.chain_job_id.is_not(None))
        .values(chain_job_id=None, status=jobs.MATCHED)
    )
    session.execute(update(ProviderRow).values(jobs_completed=0, jobs_failed=0, jobs_slashed=0))
    session.execute(update(StorageNodeRow).values(audits_passed=0, audits_failed=0))
    leases.reset(session)


def apply_events(
    session: Session, events: Sequence[ChainEvent], *, stakes: Mapping[str, Stake]
) -> int:
    """Record `events` and their effects, then set the given providers' stakes.

    Returns how many events were new. An event already recorded (same block and log
    index: a range indexed again) is skipped, effects included. Providers without a row
    are skipped: they get their stake read when they register.
    """
    recorded = 0
    for event in events:
        if not _record(session, event):
            logger.debug(
                "event already recorded; skipped",
                extra={"block": event.block_number, "log_index": event.log_index},
            )
            continue
        recorded += 1
        if event.contract == LEASES:
            leases.apply_lease_event(session, event.name, event.args, event.block_number)
            continue
        handler = _HANDLERS.get((event.contract, event.name))
        if handler is not None:
            handler(session, event)
    for address, stake in stakes.items():
        row = session.get(ProviderRow, address)
        if row is not None:
            row.staked_wei, row.stake_active = str(stake.staked_wei), stake.active
    return recorded


def _record(session: Session, event: ChainEvent) -> bool:
    """Insert `event` unless its (block, log index) is recorded; True if it was new."""
    table = ChainEventRow.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERT:  # pragma: no cover - the store runs on these two only
        raise NotImplementedError(f"no insert-or-ignore for {dialect}")
    statement = (
        _INSERT[dialect](table)
        .values(
            block_number=event.block_number,
            tx_hash=event.tx_hash,
            log_index=event.log_index,
            contract=event.contract,
            name=event.name,
            chain_job_id=event.job_id,
            args=json_safe(event.args),
        )
        .on_conflict_do_nothing(index_elements=["block_number", "log_index"])
        .returning(table.c.id)
    )
    # RETURNING yields the new row's id, or nothing when the log was already there.
    return session.execute(statement).first() is not None


# ------------------------------------------------------------------ escrow events


def _funded(session: Session, e: ChainEvent) -> None:
    job_id, a = _job_id(e), e.args
    renter = to_checksum_address(a["renter"])
    spec = _hex(a["specHash"])
    row = session.get(ChainJobRow, job_id)
    if row is None:
        row = ChainJobRow(chain_job_id=job_id)
        session.add(row)
    row.renter, row.spec_hash = renter, spec
    row.deposit_wei, row.deadline = str(a["deposit"]), int(a["deadline"])
    row.replicas = int(a["replicas"])
    row.named_providers = [to_checksum_address(p) for p in a["providers"]]
    row.accepted, row.state, row.result_hash = [], "funded", None
    row.updated_block = e.block_number
    job = _job_to_link(session, spec=spec, renter=renter, named=row.named_providers)
    if job is not None:
        job.chain_job_id, job.status = job_id, "funded"
        logger.info("job funded on chain", extra={"job_id": job.id, "chain_job_id": job_id})


def _job_to_link(session: Session, *, spec: str, renter: str, named: list[str]) -> JobRow | None:
    """The marketplace job a funding belongs to: same spec hash and renter, not yet linked.

    Several jobs can share a spec (a resubmission after `unmatched`, say), so prefer, in
    order: a matched job whose assigned providers are the ones named on chain, any matched
    job, then any job; the oldest within each.
    """
    candidates = session.scalars(
        select(JobRow)
        .where(
            JobRow.spec_hash == spec,
            func.lower(JobRow.renter) == renter.lower(),
            JobRow.chain_job_id.is_(None),
        )
        .order_by(JobRow.created_at)
    ).all()

    def rank(job: JobRow) -> int:
        if job.status != "matched":
            return 2
        assigned = sorted(a.provider for a in job.assignments)
        return 0 if assigned == sorted(named) else 1

    return min(candidates, key=rank, default=None)


def _accepted(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is None:
        return
    provider = to_checksum_address(e.args["provider"])
    if provider not in row.accepted:
        row.accepted = [*row.accepted, provider]
    slot = int(e.args["slot"])
    replica = next((r for r in row.slots if r.slot == slot), None)
    if replica is None:
        replica = ChainReplicaRow(slot=slot)
        row.slots.append(replica)
    replica.provider, replica.result_hash = provider, None
    replica.state, replica.updated_block = "accepted", e.block_number
    if len(row.accepted) >= row.replicas:
        _advance(session, row, "accepted")


def _committed(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is not None:
        _replica_to(row, e, "committed")
        _advance(session, row, "committed")


def _revealed(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is not None:
        replica = _replica_to(row, e, "revealed")
        if replica is not None:
            replica.result_hash = _hex(e.args["resultHash"])
        _advance(session, row, "revealed")


def _disputed(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is not None:
        row.replicas, row.deadline = DISPUTE_REPLICAS, int(e.args["deadline"])
        _advance(session, row, "disputed")


def _settled(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is not None:
        result = _hex(e.args["resultHash"])
        row.result_hash = None if result == _ZERO_HASH else result
        # Settling pays or slashes each replica with an event before this one; a replica
        # with neither (a dispute's unbacked dissenter) had its collateral released.
        _release(row, e, keep=("paid", "slashed"))
        _advance(session, row, "settled")


def _cancelled(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is None:
        return
    for provider in row.named_providers:
        if provider not in row.accepted:
            _count(session, ProviderRow, provider, "jobs_failed")
    _release(row, e, keep=())
    _advance(session, row, "cancelled")


def _paid(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is not None:
        _replica_to(row, e, "paid")
    _count(session, ProviderRow, to_checksum_address(e.args["provider"]), "jobs_completed")


def _slashed(session: Session, e: ChainEvent) -> None:
    row = _chain_job(session, e)
    if row is not None:
        _replica_to(row, e, "slashed")
    _count(session, ProviderRow, to_checksum_address(e.args["provider"]), "jobs_slashed")


# ----------------------------------------------------------------- storage events


def _audit_answered(session: Session, e: ChainEvent) -> None:
    _count(session, StorageNodeRow, to_checksum_address(e.args["node"]), "audits_passed")


def _audit_missed(session: Session, e: ChainEvent) -> None:
    """A deal is slashed only for a challenge its node left unanswered."""
    _count(session, StorageNodeRow, to_checksum_address(e.args["node"]), "audits_failed")


_HANDLERS: dict[tuple[str, str], Callable[[Session, ChainEvent], None]] = {
    (ESCROW, "JobFunded"): _funded,
    (ESCROW, "JobAccepted"): _accepted,
    (ESCROW, "ResultCommitted"): _committed,
    (ESCROW, "ResultRevealed"): _revealed,
    (ESCROW, "JobDisputed"): _disputed,
    (ESCROW, "JobSettled"): _settled,
    (ESCROW, "JobCancelled"): _cancelled,
    (ESCROW, "ReplicaPaid"): _paid,
    (ESCROW, "ReplicaSlashed"): _slashed,
    (STORAGE, "ChallengeAnswered"): _audit_answered,
    (STORAGE, "DealSlashed"): _audit_missed,
}


# ------------------------------------------------------------------------ helpers


def _job_id(e: ChainEvent) -> int:
    job_id = e.job_id
    assert job_id is not None, f"{e.name} without a jobId"
    return job_id


def _chain_job(session: Session, e: ChainEvent) -> ChainJobRow | None:
    row = session.get(ChainJobRow, _job_id(e))
    if row is None:
        # Only possible if the job was funded before the deployment block we start from.
        logger.warning(
            "event for a job the indexer never saw funded",
            extra={"event": e.name, "chain_job_id": e.job_id, "block": e.block_number},
        )
        return None
    row.updated_block = e.block_number
    return row


def _advance(session: Session, row: ChainJobRow, state: str) -> None:
    """Move `row` (and its marketplace job) to `state` unless it is already further on."""
    if _RANK[state] > _RANK.get(row.state, -1):
        row.state = state
    for job in session.scalars(select(JobRow).where(JobRow.chain_job_id == row.chain_job_id)):
        job.status = row.state


def _replica_to(row: ChainJobRow, e: ChainEvent, state: str) -> ChainReplicaRow | None:
    """Move the replica slot the event's provider holds to `state`."""
    provider = to_checksum_address(e.args["provider"])
    replica = next((r for r in row.slots if r.provider == provider), None)
    if replica is None:
        logger.warning(
            "replica event for a provider that holds no slot",
            extra={"event": e.name, "chain_job_id": row.chain_job_id, "provider": provider},
        )
        return None
    replica.state, replica.updated_block = state, e.block_number
    return replica


def _release(row: ChainJobRow, e: ChainEvent, *, keep: tuple[str, ...]) -> None:
    """Mark every replica slot not in a `keep` state released (collateral unlocked)."""
    for replica in row.slots:
        if replica.state not in keep:
            replica.state, replica.updated_block = "released", e.block_number


def _count(
    session: Session, model: type[ProviderRow | StorageNodeRow], address: str, counter: str
) -> None:
    row = session.get(model, address)
    if row is not None:
        setattr(row, counter, (getattr(row, counter) or 0) + 1)


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()
