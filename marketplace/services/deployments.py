"""Recording a deployment, and stopping one: the writes a renter's request makes.

Both run in the caller's transaction after the request's signature was checked. The
placement decision (:mod:`marketplace.services.placement`) is taken beforehand under the
service's placement lock, and :func:`record` checks it against the provider's free
capacity in the database again before it reserves, so a heartbeat that shrank the
provider in between never makes it overbooked. It reserves the spec's resources, which for
a deployment of several containers are their sum: the whole deployment, or nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from marketplace.compute import providers
from marketplace.errors import AuthError, NotFoundError
from marketplace.services import catalog, names
from marketplace.services.placement import Decision, Placer
from marketplace.store.models import ProviderRow, ServiceRow
from protocol.services import ServiceSpec

logger = logging.getLogger(__name__)


def record(
    session: Session,
    *,
    renter: str,
    spec: ServiceSpec,
    decision: Decision,
    reservation_s: float,
    now: float,
) -> ServiceRow:
    """Record `renter`'s deployment of `spec` as `decision` placed it, reserving the
    provider's capacity for `reservation_s` (the lease must be accepted by then).

    Raises:
        ConflictError: the name is another renter's, or runs under a lease.
    """
    replaced = names.claim(session, name=spec.name, renter=renter, now=now)
    if replaced is not None:
        catalog.end(
            session,
            replaced,
            status=catalog.ENDED,
            reason="replaced by a newer deployment",
            now=now,
        )
    row = catalog.new_row(name=spec.name, renter=renter, spec=spec, now=now)
    session.add(row)
    placement = decision.placement
    if placement is None:
        row.status, row.reason = catalog.UNMATCHED, decision.reason
        return row
    provider = session.get(ProviderRow, placement.provider)
    if provider is None or not Placer.fits_now(provider, spec):
        row.status = catalog.UNMATCHED
        row.reason = f"provider {placement.provider} filled up while it was chosen; deploy again"
        return row
    row.status = catalog.PLACED
    row.provider, row.endpoint = placement.provider, placement.endpoint
    row.distance_km, row.energy_level = placement.distance_km, placement.energy_level
    row.rate_wei_per_s = placement.rate_wei_per_s
    row.reserved, row.reserved_until = True, now + reservation_s
    providers.take(session, placement.provider, spec.resources)
    logger.info(
        "service placed",
        extra={"service": spec.name, "provider": placement.provider, "id": row.id},
    )
    return row


def stop(session: Session, *, name: str, renter: str, now: float) -> ServiceRow:
    """The owner's stop: a deployment without a lease ends now (its capacity freed); one
    with a lease is ``ending`` until its lease ends on chain (the renter closes it).

    Raises:
        NotFoundError: no live deployment of `name`.
        AuthError: `renter` is not its owner.
    """
    row = catalog.live(session, name)
    if row is None:
        raise NotFoundError(f"no live service named {name}; see /v1/services/{name}")
    if row.renter.lower() != renter.lower():
        raise AuthError(f"only the renter who deployed {name} may stop it")
    if row.lease_id is None:
        catalog.end(session, row, status=catalog.ENDED, reason="stopped by its owner", now=now)
    else:
        row.status = catalog.ENDING
        row.reason = f"stopped by its owner; it ends when lease {row.lease_id} is closed on chain"
        catalog.touch(row, now)
    return row
