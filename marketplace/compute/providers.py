"""Provider registration, heartbeats, liveness and reputation, and how matching sees a provider."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace import members
from marketplace.chain.client import ChainClient
from marketplace.energy.grid import Grid
from marketplace.errors import InvalidInputError
from marketplace.matching.records import Provider, Resources
from marketplace.reputation import reputation
from marketplace.settings import Settings
from marketplace.store.models import ProviderRow, ServiceRow
from protocol.schemas import Capacity, Heartbeat, JobSpec, ProviderRegistration

logger = logging.getLogger(__name__)


def register(
    session: Session,
    *,
    address: str,
    reg: ProviderRegistration,
    grid: Grid,
    chain: ChainClient | None,
    now: float | None = None,
) -> ProviderRow:
    """Create or update the provider `address` from its registration."""
    now = time.time() if now is None else now
    row = members.enroll(
        session,
        ProviderRow,
        address=address,
        location=reg.location,
        region=members.region_of(reg.region, reg.location, grid),
        endpoint=reg.endpoint,
        now=now,
        counters={
            "jobs_completed": 0,
            "jobs_failed": 0,
            "jobs_slashed": 0,
            "staked_wei": "0",
            "stake_active": False,
        },
    )
    row.total_cpu, row.total_memory_mb = reg.total.cpu, reg.total.memory_mb
    row.total_gpu, row.total_disk_mb = reg.total.gpu, reg.total.disk_mb
    _set_free(row, reg.free)
    _hold_service_reservations(session, row)
    row.price_wei = reg.price_wei
    row.images = sorted(set(reg.images))
    _refresh_stake(row, chain)
    return row


def heartbeat(
    session: Session,
    *,
    address: str,
    hb: Heartbeat,
    chain: ChainClient | None,
    now: float | None = None,
) -> ProviderRow:
    """Record a heartbeat: free capacity (and optionally images and price) now."""
    now = time.time() if now is None else now
    row = members.registered(
        session,
        ProviderRow,
        address,
        missing=f"provider {address} is not registered; register before heartbeats",
    )
    total = Capacity(
        cpu=row.total_cpu,
        memory_mb=row.total_memory_mb,
        gpu=row.total_gpu,
        disk_mb=row.total_disk_mb,
    )
    if not hb.free.fits_in(total):
        raise InvalidInputError(
            "free capacity exceeds the registered total; register again with the new total"
        )
    _set_free(row, hb.free)
    _hold_service_reservations(session, row)
    if hb.images is not None:
        row.images = sorted(set(hb.images))
    if hb.price_wei is not None:
        row.price_wei = hb.price_wei
    members.touch(row, now=now)
    _refresh_stake(row, chain)
    return row


def get(session: Session, address: str) -> ProviderRow:
    return members.get(
        session,
        ProviderRow,
        address,
        missing=f"no provider {address}; list providers at /v1/providers",
    )


def list_page(
    session: Session,
    *,
    settings: Settings,
    online: bool | None,
    region: str | None,
    limit: int,
    offset: int,
    now: float,
) -> tuple[int, Sequence[ProviderRow]]:
    """(how many providers match, one page of them newest heartbeat first), by region and
    whether they are online at `now`."""
    return members.list_page(
        session,
        ProviderRow,
        settings=settings,
        online=online,
        region=region,
        limit=limit,
        offset=offset,
        now=now,
    )


def is_online(row: ProviderRow, *, now: float, settings: Settings) -> bool:
    return members.is_online(row, now=now, settings=settings)


def reputation_of(row: ProviderRow, *, now: float, settings: Settings) -> tuple[float, float]:
    """(uptime, reputation) of the provider now."""
    up = members.uptime_of(row, now=now, settings=settings)
    rep = reputation(
        completed=row.jobs_completed,
        failed=row.jobs_failed,
        slashed=row.jobs_slashed,
        uptime_ratio=up,
    )
    return up, rep


def to_matching(
    row: ProviderRow,
    *,
    now: float,
    settings: Settings,
    levels: dict[str, int],
    require_stake: bool,
) -> Provider:
    """The provider as matching sees it; unstaked providers count as offline."""
    _, rep = reputation_of(row, now=now, settings=settings)
    online = is_online(row, now=now, settings=settings) and (row.stake_active or not require_stake)
    return Provider(
        id=row.address,
        lat=row.lat,
        lon=row.lon,
        free=Resources(
            cpu=row.free_cpu,
            memory_mb=row.free_memory_mb,
            gpu=row.free_gpu,
            disk_mb=row.free_disk_mb,
        ),
        price_wei=row.price_wei,
        images=frozenset(row.images),
        online=online,
        energy_level=levels.get(row.region, 0),
        reputation=min(1.0, max(0.0, rep)),
    )


def free_of(row: ProviderRow) -> Capacity:
    return Capacity(
        cpu=max(0.0, row.free_cpu),
        memory_mb=max(0, row.free_memory_mb),
        gpu=max(0, row.free_gpu),
        disk_mb=max(0, row.free_disk_mb),
    )


def reserve(session: Session, address: str, spec: JobSpec) -> None:
    """Take the job's demand off the provider's free capacity until its next heartbeat
    (which reports what is really free) or until :func:`release`."""
    take(session, address, spec.resources)


def take(session: Session, address: str, r: Capacity) -> None:
    """Take `r` off the provider's free capacity (never below zero)."""
    row = session.get(ProviderRow, address)
    if row is not None:
        _subtract(row, r.cpu, r.memory_mb, r.gpu, r.disk_mb)


