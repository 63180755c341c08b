"""Provider registration, heartbeats and listings."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from marketplace.api.deps import (
    HeartbeatWriterDep,
    ListingDep,
    PagesDep,
    RawBodyDep,
    ServiceDep,
    SessionDep,
)
from marketplace.api.errors import SIGNED, refusal
from marketplace.api.public import provider_public
from marketplace.api.schemas import ProviderList, ProviderPublic
from marketplace.auth import authenticate, lock_clocks, verify
from marketplace.compute import providers
from marketplace.errors import InvalidInputError
from marketplace.store.models import ProviderRow
from protocol import purposes
from protocol.schemas import Address, Heartbeat, ProviderRegistration, Signed

router = APIRouter(prefix="/v1/providers", tags=["providers"])

REGISTER = purposes.PROVIDER_REGISTER
HEARTBEAT = purposes.PROVIDER_HEARTBEAT


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ProviderPublic, responses=SIGNED
)
def register(
    body: Signed[ProviderRegistration], raw: RawBodyDep, service: ServiceDep, session: SessionDep
) -> ProviderPublic:
    """Register or update the signing provider (purpose `dcloud/provider.register`)."""
    address = authenticate(
        session, purpose=REGISTER, raw=raw, max_skew_s=service.settings.signature_max_skew_s
    )
    row = providers.register(
        session, address=address, reg=body.payload, grid=service.grid, chain=service.chain
    )
    service.providers_changed()
    return _public(service, row)


@router.post("/heartbeat", response_model=ProviderPublic, responses=SIGNED)
async def heartbeat(
    body: Signed[Heartbeat], raw: RawBodyDep, service: ServiceDep, writer: HeartbeatWriterDep
) -> ProviderPublic:
    """Report free capacity now. Signed with purpose `dcloud/provider.heartbeat`.

    Answered once the heartbeat is committed (heartbeats arriving together share one
    transaction)."""
    signed = verify(purpose=HEARTBEAT, raw=raw, max_skew_s=service.settings.signature_max_skew_s)

    def apply(session: Session) -> ProviderPublic:
        signed.check(session, locked=True)  # a replay is refused before anything changes
        row = providers.heartbeat(
            session, address=signed.signer, hb=body.payload, chain=service.chain
        )
        signed.record(session)
        return _public(service, row)

    public = await writer.submit(apply, key=signed.signer)
    if body.payload.images is None and body.payload.price_wei is None:
        service.capacity_changed()  # free capacity only: folded in within a second
    else:
        service.providers_changed()
    return public


@router.get("", response_model=ProviderList)
async def list_providers(
    service: ServiceDep,
    listing: ListingDep,
    pages: PagesDep,
    online: Annotated[
        bool | None, Query(description="only online (true) or offline (false)")
    ] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:
    """Providers, newest heartbeat first (from a copy of every provider read at most a
    second ago, and again after any change this marketplace applied)."""
    version = service.providers_version
    everyone = listing.current(version)
    if everyone is None:
        everyone = await run_in_threadpool(listing.read, service.sessions, version)
    key = (online, region, limit, offset)
    body = pages.get(everyone, key)
    if body is None:
        now = time.time()
        total, rows = providers.page_of(
            everyone,
            settings=service.settings,
            online=online,
            region=region,
            limit=limit,
            offset=offset,
            now=now,
        )
        levels = service.grid.levels()
        page = ProviderList(
            total=total,
            limit=limit,
            offset=offset,
            items=[_public(service, r, now=now, levels=levels) for r in rows],
        )
        body = page.model_dump_json().encode()
        pages.put(everyone, key, body)
    return Response(body, media_type="application/json")


@router.get(
    "/{address}", response_model=ProviderPublic, responses={404: refusal("no such provider")}
)
def get_provider(address: Address, service: ServiceDep, session: SessionDep) -> ProviderPublic:
    """One provider by address (any letter case)."""
    from web3 import Web3

    try:
        checksum = Web3.to_checksum_address(address)
    except ValueError:
        raise InvalidInputError(f"{address} is not an Ethereum address") from None
    return _public(service, providers.get(session, checksum))


def _public(
    service: ServiceDep,
    row: ProviderRow,
    *,
    now: float | None = None,
    levels: dict[str, int] | None = None,
) -> ProviderPublic:
    return provider_public(
        row,
        now=now or time.time(),
        settings=service.settings,
        levels=levels if levels is not None else service.grid.levels(),
        stake_verified=service.stake_verified,
    )


def read_heartbeat_batch(session: Session, signers: list[Hashable]) -> None:
    """Before a batch of heartbeats: lock their signers' clocks and read their providers
    and service reservations, one query each for the whole batch."""
    addresses = [str(s) for s in signers]
    lock_clocks(session, addresses)
    providers.read_for_heartbeats(session, addresses)
