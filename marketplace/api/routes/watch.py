"""Other watchers: the open down stretches to co-sign, and their co-signatures.

A LeaseEscrow watcher other than this marketplace (``dcloud watch run``) reads the
stretches the prober sees down, looks at each service through its public name itself,
and co-signs (EIP-712 ``WatchReport``) those it also sees down; the marketplace adds the
signatures to its next ``reportDown`` (:mod:`marketplace.services.watch`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from marketplace.api.deps import ServiceDep
from marketplace.api.schemas import MAX_ID
from marketplace.errors import NotFoundError
from marketplace.services.watch import CosignError, DownWatch
from protocol.leases import Leases

router = APIRouter(prefix="/v1/watch", tags=["watch"])

Hex65 = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="a 65-byte signature, 0x-hex")
NO_CHAIN: dict[int | str, dict[str, Any]] = {
    404: {"description": "this marketplace follows no chain, so it posts no down reports"}
}


class DownStretchPublic(BaseModel):
    lease_id: int
    name: str = Field(description="the service's name: look at NAME.apps.<domain>")
    start: int = Field(description="the WatchReport's `from`: when it was first seen down")
    end: int = Field(description="the WatchReport's `to`: now, as this marketplace sees it")


class DownStretches(BaseModel):
    """What to co-sign, and the EIP-712 domain to sign it in."""

    chain_id: int
    escrow: str = Field(description="LeaseEscrow's address (the domain's verifyingContract)")
    quorum: int = Field(description="distinct watchers' signatures a report needs")
    stretches: list[DownStretchPublic]


class CoSignature(BaseModel):
    lease_id: int = Field(ge=1, le=MAX_ID)
    start: int = Field(ge=0, le=2**32 - 1)
    end: int = Field(ge=1, le=2**32 - 1)
    signature: str = Hex65


class CoSignatures(BaseModel):
    reports: list[CoSignature] = Field(min_length=1, max_length=1000)


class CoSignResult(BaseModel):
    lease_id: int
    accepted: bool
    detail: str = Field(description="the signer's address, or why it was not used")


def _watch(request: Request, service: ServiceDep) -> DownWatch:
    watch: DownWatch | None = request.app.state.down_watch
    if watch is None or service.chain is None:
        raise NotFoundError("this marketplace follows no chain, so it posts no down reports")
    return watch


@router.get("/down", response_model=DownStretches, responses=NO_CHAIN)
def down(request: Request, service: ServiceDep) -> DownStretches:
    """The services the prober sees down now, as stretches for other watchers to
    co-sign after looking themselves."""
    watch = _watch(request, service)
    assert service.chain is not None
    leases = Leases(service.chain.w3, service.chain.deployment)
    return DownStretches(
        chain_id=service.chain.deployment.chain_id,
        escrow=leases.address,
        quorum=leases.watch_rules().quorum,
        stretches=[
            DownStretchPublic(lease_id=s.lease_id, name=s.name, start=s.start, end=s.end)
            for s in watch.stretches()
        ],
    )


@router.post("/down", response_model=list[CoSignResult], responses=NO_CHAIN)
def cosign(body: CoSignatures, request: Request, service: ServiceDep) -> list[CoSignResult]:
    """Another watcher's signatures of stretches it also saw down; each is used when its
    signer is a LeaseEscrow watcher and the stretch is still open here with that start."""
    watch = _watch(request, service)
    out = []
    for r in body.reports:
        try:
            signer = watch.cosign(r.lease_id, r.start, r.end, bytes.fromhex(r.signature[2:]))
        except CosignError as exc:
            out.append(CoSignResult(lease_id=r.lease_id, accepted=False, detail=str(exc)))
            continue
        out.append(CoSignResult(lease_id=r.lease_id, accepted=True, detail=signer))
    return out
