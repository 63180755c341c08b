"""Electricity prices and the discrete energy levels that matching uses.

- :mod:`~marketplace.energy.sources`: the :class:`PriceSource` interface, forecasts of the
  coming hours (:func:`forecast`), the bundled offline series of price, demand and carbon
  intensity (:class:`BundledPriceSource`) and region look-up by location.
- :mod:`~marketplace.energy.levels`: price (and demand), carbon intensity or a mix
  (:class:`EnergyBasis`) to integer level, by quantiles of recent figures across regions.
- :mod:`~marketplace.energy.plan`: the start planner: the hour and site that minimise a
  job's expected energy cost (or carbon) within its start window.
- :mod:`~marketplace.energy.entsoe`: adapter for ENTSO-E day-ahead prices and load.
- :mod:`~marketplace.energy.grid`: :class:`Grid`, each region's price and level now, as the
  service sees it (levels cached per hour).
- :mod:`~marketplace.energy.generate_data`: the generator of the bundled synthetic data.
"""

from __future__ import annotations

from marketplace.energy.levels import (
    BASIS_KINDS,
    DEFAULT_DEMAND_WEIGHT,
    DEFAULT_LEVELS,
    DEFAULT_WINDOW_HOURS,
    EnergyBasis,
    LevelScale,
    levels_for_locations,
    region_levels,
)
from marketplace.energy.sources import (
    BundledPriceSource,
    Forecast,
    PricePoint,
    PriceSource,
    Region,
    forecast,
    nearest_region,
    price_at_location,
)

__all__ = [
    "BASIS_KINDS",
    "DEFAULT_DEMAND_WEIGHT",
    "DEFAULT_LEVELS",
    "DEFAULT_WINDOW_HOURS",
    "BundledPriceSource",
    "EnergyBasis",
    "Forecast",
    "LevelScale",
    "PricePoint",
    "PriceSource",
    "Region",
    "forecast",
    "levels_for_locations",
    "nearest_region",
    "price_at_location",
    "region_levels",
]
