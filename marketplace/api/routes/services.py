"""Services: quote, deploy (signed by the renter), list, inspect, report (signed by the
provider), stop (signed by the owner), and the gateway's route list."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from marketplace.api.deps import RawBodyDep, ServiceDep
from marketplace.api.errors import Responses, refusal
from marketplace.api.public import image_pull_public, placement_public, service_public
from marketplace.api.schemas import (
    ServiceInputsRequest,
    ServiceList,
    ServicePlacementPublic,
    ServicePublic,
    ServiceQuotePublic,
    ServiceSnapshotReport,
    ServiceStatusName,
    ServiceStopRequest,
)
from marketplace.auth import authenticate
from marketplace.errors import ConflictError
from marketplace.service import Service
from marketplace.services import catalog, deployments, expiry, inputs, reports
from marketplace.services import routes as service_routes
from marketplace.services.names import RULE
from marketplace.services.placement import Placer
from protocol import purposes
from protocol.schemas import Address, Signed
from protocol.services import (
    ServiceName,
    ServiceReport,
    ServiceRoute,
    ServiceSpec,
    service_spec_hash,
)

router = APIRouter(prefix="/v1/services", tags=["services"])

DEPLOY, REPORT, STOP = purposes.SERVICE_DEPLOY, purposes.SERVICE_REPORT, purposes.SERVICE_STOP
INPUTS, SNAPSHOT = purposes.SERVICE_INPUTS, purposes.SERVICE_SNAPSHOT


_error = refusal
SIGNED_401: Responses = {401: _error("the signature, signer or timestamp is not acceptable")}
NOT_FOUND: Responses = {404: _error("no such service")}
CONFLICT: Responses = {409: _error("the name is another renter's, or it runs under a lease")}
NameParam = Annotated[ServiceName, Path(description=RULE)]


def _placer(request: Request, service: Service) -> Placer:
    """The process's placer (its index is cached between deployments)."""
    placer: Placer | None = getattr(request.app.state, "service_placer", None)
    if placer is None or placer.service is not service:
        placer = request.app.state.service_placer = Placer(service)
    return placer


def _chain_now(service: Service) -> int:
    if service.chain is not None:
        try:
            return service.chain.now()
        except Exception:  # the chain being away must not fail a read
            pass
    return int(time.time())


@router.post("/quote", response_model=ServiceQuotePublic)
def quote(spec: ServiceSpec, service: ServiceDep, request: Request) -> ServiceQuotePublic:
    """Where this service would run and its rate per second, without recording anything;
    `image_pull` says whether the provider must pull the renter's image first."""
    decision = _placer(request, service).decide(spec)
    p = decision.placement
    return ServiceQuotePublic(
        spec_hash=service_spec_hash(spec),
        provider=p.provider if p else None,
        endpoint=p.endpoint if p else None,
        distance_km=round(p.distance_km, 3) if p else None,
        energy_level=p.energy_level if p else None,
        energy_basis=decision.basis,
        rate_wei_per_s=p.rate_wei_per_s if p else None,
        reason=decision.reason,
        image_pull=image_pull_public(p.pull, [p.provider]) if p else None,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ServicePlacementPublic,
    responses={**SIGNED_401, **CONFLICT},
)
def deploy(
    body: Signed[ServiceSpec], raw: RawBodyDep, service: ServiceDep, request: Request
) -> ServicePlacementPublic:
    """Deploy a service signed by the renter (purpose `dcloud/service.deploy`).

    The name must be free or the renter's own (its previous deployment over, or only
    placed: then this one replaces it). The service is placed on one provider, whose
    capacity is held for `DCLOUD_SERVICE_RESERVATION_S`; the renter then opens a lease
    for that provider at `rate_wei_per_s` with `spec_hash`, and pushes the spec to it.
    Status `unmatched` comes with the reason.
    """
    spec = body.payload
    placer = _placer(request, service)
    expiry.expire_due(service)
    with service.placing:  # the scheduler's batches take capacity under the same lock
        decision = placer.decide(spec)
        with service.writing(), service.sessions() as session, session.begin():
            renter = authenticate(
                session, purpose=DEPLOY, raw=raw, max_skew_s=service.settings.signature_max_skew_s
            )
            row = deployments.record(
                session,
                renter=renter,
                spec=spec,
                decision=decision,
                reservation_s=service.settings.service_reservation_s,
                now=time.time(),
            )
            pull = decision.placement.pull if decision.placement else None
            public = placement_public(row, energy_basis=decision.basis, pull=pull)
        service.providers_changed()
    return public


@router.get("", response_model=ServiceList)
def list_services(
    service: ServiceDep,
    renter: Annotated[Address | None, Query()] = None,
    status_: Annotated[ServiceStatusName | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> ServiceList:
    """Deployments, newest first; filter by renter and status."""
    expiry.expire_due(service)
    now = _chain_now(service)
    with service.sessions() as session:
        total, rows = catalog.list_page(
            session, renter=renter, status=status_, limit=limit, offset=offset
        )
        items = [service_public(r, lease=catalog.lease_of(session, r), now=now) for r in rows]
    return ServiceList(total=total, limit=limit, offset=offset, items=items)


@router.get(
    "/routes",
    response_model=list[ServiceRoute],
    responses={304: {"description": "the routes are unchanged since the tag sent"}},
)
def list_routes(
    service: ServiceDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=256)] = None,
) -> Any:
    """Where the ingress gateway sends each service name now: live services with a lease
    and a reported host port. The `ETag` header tags the list; send it back as
    `If-None-Match` to get a bodiless 304 while nothing changed."""
    with service.sessions() as session:
        found = service_routes.routes(session)
    tag = service_routes.tag_of(found)
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return found


