"""The grid as the service sees it now: each region's price and discrete energy level.

Levels are recomputed once per hour of the price series (``region_levels``) and cached;
the levels of the coming hours (:meth:`Grid.levels_ahead`) are cached by hour too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from marketplace.energy.levels import EnergyBasis
from marketplace.energy.levels import region_levels as compute_levels
from marketplace.energy.sources import (
    HOUR,
    BundledPriceSource,
    PriceSource,
    Region,
    floor_hour,
    nearest_region,
)
from marketplace.errors import MarketplaceError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionNow:
    region: Region
    price: float
    demand_mw: float | None
    level: int


class Grid:
    """Current energy levels per region from a price source (the bundled one by default),
    on the ``basis`` of price (the default), carbon intensity or a mix."""

    def __init__(
        self, source: PriceSource | None = None, *, basis: EnergyBasis | None = None
    ) -> None:
        self.source = source or BundledPriceSource()
        self.basis = basis or EnergyBasis()
        self._lock = threading.Lock()
        self._hour: datetime | None = None
        self._levels: dict[str, int] = {}
        self._ahead: dict[datetime, dict[str, int]] = {}

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
                self._levels = compute_levels(self.source, hour, basis=self.basis)
                self._hour = hour
                logger.info("energy levels for %s: %s", hour.isoformat(), self._levels)
            return dict(self._levels)

    def levels_ahead(self, hours: int, at: datetime | None = None) -> list[dict[str, int]]:
        """Levels of every region for ``hours`` hours from the hour of ``at`` (default:
        now), the first being :meth:`levels`; shorter when the source knows fewer hours."""
        now = floor_hour(at or datetime.now(UTC))
        out = [self.levels(now)]
        for h in range(1, hours):
            hour = now + h * HOUR
            with self._lock:
                known = self._ahead.get(hour)
            if known is None:
                try:
                    known = compute_levels(self.source, hour, basis=self.basis)
                except MarketplaceError:  # the source does not know that hour yet
                    break
                with self._lock:
                    self._ahead = {k: v for k, v in self._ahead.items() if k >= now}
                    self._ahead[hour] = known
            out.append(dict(known))
        return out

    def now(self, at: datetime | None = None) -> list[RegionNow]:
        at = at or datetime.now(UTC)
        levels = self.levels(at)
        out = []
        for region in self.source.regions():
            point = self.source.price(region.id, at)
            out.append(RegionNow(region, point.price, point.demand_mw, levels[region.id]))
        return out
