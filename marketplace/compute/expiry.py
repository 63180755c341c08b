"""Matched jobs that nobody funds expire, and the capacity they held is given back.

A match reserves room on its providers. If the renter does not fund the escrow within
``DCLOUD_MATCH_EXPIRES_S`` of matching (by default the life of the matcher's signed
assignment, after which a replicated job cannot be funded from it anyway), the job's
status becomes ``expired`` and its reservations are released at once. A job the indexer
linked to a funding on chain is never expired. Expiry runs lazily (before job reads and
before each matching batch) and in a periodic sweep (:func:`start_sweeper`).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from marketplace.compute import jobs, providers
from marketplace.service import Service
from marketplace.store.models import JobRow
from protocol.schemas import JobSpec

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 10.0


def reason(after_s: float) -> str:
    return f"not funded within {after_s:g} s of matching"


def _due(now: float, after_s: float) -> tuple[ColumnElement[bool], ...]:
    """Matched, not linked to a funding, matched more than `after_s` before `now`."""
    return (
        JobRow.status == jobs.MATCHED,
        JobRow.chain_job_id.is_(None),
        JobRow.matched_at < now - after_s,
    )


def expire(session: Session, *, now: float, after_s: float) -> list[str]:
    """Expire the unfunded jobs matched more than `after_s` before `now`; returns their ids.

    Each job flips with a conditional update (still matched, still unlinked), so a funding
    the indexer links at the same moment wins and its job keeps its reservations.
    """
    due = session.scalars(select(JobRow).where(*_due(now, after_s))).all()
    expired: list[str] = []
    for row in due:
        flipped = session.execute(
            update(JobRow)
            .where(
                JobRow.id == row.id,
                JobRow.status == jobs.MATCHED,
                JobRow.chain_job_id.is_(None),
            )
            .values(status=jobs.EXPIRED, reason=reason(after_s))
            .execution_options(synchronize_session=False)
        )
        if getattr(flipped, "rowcount", 0) != 1:
            continue
        spec = JobSpec.model_validate(row.spec)
        for a in row.assignments if row.start_at is None else ():  # held: nothing reserved
            providers.release(session, a.provider, spec, reserved_at=row.matched_at or 0.0)
        expired.append(row.id)
    return expired


def expire_due(service: Service, *, now: float | None = None) -> int:
    """Expire what is due now; writes only when something is. Returns how many expired."""
    now = time.time() if now is None else now
    after_s = service.settings.match_expires_s
    with service.sessions() as session:
        any_due = session.scalar(select(JobRow.id).where(*_due(now, after_s)).limit(1))
    if any_due is None:
        return 0
    with service.writing(), service.sessions() as session, session.begin():
        expired = expire(session, now=now, after_s=after_s)
    if expired:
        service.providers_changed()
        logger.info("expired %d unfunded jobs", len(expired), extra={"jobs": expired})
    return len(expired)


def sweep_forever(service: Service, stop: threading.Event) -> None:
    """Expire due jobs every few seconds until `stop` is set."""
    every_s = min(SWEEP_EVERY_S, service.settings.match_expires_s)
    while not stop.wait(every_s):
        try:
            expire_due(service)
        except Exception:  # a failed sweep must not end the sweeping
            if stop.is_set():
                return
            logger.exception("expiry sweep failed; retrying in %g s", every_s)


def start_sweeper(service: Service, stop: threading.Event) -> threading.Thread:
    """Run :func:`sweep_forever` in a daemon thread that ends once `stop` is set."""
    thread = threading.Thread(
        target=sweep_forever, args=(service, stop), name="expiry", daemon=True
    )
    thread.start()
    return thread
