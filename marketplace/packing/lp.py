"""Linear programs of packing, solved with HiGHS through scipy.

- :func:`solve_exact`: the mixed-integer program (``scipy.optimize.milp``), maximising value
  and, as a tie-break, minimising waste.
- :func:`lp_bound`: its LP relaxation, the upper bound heuristics are measured against.
- :func:`pooled_bound`: the LP bound of one knapsack holding every provider's capacity
  (ignores which provider a job may go to); looser, but solves in milliseconds at any size.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from marketplace.packing.model import TOL, Instance

__all__ = ["WASTE_TIE", "lp_bound", "pooled_bound", "pooled_duals", "solve_exact"]

logger = logging.getLogger(__name__)

WASTE_TIE = 1e-3
"""Waste enters the exact objective weighted so that the largest possible total waste is
worth ``WASTE_TIE`` times the smallest positive job value: it only breaks ties in value."""


def _rows(inst: Instance) -> tuple[sp.csr_matrix, NDArray[np.float64], NDArray[np.int64]]:
    """Job rows (each job at most once) and capacity rows (p, d) with ``C[p, d] > 0``."""
    n, m = inst.n, inst.m
    d = inst.A.shape[1]
    P = inst.pj.shape[0]
    jobs = sp.csr_matrix((np.ones(P), (inst.pj, np.arange(P))), shape=(n, P))
    r = (inst.pp[:, None] * d + np.arange(d)).ravel()
    cols = np.repeat(np.arange(P), d)
    cap = sp.csr_matrix((inst.A[inst.pj].ravel(), (r, cols)), shape=(m * d, P))
    live = np.flatnonzero(inst.C.ravel() > 0)
    A = sp.vstack([jobs, cap[live]]).tocsr()
    b = np.concatenate([np.ones(n), inst.C.ravel()[live]])
    return A, b, live


def lp_bound(inst: Instance, *, time_limit_s: float | None = None) -> float | None:
    """Optimal value of the LP relaxation, or None if HiGHS did not finish in time."""
    if inst.pj.shape[0] == 0:
        return 0.0
    A, b, _ = _rows(inst)
    options = {} if time_limit_s is None else {"time_limit": float(time_limit_s)}
    res = linprog(-inst.v[inst.pj], A_ub=A, b_ub=b, bounds=(0, 1), method="highs", options=options)
    if res.status != 0:
        logger.info("LP relaxation not solved: %s", res.message)
        return None
    return float(-res.fun)


def _pooled(inst: Instance) -> tuple[float, NDArray[np.float64]]:
    placeable = np.array([c.shape[0] > 0 for c in inst.cand], dtype=np.bool_)
    if not placeable.any():
        return 0.0, np.zeros(inst.A.shape[1])
    A = inst.A[placeable].T
    res = linprog(
        -inst.v[placeable], A_ub=A, b_ub=inst.C.sum(axis=0), bounds=(0, 1), method="highs"
    )
    if res.status != 0:  # pragma: no cover - a bounded feasible LP always solves
        raise RuntimeError(f"pooled knapsack LP failed: {res.message}")
    return float(-res.fun), np.maximum(0.0, -np.asarray(res.ineqlin.marginals, dtype=np.float64))


def pooled_bound(inst: Instance) -> float:
    """LP bound of one knapsack with the summed capacity of all providers."""
    return _pooled(inst)[0]


def pooled_duals(inst: Instance) -> NDArray[np.float64]:
    """Shadow price of each resource in the pooled knapsack (value per unit)."""
    return _pooled(inst)[1]


def solve_exact(inst: Instance, *, time_limit_s: float) -> tuple[list[int], bool] | None:
    """Solve the MILP; returns ``(assignment, proven_optimal)`` or None if no solution.

    Variables ``x[j, p]`` (job j on provider p) and ``y[p]`` (provider p used). Maximises
    ``sum v[j] x[j, p]`` minus ``WASTE_TIE``-scaled waste, where the waste of a used
    provider is ``sum_d (1 - load[p, d] / C[p, d])``, which is linear in ``x`` and ``y``.
    """
    n, m = inst.n, inst.m
    P = inst.pj.shape[0]
    if P == 0:
        return [-1] * n, True
    A, b, live = _rows(inst)
    d = inst.A.shape[1]
    C = inst.C
    inv = np.where(C > 0, 1.0 / np.where(C > 0, C, 1.0), 0.0)
    dims_used = (C > 0).sum(axis=1).astype(np.float64)
    positive = inst.v[inst.v > 0]
    scale = float(positive.min()) if positive.size else 1.0
    lam = WASTE_TIE * scale / max(1.0, float(dims_used.sum()))
    util = (inst.A[inst.pj] * inv[inst.pp]).sum(axis=1)  # sum_d A[j, d] / C[p, d]
    c = np.concatenate([-(inst.v[inst.pj] + lam * util), lam * dims_used])
    # Link y: capacity rows become sum_j A x - C y <= 0.
    link = sp.csr_matrix(
        (-C.ravel()[live], (np.arange(live.shape[0]) + n, live // d)), shape=(A.shape[0], m)
    )
    b = b.copy()
    b[n:] = 0.0
    M = sp.hstack([A, link]).tocsr()
    # A job using none of a provider's resources still makes the provider "used".
    idle = np.flatnonzero(util == 0.0)
    if idle.size:
        k = idle.shape[0]
        rows = np.arange(k)
        tie = sp.csr_matrix(
            (np.r_[np.ones(k), -np.ones(k)], (np.r_[rows, rows], np.r_[idle, P + inst.pp[idle]])),
            shape=(k, P + m),
        )
        M = sp.vstack([M, tie]).tocsr()
        b = np.concatenate([b, np.zeros(k)])
    res = milp(
        c,
        constraints=LinearConstraint(M, -np.inf, b),
        integrality=np.ones(P + m),
        bounds=Bounds(0, 1),
        options={"time_limit": float(time_limit_s), "mip_rel_gap": 1e-9, "presolve": True},
    )
    if res.x is None:
        logger.info("MILP found no solution in %.2fs: %s", time_limit_s, res.message)
        return None
    x = res.x[:P] > 0.5
    assign = [-1] * n
    for k in np.flatnonzero(x).tolist():
        assign[int(inst.pj[k])] = int(inst.pp[k])
    return repair(inst, assign), res.status == 0


def repair(inst: Instance, assign: list[int]) -> list[int]:
    """Drop placements that overflow a provider (solver tolerances) or are not candidates."""
    loads = np.zeros_like(inst.C)
    out = [-1] * inst.n
    for j in np.argsort(-inst.v, kind="stable").tolist():
        p = assign[j]
        if p < 0 or p not in set(inst.cand[j].tolist()):
            continue
        if np.all(loads[p] + inst.A[j] <= inst.C[p] * (1 + TOL)):
            loads[p] += inst.A[j]
            out[j] = p
    return out
