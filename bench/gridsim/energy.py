"""What a job's electricity costs: region prices, carbon and levels hour by hour, energy
times price (or intensity)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marketplace.energy import PriceSource, region_levels
from marketplace.energy.plan import PUE, WATTS_PER_CORE

__all__ = ["PUE", "WATTS_PER_CORE", "HourlyGrid", "energy_cost_eur"]


class HourlyGrid:
    """Region prices, carbon intensities and levels by hour from the day's start (cached)."""

    def __init__(self, source: PriceSource, day: datetime) -> None:
        self.source = source
        self.day = day
        self.region_ids = [r.id for r in source.regions()]
        self._levels: dict[int, NDArray[np.int64]] = {}
        self._prices: dict[int, NDArray[np.float64]] = {}
        self._carbon: dict[int, NDArray[np.float64]] = {}

    def at(self, hour: int) -> datetime:
        """The start of hour ``hour`` counted from the day's start."""
        return self.day + timedelta(hours=hour)

    def levels(self, hour: int) -> NDArray[np.int64]:
        """Each region's level in that hour (index as ``source.regions()``)."""
        if hour not in self._levels:
            lv = region_levels(self.source, self.at(hour))
            self._levels[hour] = np.array([lv[r] for r in self.region_ids], dtype=np.int64)
        return self._levels[hour]

    def prices(self, hour: int) -> NDArray[np.float64]:
        """Each region's price in that hour, EUR/MWh."""
        if hour not in self._prices:
            at = self.at(hour)
            self._prices[hour] = np.array(
                [self.source.price(r, at).price for r in self.region_ids], dtype=np.float64
            )
        return self._prices[hour]

    def carbon(self, hour: int) -> NDArray[np.float64]:
        """Each region's carbon intensity in that hour, gCO2/kWh (NaN when unknown)."""
        if hour not in self._carbon:
            at = self.at(hour)
            points = [self.source.price(r, at) for r in self.region_ids]
            self._carbon[hour] = np.array(
                [np.nan if p.carbon_g_kwh is None else p.carbon_g_kwh for p in points]
            )
        return self._carbon[hour]


def energy_cost_eur(
    *,
    start_s: NDArray[np.float64],
    run_s: NDArray[np.float64],
    cores: NDArray[np.int64],
    region: NDArray[np.intp],
    price_of_hour: Any,
    watts_per_core: float = WATTS_PER_CORE,
    pue: float = PUE,
) -> NDArray[np.float64]:
    """Energy cost of each job: its energy in every hour it runs times that hour's price.

    ``price_of_hour(h)`` returns every region's price (EUR/MWh) in hour ``h`` (hours from
    the day's start, may be negative); times are seconds from the same origin.
    """
    kw = cores * watts_per_core * pue / 1000.0
    end = start_s + run_s
    cost = np.zeros(start_s.shape[0])
    first = math.floor(start_s.min() / 3600) if start_s.size else 0
    last = math.floor(end.max() / 3600) if start_s.size else -1
    for h in range(first, last + 1):
        overlap = np.clip(np.minimum(end, (h + 1) * 3600) - np.maximum(start_s, h * 3600), 0, None)
        if overlap.any():
            cost += kw * overlap / 3600.0 * price_of_hour(h)[region] / 1000.0
    return cost
