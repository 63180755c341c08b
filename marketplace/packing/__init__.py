"""Knapsack packing of jobs into providers' free capacity: what others may use.

- :mod:`~marketplace.packing.solve`: :func:`pack` (exact MILP or Lagrangian heuristic) and
  the upper bounds.
- :mod:`~marketplace.packing.model`: the instance and result records.
- :mod:`~marketplace.packing.lp`: the MILP and LP relaxations (HiGHS).
- :mod:`~marketplace.packing.search`: Lagrangian prices, greedy placement, local search.
"""

from __future__ import annotations

from marketplace.packing.solve import (
    Method,
    Packing,
    PackJob,
    PackProvider,
    lp_upper_bound,
    pack,
    pooled_upper_bound,
)

__all__ = [
    "Method",
    "PackJob",
    "PackProvider",
    "Packing",
    "lp_upper_bound",
    "pack",
    "pooled_upper_bound",
]
