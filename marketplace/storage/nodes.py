"""Storage nodes: registration, heartbeats, renters' reports, reputation and placement.

A node is online while its last heartbeat is newer than ``settings.offline_after_s``
(the same rule as providers). Its reputation is the beta score of
:mod:`marketplace.reputation` over what renters and audits saw: shards served intact
count as completed, unreachable or missing shards as failed, and a shard served with the
wrong hash or a failed audit as slashed (three times a failure); then scaled by uptime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import members
from marketplace.energy.grid import Grid
from marketplace.errors import InvalidInputError
from marketplace.reputation import reputation
from marketplace.settings import Settings
from marketplace.storage.placement import Candidate, cold_weight, hot_weight, place
from marketplace.store.models import StorageNodeRow
from protocol.schemas import Location
from protocol.storage import (
    Placement,
    PlacementRequest,
    ReportResult,
    StorageHeartbeat,
    StorageNodeList,
    StorageNodePublic,
    StorageNodeRegistration,
    StorageReport,
)

logger = logging.getLogger(__name__)

LATENCY_EWMA = 0.2
"""Weight of a new latency report in the running mean."""


def register(
    session: Session,
    *,
    address: str,
    reg: StorageNodeRegistration,
    grid: Grid,
    now: float | None = None,
) -> StorageNodeRow:
    """Create or update the node `address` from its registration."""
    now = time.time() if now is None else now
    row = members.enroll(
        session,
        StorageNodeRow,
        address=address,
        location=reg.location,
        region=members.region_of(reg.region, reg.location, grid),
        endpoint=reg.endpoint,
        now=now,
        counters={
            "fetch_ok": 0,
            "fetch_failed": 0,
            "fetch_corrupt": 0,
            "latency_ms": None,
            "audits_passed": 0,
            "audits_failed": 0,
        },
    )
    row.capacity_bytes, row.free_bytes, row.shards = reg.capacity_bytes, reg.free_bytes, reg.shards
    return row


def heartbeat(
    session: Session, *, address: str, hb: StorageHeartbeat, now: float | None = None
) -> StorageNodeRow:
    """Record the node's free space now."""
    now = time.time() if now is None else now
    row = members.registered(
        session,
        StorageNodeRow,
        address,
        missing=f"storage node {address} is not registered; register first",
    )
    if hb.free_bytes > row.capacity_bytes:
        raise InvalidInputError(
            f"free_bytes {hb.free_bytes} exceeds the registered capacity {row.capacity_bytes}; "
            "register again with the new quota"
        )
    row.free_bytes, row.shards = hb.free_bytes, hb.shards
    members.touch(row, now=now)
    return row


def apply_report(session: Session, report: StorageReport) -> ReportResult:
    """Add a renter's observations to the nodes' counters; unknown nodes are listed back."""
    applied, unknown = 0, []
    for entry in report.reports:
        row = session.get(StorageNodeRow, entry.node, with_for_update=True)
        if row is None:
            unknown.append(entry.node)
            continue
        row.fetch_ok += entry.ok
        row.fetch_failed += entry.failed
        row.fetch_corrupt += entry.corrupt
        if entry.latency_ms is not None:
            row.latency_ms = (
                entry.latency_ms
                if row.latency_ms is None
                else (1 - LATENCY_EWMA) * row.latency_ms + LATENCY_EWMA * entry.latency_ms
            )
        applied += 1
    return ReportResult(applied=applied, unknown=unknown)


def get(session: Session, address: str) -> StorageNodeRow:
    return members.get(
        session,
        StorageNodeRow,
        address,
        missing=f"no storage node {address}; list them at /v1/storage/nodes",
    )


def is_online(row: StorageNodeRow, *, now: float, settings: Settings) -> bool:
    return members.is_online(row, now=now, settings=settings)


def reputation_of(row: StorageNodeRow, *, now: float, settings: Settings) -> tuple[float, float]:
    """(uptime, reputation) of the node now, both in [0, 1]."""
    up = members.uptime_of(row, now=now, settings=settings)
    rep = reputation(
        completed=row.fetch_ok + row.audits_passed,
        failed=row.fetch_failed,
        slashed=row.fetch_corrupt + row.audits_failed,
        uptime_ratio=up,
    )
    return up, rep


def to_public(row: StorageNodeRow, *, now: float, settings: Settings) -> StorageNodePublic:
    up, rep = reputation_of(row, now=now, settings=settings)
    return StorageNodePublic(
        address=row.address,
        endpoint=row.endpoint,
        location=Location(lat=row.lat, lon=row.lon),
        region=row.region,
        capacity_bytes=row.capacity_bytes,
        free_bytes=row.free_bytes,
        used_bytes=max(0, row.capacity_bytes - row.free_bytes),
        shards=row.shards,
        online=is_online(row, now=now, settings=settings),
        registered_at=row.registered_at,
        last_heartbeat_at=row.last_heartbeat_at,
        uptime=round(up, 4),
        reputation=round(rep, 4),
        fetch_ok=row.fetch_ok,
        fetch_failed=row.fetch_failed,
        fetch_corrupt=row.fetch_corrupt,
        latency_ms=None if row.latency_ms is None else round(row.latency_ms, 3),
        audits_passed=row.audits_passed,
        audits_failed=row.audits_failed,
    )


def list_nodes(
    session: Session,
    *,
    settings: Settings,
    online: bool | None,
    region: str | None,
    limit: int,
    offset: int,
    now: float | None = None,
) -> StorageNodeList:
    """Nodes, newest heartbeat first."""
    now = time.time() if now is None else now
    total, rows = members.list_page(
        session,
        StorageNodeRow,
        settings=settings,
        online=online,
        region=region,
        limit=limit,
        offset=offset,
        now=now,
    )
    return StorageNodeList(
        total=total,
        limit=limit,
        offset=offset,
        items=[to_public(r, now=now, settings=settings) for r in rows],
    )


def placement(
    session: Session,
    *,
    request: PlacementRequest,
    settings: Settings,
    rng: np.random.Generator | None = None,
    now: float | None = None,
) -> Placement:
    """n distinct online nodes per segment, spread over regions, weighted by reputation."""
    now = time.time() if now is None else now
    excluded = {a.lower() for a in request.exclude}
    cutoff = now - settings.offline_after_s
    rows: Sequence[StorageNodeRow] = [
        r
        for r in session.scalars(
            select(StorageNodeRow)
            .where(StorageNodeRow.last_heartbeat_at >= cutoff)
            .order_by(StorageNodeRow.address)
        ).all()
        if r.address.lower() not in excluded
    ]
    candidates = [
        Candidate(
            id=r.address,
            region=r.region,
            free_bytes=r.free_bytes,
            reputation=reputation_of(r, now=now, settings=settings)[1],
        )
        for r in rows
    ]
    chosen = place(
        candidates,
        n=request.n,
        segments=request.segments,
        shard_bytes=request.shard_bytes,
        rng=rng or np.random.default_rng(),
        weight=cold_weight if request.cold else hot_weight,
    )
    used = sorted({i for seg in chosen for i in seg})
    position = {old: new for new, old in enumerate(used)}
    return Placement(
        nodes=[to_public(rows[i], now=now, settings=settings) for i in used],
        segments=[[position[i] for i in seg] for seg in chosen],
    )
