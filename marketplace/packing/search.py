"""The packing heuristic: Lagrangian prices, greedy placement and local search.

1. **Prices.** Relax the capacity constraints with a price ``mu[p, d]`` per provider and
   resource. For fixed prices the problem splits by job: each job takes the candidate with
   the largest *reduced value* ``v[j] - mu[p] . A[j]`` if positive. Subgradient steps
   (Polyak rule) raise the prices of over-subscribed providers and lower idle ones. Every
   price vector gives an upper bound on the optimum (the smallest is kept); the pooled
   knapsack's shadow prices are the start.
2. **Greedy.** Several times along the way, place jobs in decreasing order of reduced
   value (and of reduced value per unit of normalised size), each on the candidate the
   prices favour if it fits, then fill with what is left by value density, best fit.
3. **Local search.** For each job left out, by value: insert it where it fits; or move one
   placed job to another of its candidates to make room; or swap out a cheaper job (which
   is then re-placed elsewhere if possible). Repeated while it improves, within the time
   budget.
4. **Consolidation.** Empty lightly used providers into other used ones when everything
   fits, which lowers waste without changing value.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from numpy.typing import NDArray

from marketplace.packing.model import TOL, Instance

__all__ = ["Search", "first_fit_decreasing"]

logger = logging.getLogger(__name__)


class Search:
    """Mutable search state over an :class:`Instance` (loads kept as Python floats)."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.d = inst.A.shape[1]
        self.A = inst.A.tolist()
        self.v = inst.v.tolist()
        self.cap = (inst.C * (1 + TOL)).tolist()
        self.cand = [c.tolist() for c in inst.cand]
        pos = inst.C > 0
        cbar = np.array(
            [inst.C[pos[:, k], k].mean() if pos[:, k].any() else 1.0 for k in range(self.d)]
        )
        self.cbar = cbar
        self.size = (inst.A / cbar).sum(axis=1) + 1e-12
        self.inv = np.where(pos, 1.0 / np.where(pos, inst.C, 1.0), 0.0).tolist()
        self.reset()

    def reset(self) -> None:
        """Start from the empty assignment."""
        self.assign = [-1] * self.inst.n
        self.loads = [[0.0] * self.d for _ in range(self.inst.m)]
        self.on: list[set[int]] = [set() for _ in range(self.inst.m)]

    def fits(self, j: int, p: int) -> bool:
        a, load, cap = self.A[j], self.loads[p], self.cap[p]
        return all(load[k] + a[k] <= cap[k] for k in range(self.d))

    def fits_without(self, j: int, p: int, out: int) -> bool:
        """Would ``j`` fit on ``p`` once ``out`` (placed on ``p``) is removed?"""
        a, b, load, cap = self.A[j], self.A[out], self.loads[p], self.cap[p]
        return all(load[k] - b[k] + a[k] <= cap[k] for k in range(self.d))

    def place(self, j: int, p: int) -> None:
        a, load = self.A[j], self.loads[p]
        for k in range(self.d):
            load[k] += a[k]
        self.assign[j] = p
        self.on[p].add(j)

    def remove(self, j: int) -> None:
        p = self.assign[j]
        a, load = self.A[j], self.loads[p]
        for k in range(self.d):
            load[k] -= a[k]
        self.assign[j] = -1
        self.on[p].discard(j)

    def slack(self, j: int, p: int) -> float:
        """Normalised capacity left on ``p`` after adding ``j`` (smaller = better fit)."""
        a, load, inv = self.A[j], self.loads[p], self.inv[p]
        return float(sum((self.cap[p][k] - load[k] - a[k]) * inv[k] for k in range(self.d)))

    def best_fit(self, j: int) -> int:
        best, best_slack = -1, math.inf
        for p in self.cand[j]:
            if self.fits(j, p):
                s = self.slack(j, p)
                if s < best_slack:
                    best, best_slack = p, s
        return best

    def value(self) -> float:
        return float(sum(self.v[j] for j, p in enumerate(self.assign) if p >= 0))

    def greedy_pairs(self, key: NDArray[np.float64]) -> None:
        """Place pairs in decreasing ``key`` order, then fill by density (best fit)."""
        inst = self.inst
        pj, pp = inst.pj.tolist(), inst.pp.tolist()
        for k in np.argsort(-key, kind="stable").tolist():
            j = pj[k]
            if self.assign[j] < 0 and self.fits(j, pp[k]):
                self.place(j, pp[k])
        self.fill()

    def fill(self) -> None:
        for j in np.argsort(-(self.inst.v / self.size), kind="stable").tolist():
            if self.assign[j] < 0:
                p = self.best_fit(j)
                if p >= 0:
                    self.place(j, p)

    def _make_room(self, u: int, deadline: float) -> bool:
        """Place ``u`` by moving one placed job to another of its candidates."""
        for p in self.cand[u]:
            for j in sorted(self.on[p], key=lambda j: self.v[j]):
                if not self.fits_without(u, p, j):
                    continue
                for q in self.cand[j]:
                    if q != p and self.fits(j, q):
                        self.remove(j)
                        self.place(j, q)
                        self.place(u, p)
                        return True
            if time.perf_counter() > deadline:
                return False
        return False

    def _swap(self, u: int) -> bool:
        """Place ``u`` instead of a cheaper job, re-placing that one elsewhere if possible."""
        best: tuple[float, int, int] | None = None
        vu = self.v[u]
        for p in self.cand[u]:
            for j in self.on[p]:
                gain = vu - self.v[j]
                if gain > 0 and (best is None or gain > best[0]) and self.fits_without(u, p, j):
                    best = (gain, j, p)
        if best is None:
            return False
        _, j, p = best
        self.remove(j)
        self.place(u, p)
        q = self.best_fit(j)
        if q >= 0:
            self.place(j, q)
        return True

    def improve(self, deadline: float, *, rounds: int = 6) -> None:
        """Local search on the jobs left out, by decreasing value, until no gain or time."""
        order = np.argsort(-self.inst.v, kind="stable").tolist()
        for _ in range(rounds):
            changed = False
            for u in order:
                if self.assign[u] >= 0 or not self.cand[u]:
                    continue
                if time.perf_counter() > deadline:
                    return
                p = self.best_fit(u)
                if p >= 0:
                    self.place(u, p)
                    changed = True
                elif self._make_room(u, deadline) or self._swap(u):
                    changed = True
            if not changed:
                return

    def consolidate(self, deadline: float) -> None:
        """Move all jobs off lightly used providers onto other used ones when they fit."""
        used = [p for p in range(self.inst.m) if self.on[p]]
        used.sort(key=lambda p: sum(self.loads[p][k] * self.inv[p][k] for k in range(self.d)))
        for p in used:
            if time.perf_counter() > deadline:
                return
            jobs = sorted(self.on[p], key=lambda j: -self.size[j])
            moved: list[tuple[int, int]] = []
            for j in jobs:
                self.remove(j)
                target, best_slack = -1, math.inf
                for q in self.cand[j]:
                    if q != p and self.on[q] and self.fits(j, q):
                        s = self.slack(j, q)
                        if s < best_slack:
                            target, best_slack = q, s
                if target < 0:
                    self.place(j, p)
                    break
                self.place(j, target)
                moved.append((j, target))
            else:
                continue
            for j, _q in reversed(moved):  # could not empty p: undo
                self.remove(j)
                self.place(j, p)


