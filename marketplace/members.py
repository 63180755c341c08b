"""What providers and storage nodes share as members that register and heartbeat.

Both kinds are found by address, placed in an electricity region when they register,
counted online while their heartbeats keep coming, credited with uptime, and listed a
page at a time, newest heartbeat first. ``compute/providers.py`` and ``storage/nodes.py``
keep what differs (capacity, stake, shards, their reputation's inputs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.energy.grid import Grid
from marketplace.errors import ConflictError, InvalidInputError, NotFoundError
from marketplace.reputation import uptime
from marketplace.settings import Settings
from protocol.schemas import Location

logger = logging.getLogger(__name__)


class Member(Protocol):
    """A registered row: a provider or a storage node."""

    address: Any
    region: Any
    registered_at: Any
    last_heartbeat_at: Any
    heartbeats: Any


Row = TypeVar("Row")


def get(session: Session, model: type[Row], address: str, *, missing: str) -> Row:
    """The row of `address`; NotFoundError with `missing` as the message otherwise."""
    row = session.get(model, address)
    if row is None:
        raise NotFoundError(missing)
    return row


def enroll(
    session: Session,
    model: type[Row],
    *,
    address: str,
    location: Location,
    region: str,
    endpoint: str,
    now: float,
    counters: dict[str, Any],
) -> Row:
    """The member's row, created with zeroed `counters` on first registration, with its
    endpoint, position and region set and this registration counted as a heartbeat."""
    row = session.get(model, address)
    if row is None:
        new: Any = model
        row = new(address=address, registered_at=now, heartbeats=0, **counters)
        session.add(row)
        logger.info(
            "%s registered",
            getattr(model, "__tablename__", "member"),
            extra={"address": address, "region": region},
        )
    member: Any = row
    member.endpoint = endpoint
    member.lat, member.lon, member.region = location.lat, location.lon, region
    touch(member, now=now)
    return row


def registered(session: Session, model: type[Row], address: str, *, missing: str) -> Row:
    """The row of a member that must have registered; ConflictError (`missing`) if not."""
    row = session.get(model, address)
    if row is None:
        raise ConflictError(missing)
    return row


def touch(row: Member, *, now: float) -> None:
    """Count a heartbeat at `now`."""
    row.last_heartbeat_at = now
    row.heartbeats = (row.heartbeats or 0) + 1


def region_of(region: str | None, location: Location, grid: Grid) -> str:
    """The region a member registers in: the one it names, else the nearest to it."""
    if region is not None and region not in grid.region_ids():
        known = ", ".join(sorted(grid.region_ids()))
        raise InvalidInputError(f"unknown region {region!r}; use one of: {known}")
    return region or grid.nearest(location.lat, location.lon).id


def is_online(row: Member, *, now: float, settings: Settings) -> bool:
    """Whether its last heartbeat is recent enough."""
    return bool(now - row.last_heartbeat_at <= settings.offline_after_s)


def uptime_of(row: Member, *, now: float, settings: Settings) -> float:
    """Heartbeats received over heartbeats expected since it registered, in [0, 1]."""
    return uptime(
        heartbeats=row.heartbeats,
        registered_at=row.registered_at,
        now=now,
        interval_s=settings.heartbeat_interval_s,
    )


def list_page(
    session: Session,
    model: Any,
    *,
    settings: Settings,
    online: bool | None,
    region: str | None,
    limit: int,
    offset: int,
    now: float,
) -> tuple[int, Sequence[Any]]:
    """(how many match, one page of them newest heartbeat first), by region and whether
    they are online at `now`."""
    query = select(model)
    if region is not None:
        query = query.where(model.region == region)
    if online is not None:
        cutoff = now - settings.offline_after_s
        query = query.where(
            model.last_heartbeat_at >= cutoff if online else model.last_heartbeat_at < cutoff
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(model.last_heartbeat_at.desc(), model.address).limit(limit).offset(offset)
    ).all()
    return total, rows
