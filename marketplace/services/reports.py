"""A provider's report of a service it runs: its host port, health, restarts, uptime.

Only the provider the service is placed on may report it. A report means the provider
runs the service and counts it in the free capacity it reports, so the reservation the
marketplace held for it is given back; with no chain to link the lease (a marketplace
without ``DCLOUD_RPC_URL``), the reported lease id is taken as the service's.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from marketplace.errors import AuthError, ConflictError, NotFoundError
from marketplace.services import catalog
from marketplace.store.models import ServiceRow
from protocol.services import ServiceReport


def apply_report(
    session: Session,
    *,
    provider: str,
    report: ServiceReport,
    chain_verified: bool,
    now: float,
) -> tuple[ServiceRow, bool]:
    """Record `report` from `provider`; returns the row and whether capacity was freed.

    Raises:
        NotFoundError: no live deployment of the name.
        AuthError: `provider` is not the one the service is placed on.
        ConflictError: the service runs under another lease.
    """
    row = catalog.live(session, report.name)
    if row is None:
        raise NotFoundError(f"no live service named {report.name}")
    if row.provider is None or row.provider.lower() != provider.lower():
        raise AuthError(
            f"only the provider {report.name} is placed on may report it; you are {provider}"
        )
    if row.lease_id is not None and row.lease_id != report.lease_id:
        raise ConflictError(f"{report.name} runs under lease {row.lease_id}, not {report.lease_id}")
    if row.lease_id is None and not chain_verified:
        row.lease_id = report.lease_id
    row.host_port, row.state = report.host_port, report.state.value
    row.restarts, row.uptime_s = report.restarts, report.uptime_s
    row.last_error, row.reported_at = report.last_error, now
    if row.lease_id is not None:
        row.reserved_until = None  # running under its lease: no longer a reservation
    freed = catalog.release(session, row) if row.reserved else False
    catalog.touch(row, now)
    return row, freed
