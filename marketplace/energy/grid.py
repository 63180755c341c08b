"""The grid as the service sees it now: each region's price and discrete energy level.

Levels are recomputed once per hour of the price series (``region_levels``) and cached.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from marketplace.energy.levels import region_levels as compute_levels
from marketplace.energy.sources import (
    BundledPriceSource,
    PriceSource,
    Region,
    floor_hour,
    nearest_region,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionNow:
    region: Region
    price: float
    demand_mw: float | None
    level: int


class Grid:
    """Current energy levels per region from a price source (the bundled one by default)."""

    def __init__(self, source: PriceSource | None = None) -> None:
        self.source = source or BundledPriceSource()
        self._lock = threading.Lock()
        self._hour: datetime | None = None
        self._levels: dict[str, int] = {}

    def regions(self) -> list[Region]:
        return list(self.source.regions())

    def region_ids(self) -> set[str]:
        return {r.id for r in self.source.regions()}

    def nearest(self, lat: float, lon: float) -> Region:
        return nearest_region(self.source.regions(), lat, lon)

    def levels(self, at: datetime | None = None) -> dict[str, int]:
        """Level of every region for the hour containing `at` (default: now)."""
        hour = floor_hour(at or datetime.now(UTC))
        with self._lock:
            if hour != self._hour:
                self._levels = compute_levels(self.source, hour)
                self._hour = hour
                logger.info("energy levels for %s: %s", hour.isoformat(), self._levels)
            return dict(self._levels)

    def now(self, at: datetime | None = None) -> list[RegionNow]:
        at = at or datetime.now(UTC)
        levels = self.levels(at)
        out = []
        for region in self.source.regions():
            point = self.source.price(region.id, at)
            out.append(RegionNow(region, point.price, point.demand_mw, levels[region.id]))
        return out
