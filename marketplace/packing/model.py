"""The records and the array form of a packing instance (see :mod:`marketplace.packing`).

A packing instance is a multi-dimensional multiple knapsack with assignment restrictions:
jobs with resource demand vectors and values, providers with free-capacity vectors, and for
each job the providers it may go to (the candidates matching found for it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from marketplace.errors import InvalidPackingError

__all__ = ["Instance", "PackJob", "PackProvider", "Packing"]

logger = logging.getLogger(__name__)

TOL = 1e-9
"""Relative slack allowed when summing loads (float rounding), per dimension."""


@dataclass(frozen=True, slots=True)
class PackJob:
    """A pending job to place.

    Attributes:
        id: Job id.
        demand: Resource demand, one entry per dimension (e.g. cpu, memory_mb, gpu,
            disk_mb as in :meth:`marketplace.matching.records.Resources.as_vector`).
        value: What placing it is worth (its price, or a priority); >= 0.
        candidates: Ids of the providers it may go to (from matching), any order.
    """

    id: str
    demand: tuple[float, ...]
    value: float
    candidates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PackProvider:
    """A provider's free capacity, one entry per dimension (same order as the demands)."""

    id: str
    capacity: tuple[float, ...]


@dataclass(frozen=True)
class Packing:
    """The result of packing.

    Attributes:
        assignment: Job id -> provider id for every placed job.
        unassigned: Ids of jobs left out, in input order.
        value: Total value of the placed jobs.
        waste: Normalised free capacity left on the providers that received jobs:
            the sum over used providers of ``sum_d (free_d - load_d) / free_d`` over the
            dimensions with ``free_d > 0``. Untouched providers count zero, so lower waste
            means jobs are consolidated and whole providers stay free for big jobs.
        method: ``"exact"``, ``"heuristic"`` or ``"first-fit-decreasing"``.
        optimal: True when the exact solver proved the value optimal.
        upper_bound: A proven upper bound on the best value, when one was computed.
    """

    assignment: Mapping[str, str]
    unassigned: tuple[str, ...]
    value: float
    waste: float
    method: str
    optimal: bool = False
    upper_bound: float | None = None
    details: Mapping[str, float] = field(default_factory=dict)


def _vector(name: str, owner: str, values: Sequence[float]) -> list[float]:
    out = [float(x) for x in values]
    if any(not math.isfinite(x) or x < 0 for x in out):
        raise InvalidPackingError(f"{owner}: {name} {tuple(values)} must be finite and >= 0")
    return out


