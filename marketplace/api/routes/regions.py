"""Electricity regions with their price and energy level now."""

from __future__ import annotations

from fastapi import APIRouter

from marketplace.api.deps import ServiceDep
from marketplace.api.schemas import RegionPublic
from protocol.schemas import Location

router = APIRouter(prefix="/v1/regions", tags=["regions"])


@router.get("", response_model=list[RegionPublic])
async def list_regions(service: ServiceDep) -> list[RegionPublic]:
    """Every region: price per MWh and discrete energy level (0 = cheapest) this hour."""
    return [
        RegionPublic(
            id=r.region.id,
            name=r.region.name,
            continent=r.region.continent,
            location=Location(lat=r.region.lat, lon=r.region.lon),
            price_per_mwh=r.price,
            demand_mw=r.demand_mw,
            energy_level=r.level,
        )
        for r in service.grid.now()
    ]
