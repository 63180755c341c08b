"""Electricity prices and the discrete energy levels that matching uses.

- :mod:`~marketplace.energy.sources`: the :class:`PriceSource` interface, the bundled
  offline series (:class:`BundledPriceSource`) and region look-up by location.
- :mod:`~marketplace.energy.levels`: price (and demand) to integer level, by quantiles of
  recent prices across regions.
- :mod:`~marketplace.energy.entsoe`: adapter for ENTSO-E day-ahead prices and load.
- :mod:`~marketplace.energy.grid`: :class:`Grid`, each region's price and level now, as the
  service sees it (levels cached per hour).
- :mod:`~marketplace.energy.generate_data`: the generator of the bundled synthetic data.
"""

from __future__ import annotations

from marketplace.energy.levels import (
    DEFAULT_DEMAND_WEIGHT,
    DEFAULT_LEVELS,
    DEFAULT_WINDOW_HOURS,
    LevelScale,
    levels_for_locations,
    region_levels,
)
from marketplace.energy.sources import (
    BundledPriceSource,
    PricePoint,
    PriceSource,
    Region,
    nearest_region,
    price_at_location,
)

__all__ = [
    "DEFAULT_DEMAND_WEIGHT",
    "DEFAULT_LEVELS",
    "DEFAULT_WINDOW_HOURS",
    "BundledPriceSource",
    "LevelScale",
    "PricePoint",
    "PriceSource",
    "Region",
    "levels_for_locations",
    "nearest_region",
    "price_at_location",
    "region_levels",
]