def _subtract(row: ProviderRow, cpu: float, memory_mb: int, gpu: int, disk_mb: int) -> None:
    row.free_cpu = max(0.0, row.free_cpu - cpu)
    row.free_memory_mb = max(0, row.free_memory_mb - memory_mb)
    row.free_gpu = max(0, row.free_gpu - gpu)
    row.free_disk_mb = max(0, row.free_disk_mb - disk_mb)


def release(session: Session, address: str, spec: JobSpec, *, reserved_at: float) -> None:
    """Give back what :func:`reserve` took at `reserved_at`, unless a heartbeat or
    registration since then already replaced the free capacity (and so dropped the
    reservation); never above the provider's total."""
    row = session.get(ProviderRow, address)
    if row is None or row.last_heartbeat_at > reserved_at:
        return
    give_back(session, address, spec.resources)


def give_back(session: Session, address: str, r: Capacity) -> None:
    """Return `r` to the provider's free capacity, never above its total."""
    row = session.get(ProviderRow, address)
    if row is None:
        return
    row.free_cpu = min(row.total_cpu, row.free_cpu + r.cpu)
    row.free_memory_mb = min(row.total_memory_mb, row.free_memory_mb + r.memory_mb)
    row.free_gpu = min(row.total_gpu, row.free_gpu + r.gpu)
    row.free_disk_mb = min(row.total_disk_mb, row.free_disk_mb + r.disk_mb)


def _hold_service_reservations(session: Session, row: ProviderRow) -> None:
    """Take off the capacity of services placed on the provider that it does not count yet.

    A provider reports free capacity net of the services it runs; one placed on it and
    not yet running there (its lease not accepted, or accepted and not reported) is still
    held here, across heartbeats, until it runs, expires or ends.
    """
    read: dict[str, tuple[float, int, int, int]] | None = session.info.get(_HELD)
    if read is not None and row.address in read:
        _subtract(row, *read[row.address])
        return
    with session.no_autoflush:  # a new row is not complete yet
        held = session.execute(
            select(*_HELD_SUMS).where(
                ServiceRow.provider == row.address, ServiceRow.reserved.is_(True)
            )
        ).one()
    _subtract(row, *held)


_READ = "dcloud.providers.read"  # session.info key: the rows read_for_heartbeats read
_HELD = "dcloud.providers.held"  # session.info key: reservations read by read_for_heartbeats
_HELD_SUMS = (
    func.coalesce(func.sum(ServiceRow.cpu), 0.0),
    func.coalesce(func.sum(ServiceRow.memory_mb), 0),
    func.coalesce(func.sum(ServiceRow.gpu), 0),
    func.coalesce(func.sum(ServiceRow.disk_mb), 0),
)


