"""The plain records matching works on: resources, providers, jobs, matches and scorers.

These are frozen dataclasses with no behaviour beyond validation, so the service can build
them from its database rows and tests can build them by hand. Units:

- CPU in cores (float), memory and disk in MB (int), GPUs as a count (int).
- Prices in **token wei per CPU-core-second** (int): a provider's asking price and a job's
  highest acceptable price use the same unit, so "within budget" is an exact integer
  comparison. :func:`unit_budget_wei` turns a job's total budget into that unit.
- Positions in degrees; distances in km.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from marketplace.errors import InvalidProviderError, InvalidResourcesError
from marketplace.geo import EARTH_DIAMETER_KM, validate_location

__all__ = [
    "DEFAULT_ENERGY_WEIGHT_KM",
    "DEFAULT_SCORER",
    "LEXICOGRAPHIC_ENERGY_WEIGHT_KM",
    "MAX_PRICE_WEI",
    "JobRequest",
    "Match",
    "Provider",
    "ReputationPenalty",
    "Resources",
    "Scorer",
    "distance_only",
    "unit_budget_wei",
]

logger = logging.getLogger(__name__)

MAX_PRICE_WEI = 2**63 - 1
"""Largest price the index stores (int64); about 9.2 tokens per CPU-core-second."""

DEFAULT_ENERGY_WEIGHT_KM = 2000.0
"""Default energy weight ``w``: kilometres per energy level.

The index ranks by ``sqrt(d**2 + (w * level)**2)`` (``d`` = chord distance in km). A
provider at ``(d1, L1)`` beats one at ``(d2, L2)`` exactly when
``d1**2 - d2**2 < w**2 * (L2**2 - L1**2)``. So stepping down from level ``L`` to ``L - 1``
is worth up to ``w * sqrt(2L - 1)`` km of extra distance: 2000 km between levels 1 and 0,
6000 km between levels 5 and 4, and a level-9 provider next door loses to a level-0 one
anywhere within 18 000 km (the whole planet). Weight 0 ranks by distance only.
"""

LEXICOGRAPHIC_ENERGY_WEIGHT_KM = math.ceil(EARTH_DIAMETER_KM / 100.0) * 100.0
"""Smallest round weight (12 800 km) with which any lower level beats any distance.

With ``w > 2R`` (12 742 km, the longest chord), ``d1**2 - d2**2 <= (2R)**2 < w**2``, so
levels decide and distance only breaks ties within a level: the energy level outweighs
distance in the strongest sense, as a cheaper level wins however far away it is.
"""


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidResourcesError(f"{name}={value!r}; pass a whole number >= 0")


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of compute resources (free capacity of a provider, or a job's demand).

    Attributes:
        cpu: CPU cores (may be fractional).
        memory_mb: Memory in MB.
        gpu: Number of GPUs.
        disk_mb: Disk in MB.
    """

    cpu: float = 0.0
    memory_mb: int = 0
    gpu: int = 0
    disk_mb: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpu) and self.cpu >= 0):
            raise InvalidResourcesError(f"cpu={self.cpu!r}; pass a finite number of cores >= 0")
        _check_count("memory_mb", self.memory_mb)
        _check_count("gpu", self.gpu)
        _check_count("disk_mb", self.disk_mb)

    def as_vector(self) -> tuple[float, float, float, float]:
        """``(cpu, memory_mb, gpu, disk_mb)`` as floats, the order packing uses."""
        return (float(self.cpu), float(self.memory_mb), float(self.gpu), float(self.disk_mb))

    def fits_in(self, free: Resources) -> bool:
        """True if this demand fits in ``free`` in every dimension."""
        return (
            self.cpu <= free.cpu
            and self.memory_mb <= free.memory_mb
            and self.gpu <= free.gpu
            and self.disk_mb <= free.disk_mb
        )


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider as matching sees it (built by the service from its latest heartbeat).

    Attributes:
        id: Unique provider id (for example its Ethereum address).
        lat: Latitude in degrees.
        lon: Longitude in degrees.
        free: Free capacity now.
        price_wei: Asking price, token wei per CPU-core-second.
        images: Container images the provider already holds.
        online: False when heartbeats stopped; offline providers never match.
        energy_level: Discrete energy level (0 = cheapest), see ``marketplace.energy``.
        reputation: Reliability in [0, 1] (1 = perfect history).
    """

    id: str
    lat: float
    lon: float
    free: Resources
    price_wei: int = 0
    images: frozenset[str] = field(default_factory=frozenset)
    online: bool = True
    energy_level: int = 0
    reputation: float = 0.5

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidProviderError("provider id is empty; use its address or another unique id")
        validate_location(self.lat, self.lon)
        if not 0 <= self.price_wei <= MAX_PRICE_WEI:
            raise InvalidProviderError(
                f"provider {self.id}: price_wei={self.price_wei}; use 0 .. {MAX_PRICE_WEI}"
            )
        if isinstance(self.energy_level, bool) or self.energy_level < 0:
            raise InvalidProviderError(
                f"provider {self.id}: energy_level={self.energy_level}; use an int >= 0"
            )
        if not (math.isfinite(self.reputation) and 0.0 <= self.reputation <= 1.0):
            raise InvalidProviderError(
                f"provider {self.id}: reputation={self.reputation}; use a number in [0, 1]"
            )


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a renter asks for; the origin is where the renter (or its data) is.

    Attributes:
        lat: Latitude of the origin in degrees.
        lon: Longitude of the origin in degrees.
        resources: Demand; CPU and memory must be positive.
        image: Container image the provider must already hold, or None for any provider.
        max_price_wei: Highest acceptable price (token wei per CPU-core-second), or None.
        id: Optional label, carried for the caller's convenience.
        prefer_image: An image any provider can fetch (a renter's image, by digest):
            holding it is a preference, not a filter. Providers that do not hold it are
            charged ``pull_km`` on top of their score (they must pull it first).
        pull_km: What pulling ``prefer_image`` costs, in the score's units (augmented km).
    """

    lat: float
    lon: float
    resources: Resources
    image: str | None = None
    max_price_wei: int | None = None
    id: str = ""
    prefer_image: str | None = None
    pull_km: float = 0.0

    def __post_init__(self) -> None:
        validate_location(self.lat, self.lon)
        if self.resources.cpu <= 0 or self.resources.memory_mb <= 0:
            raise InvalidResourcesError(
                "a job needs cpu > 0 and memory_mb > 0; ask for at least a fraction of a core"
            )
        if self.max_price_wei is not None and self.max_price_wei < 0:
            raise InvalidResourcesError(f"max_price_wei={self.max_price_wei}; use an int >= 0")
        if not (math.isfinite(self.pull_km) and self.pull_km >= 0):
            raise InvalidResourcesError(f"pull_km={self.pull_km!r}; use a finite number >= 0")
        if self.prefer_image is not None and self.image is not None:
            raise InvalidResourcesError(
                "a job either requires an image (image) or prefers one it can fetch "
                "(prefer_image), not both"
            )