@router.get("/{name}", response_model=ServicePublic, responses=NOT_FOUND)
def get_service(name: NameParam, service: ServiceDep) -> ServicePublic:
    """The service's live deployment (else its latest): status, provider, route, health
    from the last report and probe, restarts, uptime, and its lease on chain."""
    expiry.expire_due(service)
    now = _chain_now(service)
    with service.sessions() as session:
        row = catalog.current(session, name)
        return service_public(row, lease=catalog.lease_of(session, row), now=now)


@router.post(
    "/{name}/report",
    response_model=ServicePublic,
    responses={
        **SIGNED_401,
        **NOT_FOUND,
        409: _error("the service runs under another lease, or the body names another service"),
    },
)
def report(
    name: NameParam, body: Signed[ServiceReport], raw: RawBodyDep, service: ServiceDep
) -> ServicePublic:
    """A provider's report of a service it runs (purpose `dcloud/service.report`): host
    port, health, restarts, uptime. Only the provider the service is placed on may send
    it (401 for anyone else)."""
    if body.payload.name != name:
        raise ConflictError(f"the report is about {body.payload.name}, not {name}")
    now = time.time()
    with service.writing(), service.sessions() as session, session.begin():
        provider = authenticate(
            session, purpose=REPORT, raw=raw, max_skew_s=service.settings.signature_max_skew_s
        )
        row, freed = reports.apply_report(
            session,
            provider=provider,
            report=body.payload,
            chain_verified=service.chain is not None,
            now=now,
        )
        public = service_public(row, lease=catalog.lease_of(session, row), now=int(now))
    if freed:
        service.providers_changed()
    return public


@router.post(
    "/{name}/stop",
    response_model=ServicePublic,
    responses={**SIGNED_401, **NOT_FOUND, 409: _error("the body names another service")},
)
def stop(
    name: NameParam, body: Signed[ServiceStopRequest], raw: RawBodyDep, service: ServiceDep
) -> ServicePublic:
    """The owner stops its service (purpose `dcloud/service.stop`): without a lease it
    ends now and its capacity is freed; with one it is `ending` until the lease, which
    the renter closes on chain, ends."""
    if body.payload.name != name:
        raise ConflictError(f"the request stops {body.payload.name}, not {name}")
    now = time.time()
    with service.writing(), service.sessions() as session, session.begin():
        renter = authenticate(
            session, purpose=STOP, raw=raw, max_skew_s=service.settings.signature_max_skew_s
        )
        row = deployments.stop(session, name=name, renter=renter, now=now)
        public = service_public(row, lease=catalog.lease_of(session, row), now=int(now))
    service.providers_changed()
    return public


@router.post(
    "/{name}/inputs",
    response_model=ServicePublic,
    responses={
        **SIGNED_401,
        **NOT_FOUND,
        409: _error("the service runs under another lease, or the body names another service"),
        422: _error("the files are not the spec's, or too large to keep"),
    },
)
def keep_inputs(
    name: NameParam, body: Signed[ServiceInputsRequest], raw: RawBodyDep, service: ServiceDep
) -> ServicePublic:
    """The owner leaves a copy of its service's inputs for a failover (purpose
    `dcloud/service.inputs`): exactly the files its spec declares, at most
    `DCLOUD_FAILOVER_INPUTS_MB` in all. A failover sends them to the new provider."""
    if body.payload.name != name:
        raise ConflictError(f"the request is about {body.payload.name}, not {name}")
    now = time.time()
    with service.writing(), service.sessions() as session, session.begin():
        renter = authenticate(
            session, purpose=INPUTS, raw=raw, max_skew_s=service.settings.signature_max_skew_s
        )
        row = inputs.keep(
            session,
            renter=renter,
            name=name,
            lease_id=body.payload.lease_id,
            inputs=body.payload.inputs,
            max_bytes=int(service.settings.failover_inputs_mb * 1e6),
            snapshot_key=body.payload.snapshot_key,
        )
        return service_public(row, lease=catalog.lease_of(session, row), now=int(now))


@router.post(
    "/{name}/snapshot",
    response_model=ServicePublic,
    responses={
        **SIGNED_401,
        **NOT_FOUND,
        409: _error("the service runs under another lease, or the body names another service"),
    },
)
def snapshot(
    name: NameParam, body: Signed[ServiceSnapshotReport], raw: RawBodyDep, service: ServiceDep
) -> ServicePublic:
    """Its provider says where the newest snapshot of the service's /data is (purpose
    `dcloud/service.snapshot`); a failover restores it on the new provider."""
    if body.payload.name != name:
        raise ConflictError(f"the report is about {body.payload.name}, not {name}")
    now = time.time()
    with service.writing(), service.sessions() as session, session.begin():
        provider = authenticate(
            session, purpose=SNAPSHOT, raw=raw, max_skew_s=service.settings.signature_max_skew_s
        )
        row = inputs.keep_snapshot(
            session,
            provider=provider,
            name=name,
            lease_id=body.payload.lease_id,
            snapshot=body.payload.snapshot,
        )
        return service_public(row, lease=catalog.lease_of(session, row), now=int(now))
