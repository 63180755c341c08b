"""Knapsack packing of pending jobs into providers' free capacity, so less of it sits idle.

Given pending jobs (resource demand vectors, a value each) and, for each job, the candidate
providers matching found (with their free-capacity vectors), choose at most one candidate
per job so that no provider is over capacity in any resource, the total value is as large
as possible and, among equally valuable choices, the least capacity is wasted: free
capacity left on the providers that are used (see :attr:`Packing.waste`). This is a
multi-dimensional multiple knapsack with assignment restrictions (NP-hard).

- ``method="exact"``: the MILP, solved by HiGHS (``scipy.optimize.milp``) within a time
  limit; ``optimal`` says whether optimality was proven. If the limit cuts it short, the
  better of its incumbent and the heuristic is returned.
- ``method="heuristic"``: Lagrangian prices, greedy placement and local search
  (:mod:`marketplace.packing.search`). It also returns a proven upper bound, so its gap is
  measured on every call, not guessed; never worse than first-fit-decreasing (both are
  computed and the better kept).
- ``method="first-fit-decreasing"``: the classic baseline.
- ``method="auto"`` (default): exact for small instances (at most ``exact_max_pairs``
  job-candidate pairs), heuristic otherwise.

The resource vectors may have any number of dimensions, in the same order everywhere
(``Resources.as_vector()`` gives cpu, memory_mb, gpu, disk_mb). Pure: no I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

from marketplace.errors import InvalidPackingError
from marketplace.packing.lp import lp_bound, pooled_bound, pooled_duals, solve_exact
from marketplace.packing.model import Instance, Packing, PackJob, PackProvider
from marketplace.packing.search import Search, first_fit_decreasing, lagrangian

__all__ = [
    "Method",
    "PackJob",
    "PackProvider",
    "Packing",
    "lp_upper_bound",
    "pack",
    "pooled_upper_bound",
]

logger = logging.getLogger(__name__)

Method = Literal["auto", "exact", "heuristic", "first-fit-decreasing"]

EXACT_MAX_PAIRS = 300
"""``auto`` uses the exact solver up to this many job-candidate pairs."""


def _better(inst: Instance, a: list[int], b: list[int]) -> list[int]:
    """The assignment with more value; on equal value (to 1e-12), the less wasteful."""
    va, vb = inst.value(a), inst.value(b)
    tol = 1e-12 * max(1.0, abs(va), abs(vb))
    if va > vb + tol:
        return a
    if vb > va + tol:
        return b
    return a if inst.waste(a) <= inst.waste(b) else b


def _heuristic(inst: Instance, *, time_limit_s: float, iters: int) -> tuple[list[int], float]:
    start = time.perf_counter()
    deadline = start + time_limit_s
    s = Search(inst)
    assign, _, ub = lagrangian(
        s, pooled_duals(inst), iters=iters, deadline=start + 0.8 * time_limit_s
    )
    s.reset()
    for j, p in enumerate(assign):
        if p >= 0:
            s.place(j, p)
    s.improve(deadline)
    s.consolidate(deadline)
    best = _better(inst, list(s.assign), first_fit_decreasing(inst))
    return best, ub


def pack(
    jobs: Sequence[PackJob],
    providers: Sequence[PackProvider],
    *,
    method: Method = "auto",
    time_limit_s: float | None = None,
    exact_max_pairs: int = EXACT_MAX_PAIRS,
    iterations: int = 200,
) -> Packing:
    """Assign jobs to candidate providers, maximising value, then minimising waste.

    Args:
        jobs: Pending jobs with their candidates.
        providers: Every candidate's free capacity.
        method: See the module docs.
        time_limit_s: Budget for the exact solver, or for the heuristic's search; None
            means 1 s plus 1 s per 25 000 job-candidate pairs.
        exact_max_pairs: ``auto`` threshold (job-candidate pairs that fit).
        iterations: Subgradient iterations of the heuristic.

    Raises:
        InvalidPackingError: Inconsistent input (see :meth:`Instance.of`).
    """
    inst = Instance.of(jobs, providers)
    pairs = int(inst.pj.shape[0])
    if time_limit_s is None:
        time_limit_s = 1.0 + pairs / 25_000
    if time_limit_s <= 0:
        raise InvalidPackingError(f"time_limit_s={time_limit_s}; give the solver some time")
    if method == "auto":
        method = "exact" if pairs <= exact_max_pairs else "heuristic"
    if method == "first-fit-decreasing":
        return inst.result(first_fit_decreasing(inst), method=method)
    if method == "heuristic":
        assign, ub = _heuristic(inst, time_limit_s=time_limit_s, iters=iterations)
        return inst.result(assign, method=method, upper_bound=ub)
    if method != "exact":
        raise InvalidPackingError(
            f"unknown method {method!r}; use auto, exact, heuristic or first-fit-decreasing"
        )
    solved = solve_exact(inst, time_limit_s=time_limit_s)
    if solved is not None and solved[1]:
        assign = solved[0]
        return inst.result(assign, method="exact", optimal=True, upper_bound=inst.value(assign))
    logger.info("exact packing not proven in %.2fs; comparing with the heuristic", time_limit_s)
    fallback, ub = _heuristic(inst, time_limit_s=time_limit_s, iters=iterations)
    if solved is not None:
        fallback = _better(inst, solved[0], fallback)
    return inst.result(fallback, method="exact", optimal=False, upper_bound=ub)


def lp_upper_bound(
    jobs: Sequence[PackJob],
    providers: Sequence[PackProvider],
    *,
    time_limit_s: float | None = None,
) -> float | None:
    """The LP-relaxation bound on the best total value (None if HiGHS ran out of time)."""
    return lp_bound(Instance.of(jobs, providers), time_limit_s=time_limit_s)


def pooled_upper_bound(jobs: Sequence[PackJob], providers: Sequence[PackProvider]) -> float:
    """A looser bound: the LP of one knapsack with every provider's capacity summed."""
    return pooled_bound(Instance.of(jobs, providers))
