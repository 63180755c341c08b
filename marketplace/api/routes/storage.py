"""Storage nodes: registration, heartbeats, listings, shard placement and renters' reports."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, status
from web3 import Web3

from marketplace.api.deps import RawBodyDep, ServiceDep, SessionDep
from marketplace.api.errors import SIGNED, refusal
from marketplace.auth import authenticate
from marketplace.errors import InvalidInputError
from marketplace.storage import nodes as storage_nodes
from protocol.schemas import Address, Signed
from protocol.storage import (
    HEARTBEAT,
    REGISTER,
    REPORT,
    Placement,
    PlacementRequest,
    ReportResult,
    StorageHeartbeat,
    StorageNodeList,
    StorageNodePublic,
    StorageNodeRegistration,
    StorageReport,
)

router = APIRouter(prefix="/v1/storage", tags=["storage"])


@router.post(
    "/nodes",
    status_code=status.HTTP_201_CREATED,
    response_model=StorageNodePublic,
    responses=SIGNED,
)
def register(
    body: Signed[StorageNodeRegistration],
    raw: RawBodyDep,
    service: ServiceDep,
    session: SessionDep,
) -> StorageNodePublic:
    """Register or update the signing storage node (purpose `dcloud/storage.register`)."""
    address = authenticate(
        session, purpose=REGISTER, raw=raw, max_skew_s=service.settings.signature_max_skew_s
    )
    row = storage_nodes.register(session, address=address, reg=body.payload, grid=service.grid)
    return storage_nodes.to_public(row, now=row.last_heartbeat_at, settings=service.settings)


@router.post("/nodes/heartbeat", response_model=StorageNodePublic, responses=SIGNED)
def heartbeat(
    body: Signed[StorageHeartbeat], raw: RawBodyDep, service: ServiceDep, session: SessionDep
) -> StorageNodePublic:
    """Report free space now (purpose `dcloud/storage.heartbeat`)."""
    address = authenticate(
        session, purpose=HEARTBEAT, raw=raw, max_skew_s=service.settings.signature_max_skew_s
    )
    row = storage_nodes.heartbeat(session, address=address, hb=body.payload)
    return storage_nodes.to_public(row, now=row.last_heartbeat_at, settings=service.settings)


@router.get("/nodes", response_model=StorageNodeList)
def list_nodes(
    service: ServiceDep,
    session: SessionDep,
    online: Annotated[
        bool | None, Query(description="only online (true) or offline (false)")
    ] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> StorageNodeList:
    """Storage nodes, newest heartbeat first."""
    return storage_nodes.list_nodes(
        session,
        settings=service.settings,
        online=online,
        region=region,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/nodes/{address}",
    response_model=StorageNodePublic,
    responses={404: refusal("no such storage node")},
)
def get_node(address: Address, service: ServiceDep, session: SessionDep) -> StorageNodePublic:
    """One storage node by address (any letter case)."""
    try:
        checksum = Web3.to_checksum_address(address)
    except ValueError:
        raise InvalidInputError(f"{address} is not an Ethereum address") from None
    row = storage_nodes.get(session, checksum)
    return storage_nodes.to_public(row, now=time.time(), settings=service.settings)


@router.post(
    "/placement",
    response_model=Placement,
    responses={503: refusal("too few storage nodes online with room for the segments")},
)
def placement(body: PlacementRequest, service: ServiceDep, session: SessionDep) -> Placement:
    """n distinct online nodes for each segment, spread over regions, reliable ones first.

    A 503 says how many nodes had room when there are not enough.
    """
    return storage_nodes.placement(session, request=body, settings=service.settings)


@router.post("/reports", response_model=ReportResult, responses=SIGNED)
def report(
    body: Signed[StorageReport], raw: RawBodyDep, service: ServiceDep, session: SessionDep
) -> ReportResult:
    """A renter's observations of nodes (purpose `dcloud/storage.report`): shards served
    intact, failed, or corrupt, and latency. They feed the nodes' reputation."""
    authenticate(session, purpose=REPORT, raw=raw, max_skew_s=service.settings.signature_max_skew_s)
    return storage_nodes.apply_report(session, body.payload)
