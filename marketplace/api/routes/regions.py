"""Electricity regions with their price and energy level now."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from pydantic import TypeAdapter

from marketplace.api.deps import ServiceDep
from marketplace.api.schemas import RegionPublic
from protocol.schemas import Location

router = APIRouter(prefix="/v1/regions", tags=["regions"])

ANSWER_MAX_AGE_S = 1.0
_regions = TypeAdapter(list[RegionPublic])


class _Answer:
    """The list as last sent and when (one per process: every app shares the grid's data)."""

    body = b""
    built_at = -float("inf")
    grid: object = None


@router.get("", response_model=list[RegionPublic])
async def list_regions(service: ServiceDep) -> Response:
    """Every region: price per MWh and discrete energy level (0 = cheapest) this hour
    (the list as computed at most a second ago)."""
    grid = service.grid
    if _Answer.grid is not grid or time.monotonic() - _Answer.built_at > ANSWER_MAX_AGE_S:
        regions = [
            RegionPublic(
                id=r.region.id,
                name=r.region.name,
                continent=r.region.continent,
                location=Location(lat=r.region.lat, lon=r.region.lon),
                price_per_mwh=r.price,
                demand_mw=r.demand_mw,
                energy_level=r.level,
            )
            for r in grid.now()
        ]
        _Answer.body, _Answer.built_at, _Answer.grid = (
            _regions.dump_json(regions),
            time.monotonic(),
            grid,
        )
    return Response(_Answer.body, media_type="application/json")