@dataclass(frozen=True, eq=False)
class Instance:
    """Arrays of a validated instance; pairs are the (job, provider) candidates that fit.

    Attributes:
        job_ids, provider_ids: Ids by index.
        A: Demands, shape (n, d).
        v: Values, shape (n,).
        C: Capacities, shape (m, d).
        cand: For each job, the provider indices it fits on (sorted, unique).
        pj, pp: The same pairs flattened, grouped by job (``pj`` ascending).
    """

    job_ids: tuple[str, ...]
    provider_ids: tuple[str, ...]
    A: NDArray[np.float64]
    v: NDArray[np.float64]
    C: NDArray[np.float64]
    cand: tuple[NDArray[np.int64], ...]
    pj: NDArray[np.int64]
    pp: NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    @property
    def m(self) -> int:
        return int(self.C.shape[0])

    @classmethod
    def of(cls, jobs: Sequence[PackJob], providers: Sequence[PackProvider]) -> Instance:
        """Validate and convert; candidates a job does not fit on even when empty are dropped.

        Raises:
            InvalidPackingError: Duplicate ids, unknown candidates, mismatched dimensions,
                negative or non-finite numbers.
        """
        prov_index: dict[str, int] = {}
        for i, p in enumerate(providers):
            if p.id in prov_index:
                raise InvalidPackingError(f"provider {p.id!r} is listed twice; list it once")
            prov_index[p.id] = i
        dims = {len(p.capacity) for p in providers} | {len(j.demand) for j in jobs}
        if len(dims) > 1:
            raise InvalidPackingError(
                f"demands and capacities have different lengths {sorted(dims)}; use the same "
                "resource order everywhere, e.g. Resources.as_vector()"
            )
        d = dims.pop() if dims else 1
        if d < 1:
            raise InvalidPackingError("vectors are empty; pass at least one resource")
        C = np.array(
            [_vector("capacity", p.id, p.capacity) for p in providers], dtype=np.float64
        ).reshape(len(providers), d)
        seen: set[str] = set()
        rows: list[list[float]] = []
        values: list[float] = []
        cand: list[NDArray[np.int64]] = []
        for j in jobs:
            if j.id in seen:
                raise InvalidPackingError(f"job {j.id!r} is listed twice; list it once")
            seen.add(j.id)
            demand = _vector("demand", j.id, j.demand)
            if not (math.isfinite(j.value) and j.value >= 0):
                raise InvalidPackingError(f"job {j.id}: value {j.value} must be finite and >= 0")
            unknown = [c for c in j.candidates if c not in prov_index]
            if unknown:
                raise InvalidPackingError(
                    f"job {j.id}: candidates {unknown} are not among the providers; pass every "
                    "candidate's free capacity"
                )
            idx = np.unique(np.array([prov_index[c] for c in j.candidates], dtype=np.int64))
            a = np.array(demand)
            if idx.size:
                idx = idx[np.all(C[idx] >= a, axis=1)]
            rows.append(demand)
            values.append(float(j.value))
            cand.append(idx)
        A = np.array(rows, dtype=np.float64).reshape(len(jobs), d)
        pj = np.repeat(np.arange(len(jobs), dtype=np.int64), [c.shape[0] for c in cand])
        pp = np.concatenate(cand) if cand else np.empty(0, dtype=np.int64)
        return cls(
            job_ids=tuple(j.id for j in jobs),
            provider_ids=tuple(p.id for p in providers),
            A=A,
            v=np.array(values, dtype=np.float64),
            C=C,
            cand=tuple(cand),
            pj=pj,
            pp=pp.astype(np.int64),
        )

    def waste(self, assign: Sequence[int]) -> float:
        """Normalised free capacity left on the providers used by ``assign``."""
        loads = np.zeros_like(self.C)
        used = np.zeros(self.m, dtype=np.bool_)
        for j, p in enumerate(assign):
            if p >= 0:
                loads[p] += self.A[j]
                used[p] = True
        C = self.C[used]
        with np.errstate(divide="ignore", invalid="ignore"):
            free = np.where(C > 0, (C - loads[used]) / np.where(C > 0, C, 1.0), 0.0)
        return float(free.sum())

    def value(self, assign: Sequence[int]) -> float:
        """Total value of the placed jobs."""
        return float(sum(self.v[j] for j, p in enumerate(assign) if p >= 0))

    def feasible(self, assign: Sequence[int]) -> bool:
        """Every placed job on one of its candidates, no provider over capacity."""
        loads = np.zeros_like(self.C)
        for j, p in enumerate(assign):
            if p >= 0:
                if p not in set(self.cand[j].tolist()):
                    return False
                loads[p] += self.A[j]
        return bool(np.all(loads <= self.C * (1 + TOL) + 1e-12))

    def result(
        self,
        assign: Sequence[int],
        *,
        method: str,
        optimal: bool = False,
        upper_bound: float | None = None,
        details: Mapping[str, float] | None = None,
    ) -> Packing:
        """Turn an index assignment (-1 = unplaced) into a :class:`Packing`."""
        return Packing(
            assignment={
                self.job_ids[j]: self.provider_ids[p] for j, p in enumerate(assign) if p >= 0
            },
            unassigned=tuple(self.job_ids[j] for j, p in enumerate(assign) if p < 0),
            value=self.value(assign),
            waste=self.waste(assign),
            method=method,
            optimal=optimal,
            upper_bound=upper_bound,
            details=dict(details or {}),
        )