def first_fit_decreasing(inst: Instance) -> list[int]:
    """Classic first-fit decreasing: biggest jobs first (by normalised size), each on its
    first candidate (in the given candidate order) with room. Ignores values."""
    s = Search(inst)
    for j in np.argsort(-s.size, kind="stable").tolist():
        for p in s.cand[j]:
            if s.fits(j, p):
                s.place(j, p)
                break
    return s.assign


def lagrangian(
    s: Search, mu0: NDArray[np.float64], *, iters: int, deadline: float
) -> tuple[list[int], float, float]:
    """Subgradient on capacity prices with greedy primal solutions along the way.

    Returns the best assignment found, its value and the best (smallest) upper bound.
    """
    inst = s.inst
    if inst.pj.shape[0] == 0:
        return [-1] * inst.n, 0.0, 0.0
    An = inst.A / s.cbar
    Cn = inst.C / s.cbar
    Apj = An[inst.pj]
    vpj = inst.v[inst.pj]
    counts = np.bincount(inst.pj, minlength=inst.n)
    has = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[has]
    seg = counts[has]
    mu = np.repeat((mu0 * s.cbar)[None, :], inst.m, axis=0)
    best_assign, best_value, best_ub = [-1] * inst.n, 0.0, math.inf
    theta, stall = 1.0, 0
    checkpoints = {0, iters // 4, iters // 2, (3 * iters) // 4, iters - 1}
    for it in range(iters):
        r = vpj - (mu[inst.pp] * Apj).sum(axis=1)
        mx = np.maximum.reduceat(r, starts)
        ub = float(np.maximum(mx, 0.0).sum() + (mu * Cn).sum())
        if ub < best_ub - 1e-12:
            best_ub, stall = ub, 0
        else:
            stall += 1
            if stall >= 8:
                theta, stall = theta / 2, 0
        if it in checkpoints or time.perf_counter() > deadline:
            for key in (r, r / (s.size[inst.pj])):
                s.reset()
                s.greedy_pairs(key)
                value = s.value()
                if value > best_value:
                    best_value, best_assign = value, list(s.assign)
            if time.perf_counter() > deadline:
                break
        top = (r == np.repeat(mx, seg)) & np.repeat(mx > 0, seg)
        chosen = np.flatnonzero(top)
        _, first = np.unique(inst.pj[chosen], return_index=True)
        chosen = chosen[first]
        load = np.zeros_like(Cn)
        np.add.at(load, inst.pp[chosen], Apj[chosen])
        g = Cn - load
        g = np.where((mu <= 0) & (g > 0), 0.0, g)
        norm = float((g * g).sum())
        if norm == 0.0 or theta < 1e-4:
            break
        step = theta * max(ub - best_value, 1e-9 * max(ub, 1.0)) / norm
        mu = np.maximum(0.0, mu - step * g)
    return best_assign, best_value, best_ub
