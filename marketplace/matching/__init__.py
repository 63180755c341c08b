"""Energy-weighted matching of jobs to providers: what the rest of the marketplace may use.

- :mod:`~marketplace.matching.index`: :class:`ProviderIndex`, the k-d tree index (a tree
  per energy level) with exact top-k search and refresh by snapshot swap.
- :mod:`~marketplace.matching.records`: the records (:class:`Provider`,
  :class:`JobRequest`, :class:`Match`, :class:`Resources`), scorers and energy weights.
- :mod:`~marketplace.matching.core`: exact scoring shared by the index and the brute-force
  oracle.
- :mod:`~marketplace.matching.classes`: capacity classes (one tree each, one per energy
  level).
- :mod:`~marketplace.matching.table`: the columnar provider store.
- :mod:`~marketplace.matching.tree_build`: tree builders.
- :mod:`~marketplace.matching.update`: refresh by what changed (side classes, masks).
- :mod:`~marketplace.matching.spatial`: the memory order of a class (level, Morton curve).
"""

from __future__ import annotations

from marketplace.matching.core import brute_force_match
from marketplace.matching.index import IndexSnapshot, ProviderIndex
from marketplace.matching.records import (
    DEFAULT_ENERGY_WEIGHT_KM,
    DEFAULT_SCORER,
    LEXICOGRAPHIC_ENERGY_WEIGHT_KM,
    JobRequest,
    Match,
    Provider,
    ReputationPenalty,
    Resources,
    Scorer,
    distance_only,
    unit_budget_wei,
)
from marketplace.matching.table import ProviderTable

__all__ = [
    "DEFAULT_ENERGY_WEIGHT_KM",
    "DEFAULT_SCORER",
    "LEXICOGRAPHIC_ENERGY_WEIGHT_KM",
    "IndexSnapshot",
    "JobRequest",
    "Match",
    "Provider",
    "ProviderIndex",
    "ProviderTable",
    "ReputationPenalty",
    "Resources",
    "Scorer",
    "brute_force_match",
    "distance_only",
    "unit_budget_wei",
]