def read_for_heartbeats(session: Session, addresses: Collection[str]) -> None:
    """Read the providers `addresses` and the service capacity held on them, two queries
    for all, so the :func:`heartbeat` calls that follow in this session need none."""
    wanted = set(addresses)
    # the session's identity map holds rows weakly: keep them for the session's life
    session.info[_READ] = session.scalars(
        select(ProviderRow).where(ProviderRow.address.in_(wanted))
    ).all()
    held: dict[str, tuple[float, int, int, int]] = dict.fromkeys(wanted, (0.0, 0, 0, 0))
    rows = session.execute(
        select(ServiceRow.provider, *_HELD_SUMS)
        .where(ServiceRow.provider.in_(wanted), ServiceRow.reserved.is_(True))
        .group_by(ServiceRow.provider)
    ).all()
    for provider, cpu, memory_mb, gpu, disk_mb in rows:
        if provider is not None:
            held[provider] = (cpu, memory_mb, gpu, disk_mb)
    session.info[_HELD] = held


def _set_free(row: ProviderRow, free: Capacity) -> None:
    row.free_cpu, row.free_memory_mb = free.cpu, free.memory_mb
    row.free_gpu, row.free_disk_mb = free.gpu, free.disk_mb


def _refresh_stake(row: ProviderRow, chain: ChainClient | None) -> None:
    if chain is None:
        return
    try:
        stake = chain.stake(row.address)
    except Exception as exc:  # the chain being down must not fail a heartbeat
        logger.warning("cannot read stake of %s (%s); keeping the last value", row.address, exc)
        return
    row.staked_wei, row.stake_active = str(stake.staked_wei), stake.active


@dataclass(frozen=True)
class Snapshot:
    """Every provider as matching sees it now, with what placing a match needs."""

    records: list[Provider]
    endpoints: dict[str, str]
    regions: dict[str, str]
    unstaked: frozenset[str]  # online, but without an active stake (when stake is checked)


def snapshot(
    session: Session, *, settings: Settings, levels: dict[str, int], stake_verified: bool
) -> Snapshot:
    """Read every provider once into a :class:`Snapshot` (the job scheduler's and service
    placement's index are built from it)."""
    now = time.time()
    rows = session.scalars(select(ProviderRow)).all()
    return Snapshot(
        records=[
            to_matching(r, now=now, settings=settings, levels=levels, require_stake=stake_verified)
            for r in rows
        ],
        endpoints={r.address: r.endpoint for r in rows},
        regions={r.address: r.region for r in rows},
        unstaked=frozenset(
            r.address
            for r in rows
            if stake_verified and not r.stake_active and is_online(r, now=now, settings=settings)
        ),
    )


LISTING_MAX_AGE_S = 1.0


class Listing:
    """Every provider row, read once and shared by listings until providers change.

    The rows are detached copies: a listing filters, orders and pages them in memory
    instead of querying per request. They are read again when this process notes a
    provider change (``version``) or when older than `max_age_s` (writes this process
    does not note, such as the chain indexer's counters or another replica's heartbeats).
    """

    def __init__(self, *, max_age_s: float = LISTING_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._rows: list[ProviderRow] = []
        self._version: int | None = None
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def current(self, version: int) -> list[ProviderRow] | None:
        """The rows if read at `version` and recently enough, else None (call :meth:`read`)."""
        fresh = time.monotonic() - self._read_at <= self.max_age_s
        return self._rows if fresh and self._version == version else None

    def read(self, session_factory: Callable[[], Session], version: int) -> list[ProviderRow]:
        """Read every row now (blocking), newest heartbeat first, for `version`."""
        with self._lock:
            if (rows := self.current(version)) is not None:  # another request just read
                return rows
            with session_factory() as session:
                rows = list(
                    session.scalars(
                        select(ProviderRow).order_by(
                            ProviderRow.last_heartbeat_at.desc(), ProviderRow.address
                        )
                    ).all()
                )
                session.expunge_all()
            self._rows, self._version, self._read_at = rows, version, time.monotonic()
            return rows


def page_of(
    rows: Sequence[ProviderRow],
    *,
    settings: Settings,
    online: bool | None,
    region: str | None,
    limit: int,
    offset: int,
    now: float,
) -> tuple[int, list[ProviderRow]]:
    """What :func:`list_page` answers, from rows already ordered newest heartbeat first."""
    cutoff = now - settings.offline_after_s
    found = [
        r
        for r in rows
        if (region is None or r.region == region)
        and (online is None or (r.last_heartbeat_at >= cutoff) == online)
    ]
    return len(found), found[offset : offset + limit]
