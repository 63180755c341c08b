"""What the ingress gateway routes: each live service its provider reported a port for.

A route is a live deployment (placed, leased, serving or ending) with a lease id and a
reported host port; its target is ``http://<provider endpoint's host>:<host port>`` and
it is healthy by the prober's last look (by the provider's report before the first
probe). The list comes with a tag of its content, so a gateway polling it learns
"unchanged" cheaply.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.services import catalog
from marketplace.store.models import ServiceRow
from protocol.schemas import canonical_json
from protocol.services import ServiceRoute, ServiceState


def routes(session: Session) -> list[ServiceRoute]:
    """Every route now, by name then lease."""
    rows = session.scalars(
        select(ServiceRow)
        .where(
            ServiceRow.status.in_(catalog.LIVE),
            ServiceRow.host_port.is_not(None),
            ServiceRow.lease_id.is_not(None),
        )
        .order_by(ServiceRow.name, ServiceRow.lease_id)
    ).all()
    out: list[ServiceRoute] = []
    for row in rows:
        host = urlsplit(row.endpoint).hostname
        if not host or row.lease_id is None:
            continue
        host = f"[{host}]" if ":" in host else host
        healthy = (
            row.probe_healthy
            if row.probe_healthy is not None
            else row.state == ServiceState.HEALTHY.value
        )
        out.append(
            ServiceRoute(
                name=row.name,
                target=f"http://{host}:{row.host_port}",
                lease_id=row.lease_id,
                healthy=healthy,
            )
        )
    return out


def tag_of(routes: list[ServiceRoute]) -> str:
    """A strong entity tag of the route list (equal lists, equal tags)."""
    body = canonical_json([r.model_dump(mode="json") for r in routes])
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
