"""The chain and contracts this marketplace follows, for clients to bind the same ones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from marketplace.api.deps import ServiceDep
from marketplace.errors import NotFoundError
from protocol.network import NetworkInfo, publish

router = APIRouter(prefix="/v1/network", tags=["network"])

NOT_FOLLOWING: dict[int | str, dict[str, Any]] = {
    404: {"description": "this marketplace follows no chain (started without DCLOUD_RPC_URL)"}
}


@router.get("", response_model=NetworkInfo, responses=NOT_FOLLOWING)
def network(service: ServiceDep) -> NetworkInfo:
    """The chain id, contract addresses and ABIs this marketplace indexes and pays through.

    Clients (`dcloud job init`, `dcloud provider init`, the SDK) read this instead of a
    deployments file and check it against their own chain connection.
    """
    if service.chain is None:
        raise NotFoundError(
            "this marketplace follows no chain (it was started without DCLOUD_RPC_URL); "
            "pass the deployments file to the client with --deployments instead"
        )
    matcher = service.matcher.address if service.matcher else None
    return publish(service.chain.deployment, matcher=matcher)