def unit_budget_wei(total_wei: int, *, cpu: float, duration_s: int) -> int:
    """The highest per-CPU-core-second price a total budget affords (rounded down)."""
    if cpu <= 0 or duration_s <= 0:
        raise InvalidResourcesError("cpu and duration_s must be positive to spread a budget")
    return math.floor(Fraction(total_wei) / (Fraction(cpu) * duration_s))


@dataclass(frozen=True, slots=True)
class Match:
    """One eligible provider for a job, best first in a result list.

    Attributes:
        provider_id: The provider.
        distance_km: Great-circle distance from the job's origin.
        energy_level: The provider's energy level.
        augmented_km: ``sqrt(chord_km**2 + (weight * level)**2)``, what the tree orders by.
        score: The scorer's cost (lower is better); results are sorted by
            ``(score, provider_id)``.
    """

    provider_id: str
    distance_km: float
    energy_level: int
    augmented_km: float
    score: float


Scorer = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]
"""``scorer(augmented_km, reputation) -> cost``, elementwise, **lower is better**.

Contract: shape-preserving, deterministic, and ``cost >= augmented_km`` everywhere (a
scorer may only add penalties). The index relies on that bound to know when it has seen
every provider that could make the top k, so its answers equal a brute-force scan with the
same scorer. A scorer that breaks it raises :class:`~marketplace.errors.ScorerContractError`.
"""


def distance_only(
    augmented_km: NDArray[np.float64], reputation: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The identity scorer: rank by augmented distance alone, ignoring reputation."""
    return augmented_km


@dataclass(frozen=True, slots=True)
class ReputationPenalty:
    """Treat less reliable providers as if they were farther away.

    ``cost = augmented_km + km * (1 - reputation)``: a perfect provider keeps its
    augmented distance, one with reputation 0 counts ``km`` more. The penalty is in
    augmented km, where distances far from the job are compressed by the energy term: with
    ``s = sqrt(d**2 + (w * L)**2)``, ``ds = (d / s) dd``. So the default 20 km weighs
    like 20 km of real distance against level-0 providers but like about 400 km against
    level-2 ones 4000 km away (default weight): reputation decides among providers that
    are about equally good on energy and distance. The search examines every eligible
    provider within ``km`` of the k-th best augmented distance, so a larger ``km`` costs
    more per query, especially among dense clusters of providers.
    """

    km: float = 20.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.km) and self.km >= 0):
            raise InvalidProviderError(f"km={self.km}; use a distance >= 0")

    def __call__(
        self, augmented_km: NDArray[np.float64], reputation: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Apply the penalty elementwise."""
        penalty = self.km * (1.0 - np.clip(reputation, 0.0, 1.0))
        return np.asarray(augmented_km + penalty, dtype=np.float64)


DEFAULT_SCORER: Scorer = ReputationPenalty()
"""The scorer the index uses unless told otherwise."""
