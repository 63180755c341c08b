"""Reservations no accepted lease took up expire, and their capacity is given back.

A placed service holds its provider's capacity for ``DCLOUD_SERVICE_RESERVATION_S``; if
its lease is not accepted by then, the deployment becomes ``expired`` and the capacity is
released at once. Expiry runs before placements and service reads, and in the services
worker's periodic round.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from marketplace.service import Service
from marketplace.services import catalog
from marketplace.store.models import ServiceRow

logger = logging.getLogger(__name__)


def _due(now: float) -> tuple[ColumnElement[bool], ...]:
    return (
        ServiceRow.status.in_(catalog.LIVE),
        ServiceRow.reserved_until.is_not(None),
        ServiceRow.reserved_until < now,
    )


def expire(session: Session, *, now: float, after_s: float) -> list[str]:
    """Expire the deployments whose reservation ran out; returns their names."""
    expired: list[str] = []
    for row in session.scalars(select(ServiceRow).where(*_due(now))).all():
        catalog.end(
            session,
            row,
            status=catalog.EXPIRED,
            reason=f"no lease accepted within {after_s:g} s of placement",
            now=now,
        )
        expired.append(row.name)
    return expired


def expire_due(service: Service, *, now: float | None = None) -> int:
    """Expire what is due now; writes only when something is. Returns how many expired."""
    now = time.time() if now is None else now
    with service.sessions() as session:
        if session.scalar(select(ServiceRow.id).where(*_due(now)).limit(1)) is None:
            return 0
    after_s = service.settings.service_reservation_s
    with service.writing(), service.sessions() as session, session.begin():
        expired = expire(session, now=now, after_s=after_s)
    if expired:
        service.providers_changed()
        logger.info("expired %d service reservations", len(expired), extra={"services": expired})
    return len(expired)
