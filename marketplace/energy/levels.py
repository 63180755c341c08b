"""From electricity prices (and demand) to the discrete energy level that matching weighs.

Matching needs a small integer per provider, one that can out-weigh distance. We map
prices to levels ``0 .. n_levels - 1`` by **quantiles of recent prices across all
regions**:

1. The reference sample is every region's hourly price over the last ``window_hours``
   (24 by default), so levels are relative to what electricity costs around the network
   right now, whatever the currency level or season.
2. A price's percentile ``F(p)`` is its mid-rank in that sample: the fraction of reference
   prices below ``p`` plus half of those equal to it, a number in [0, 1].
3. When the region's demand is known, its own percentile ``D`` within that region's demand
   over the same window (demand scales differ too much between grids to pool) is blended
   in: ``u = (1 - beta) * F(p) + beta * D`` with ``beta = demand_weight`` (0.25 by
   default). Without demand, ``u = F(p)``.
4. ``level = min(n_levels - 1, floor(u * n_levels))``.

So with 10 levels, level 0 is the cheapest tenth of recent prices, level 9 the dearest
tenth; a region that is cheap *and* lightly loaded gets the lowest level. The mapping is
monotone: a higher price (or demand) never gives a lower level.

The **basis** (:class:`EnergyBasis`) says what the level measures. ``price`` is the above.
``carbon`` uses the grid's carbon intensity instead: its mid-rank ``C`` among every
region's intensity over the same window (no demand blend: intensity already reflects what
runs to meet the load), ``u = C``. ``mix`` blends the two percentiles,
``u = (1 - w) * u_price + w * C`` with ``w = carbon_weight``. Step 4 is unchanged.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from marketplace.energy.sources import HOUR, PriceSource, Region, floor_hour, nearest_region_indices
from marketplace.errors import InvalidInputError, PriceUnavailableError

__all__ = [
    "BASIS_KINDS",
    "DEFAULT_DEMAND_WEIGHT",
    "DEFAULT_LEVELS",
    "DEFAULT_WINDOW_HOURS",
    "EnergyBasis",
    "LevelScale",
    "levels_for_locations",
    "mid_rank",
    "region_levels",
]

logger = logging.getLogger(__name__)

DEFAULT_LEVELS = 10
DEFAULT_DEMAND_WEIGHT = 0.25
DEFAULT_WINDOW_HOURS = 24

BasisKind = Literal["price", "carbon", "mix"]
BASIS_KINDS: tuple[BasisKind, ...] = ("price", "carbon", "mix")


@dataclass(frozen=True)
class EnergyBasis:
    """What an energy level (and a start plan) weighs: price, carbon intensity, or a mix.

    Attributes:
        kind: ``price`` (the default), ``carbon`` or ``mix``.
        carbon_weight: Share of carbon in a ``mix``, in [0, 1]; ignored otherwise.
    """

    kind: BasisKind = "price"
    carbon_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in BASIS_KINDS:
            raise InvalidInputError(f"energy basis {self.kind!r}; use one of {BASIS_KINDS}")
        if not 0.0 <= self.carbon_weight <= 1.0:
            raise InvalidInputError(f"carbon_weight={self.carbon_weight}; use a value in [0, 1]")

    @property
    def carbon_share(self) -> float:
        """Weight of carbon: 0 for price, 1 for carbon, ``carbon_weight`` for a mix."""
        return {"price": 0.0, "carbon": 1.0}.get(self.kind, self.carbon_weight)


def mid_rank(sorted_sample: Sequence[float], x: float) -> float:
    """Mid-rank percentile of ``x`` in an ascending sample, in [0, 1].

    The fraction of the sample strictly below ``x`` plus half the fraction equal to it.
    """
    n = len(sorted_sample)
    if n == 0:
        raise InvalidInputError("empty reference sample; pass at least one recent price")
    below = bisect.bisect_left(sorted_sample, x)
    equal = bisect.bisect_right(sorted_sample, x) - below
    return (below + 0.5 * equal) / n


@dataclass(frozen=True)
class LevelScale:
    """Maps a price (and optionally a demand percentile) to an integer level.

    Attributes:
        reference: Recent prices across regions, ascending.
        n_levels: Number of levels; results lie in ``0 .. n_levels - 1``.
        demand_weight: Weight ``beta`` of the demand percentile when one is given.
    """

    reference: tuple[float, ...]
    n_levels: int = DEFAULT_LEVELS
    demand_weight: float = DEFAULT_DEMAND_WEIGHT

    def __post_init__(self) -> None:
        if not self.reference:
            raise InvalidInputError("LevelScale needs at least one reference price")
        if any(not math.isfinite(p) for p in self.reference):
            raise InvalidInputError("reference prices must be finite numbers")
        if list(self.reference) != sorted(self.reference):
            raise InvalidInputError("reference must be ascending; use LevelScale.from_prices")
        if self.n_levels < 1:
            raise InvalidInputError(f"n_levels={self.n_levels}; use 1 or more (10 is typical)")
        if not 0.0 <= self.demand_weight <= 1.0:
            raise InvalidInputError(f"demand_weight={self.demand_weight}; use a value in [0, 1]")

    @classmethod
    def from_prices(
        cls,
        prices: Iterable[float],
        *,
        n_levels: int = DEFAULT_LEVELS,
        demand_weight: float = DEFAULT_DEMAND_WEIGHT,
    ) -> LevelScale:
        """Build a scale from recent prices (any order)."""
        return cls(tuple(sorted(prices)), n_levels=n_levels, demand_weight=demand_weight)

    def percentile(self, price: float) -> float:
        """Mid-rank percentile of ``price`` among the reference prices."""
        if not math.isfinite(price):
            raise InvalidInputError(f"price {price!r} is not a finite number")
        return mid_rank(self.reference, price)

    def blended(self, price: float, *, demand_percentile: float | None = None) -> float:
        """Percentile of ``price`` blended with ``demand_percentile`` (in [0, 1]) if given."""
        u = self.percentile(price)
        if demand_percentile is not None:
            if not 0.0 <= demand_percentile <= 1.0:
                raise InvalidInputError(
                    f"demand_percentile={demand_percentile}; pass a fraction in [0, 1]"
                )
            u = (1.0 - self.demand_weight) * u + self.demand_weight * demand_percentile
        return u

    def level(self, price: float, *, demand_percentile: float | None = None) -> int:
        """The level of ``price``, blending in ``demand_percentile`` (in [0, 1]) if given."""
        u = self.blended(price, demand_percentile=demand_percentile)
        return min(self.n_levels - 1, math.floor(u * self.n_levels))


def region_levels(
    source: PriceSource,
    at: datetime,
    *,
    window_hours: int = DEFAULT_WINDOW_HOURS,
    n_levels: int = DEFAULT_LEVELS,
    demand_weight: float = DEFAULT_DEMAND_WEIGHT,
    basis: EnergyBasis | None = None,
) -> dict[str, int]:
    """The current level of every region of ``source`` at ``at`` (see the module docs).

    The reference window is the ``window_hours`` hours ending with the hour of ``at``.
    A carbon or mix ``basis`` needs a source that knows carbon intensity
    (:class:`PriceUnavailableError` otherwise).
    """
    if window_hours < 1:
        raise InvalidInputError(f"window_hours={window_hours}; use 1 or more (24 is typical)")
    w = (basis or EnergyBasis()).carbon_share
    now = floor_hour(at)
    hours = [now - k * HOUR for k in range(window_hours)]
    regions = source.regions()
    sample: list[float] = []
    carbon_sample: list[float] = []
    current: dict[str, tuple[float, float | None, float]] = {}
    for region in regions:
        points = [source.price(region.id, h) for h in hours]
        sample.extend(p.price for p in points)
        demand_pct: float | None = None
        demands = [p.demand_mw for p in points if p.demand_mw is not None]
        if len(demands) == len(points):  # demand known for the whole window
            demand_pct = mid_rank(sorted(demands), demands[0])
        carbon = math.nan
        if w > 0.0:
            intensities = [p.carbon_g_kwh for p in points]
            if any(c is None for c in intensities):
                raise PriceUnavailableError(
                    f"the price source has no carbon intensity for {region.id}; "
                    "use energy basis 'price' (DCLOUD_ENERGY_BASIS=price)"
                )
            carbon_sample.extend(c for c in intensities if c is not None)
            carbon = intensities[0] or 0.0
        current[region.id] = (points[0].price, demand_pct, carbon)
    scale = LevelScale.from_prices(sample, n_levels=n_levels, demand_weight=demand_weight)
    if w == 0.0:
        levels = {rid: scale.level(p, demand_percentile=d) for rid, (p, d, _) in current.items()}
    else:
        carbon_sorted = sorted(carbon_sample)
        levels = {}
        for rid, (p, d, c) in current.items():
            u_price = 0.0 if w == 1.0 else scale.blended(p, demand_percentile=d)
            u = (1.0 - w) * u_price + w * mid_rank(carbon_sorted, c)
            levels[rid] = min(n_levels - 1, math.floor(u * n_levels))
    logger.debug("region levels at %s: %s", now.isoformat(), levels)
    return levels


def levels_for_locations(
    regions: Sequence[Region],
    levels: Mapping[str, int],
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
) -> NDArray[np.int64]:
    """The level of the nearest priced region for each location (vectorised)."""
    idx = nearest_region_indices(regions, lat, lon)
    table = np.array([levels[r.id] for r in regions], dtype=np.int64)
    return np.asarray(table[idx], dtype=np.int64)
