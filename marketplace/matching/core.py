"""Exact scoring and selection shared by the matching index and its brute-force oracle.

Everything that decides *which* providers a job gets lives here and is used by both
:class:`marketplace.matching.IndexSnapshot` (on the candidates its trees return) and
:func:`brute_force_match` (on every provider), so the two can only differ in which
candidates they look at, never in how a candidate is judged: the same values go through
the same correctly rounded operations, so equal inputs give equal bits.

A capacity class (:mod:`~marketplace.matching.classes`) keeps its own copy of the provider
columns in the order of the points of its tree, sorted by energy level and then along a
Morton (Z-order) curve of the position, so that providers near each other in the tree are
near each other in memory. That makes both the tree's leaf scans and the gathers of
candidate attributes cache friendly, which roughly halves query and build times on a
million providers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from marketplace.errors import InvalidInputError, ScorerContractError
from marketplace.geo import EARTH_DIAMETER_KM, EARTH_RADIUS_KM
from marketplace.matching.records import (
    DEFAULT_ENERGY_WEIGHT_KM,
    DEFAULT_SCORER,
    MAX_PRICE_WEI,
    JobRequest,
    Match,
    Scorer,
)
from marketplace.matching.table import ProviderTable

__all__ = [
    "REL_TOL",
    "Columns",
    "JobThresholds",
    "Thresholds",
    "brute_force_match",
    "check_k",
    "distances",
    "evaluate",
    "job_point",
    "merge_top_k",
    "prefers",
    "scan",
    "scored",
    "select_top_k",
]

logger = logging.getLogger(__name__)

REL_TOL = 1e-9
"""Relative slack between the tree's distances and ours (they may differ in the last bits)."""


def check_k(k: int) -> None:
    """Raise unless ``k`` is a positive int."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k={k!r}; ask for at least one match (k >= 1)")


def job_point(lat: float, lon: float) -> tuple[float, float, float]:
    """A job origin on the sphere, in km (scalar libm, so every path gets equal bits)."""
    phi, lam = math.radians(lat), math.radians(180.0 if lon == -180.0 else lon)
    cos_phi = 0.0 if abs(lat) == 90.0 else math.cos(phi)
    return (
        EARTH_RADIUS_KM * cos_phi * math.cos(lam),
        EARTH_RADIUS_KM * cos_phi * math.sin(lam),
        EARTH_RADIUS_KM * math.sin(phi),
    )


@dataclass(frozen=True)
class JobThresholds:
    """A job's thresholds as plain values (the same in every search path).

    A job that prefers an image it can fetch (``JobRequest.prefer_image``) is searched as
    two disjoint halves whose answers merge into the job's: the providers holding the
    image (``image``: a filter) and those that must pull it (``exclude`` the holders,
    ``penalty`` added to each cost). A half searched second only needs candidates
    costing at most ``cap``, the first half's k-th cost, and stops once the tree's
    distances pass it.
    """

    point: tuple[float, float, float]
    cpu: float
    memory_mb: int
    gpu: int
    disk_mb: int
    max_price: int
    image: str | None
    exclude: str | None = None
    penalty: float = 0.0
    cap: float = math.inf

    @classmethod
    def of(cls, job: JobRequest) -> JobThresholds:
        """The thresholds of ``job`` (no price cap means the largest price)."""
        r = job.resources
        cap = job.max_price_wei
        price = MAX_PRICE_WEI if cap is None else min(cap, MAX_PRICE_WEI)
        point = job_point(job.lat, job.lon)
        return cls(point, r.cpu, r.memory_mb, r.gpu, r.disk_mb, price, job.image)

    def holding(self, image: str) -> JobThresholds:
        """The half of a preferring job among the providers holding ``image``."""
        return replace(self, image=image, exclude=None, penalty=0.0)

    def pulling(self, image: str, pull_km: float) -> JobThresholds:
        """The half among the providers that must pull ``image``, charged ``pull_km``."""
        return replace(self, image=None, exclude=image, penalty=pull_km)

    def capped(self, cap: float) -> JobThresholds:
        """The same half, needing only candidates that cost at most ``cap``."""
        return replace(self, cap=cap)


def prefers(job: JobRequest) -> bool:
    """Whether ``job`` charges providers without its image a pull (a positive one)."""
    return job.prefer_image is not None and job.pull_km > 0


_D = EARTH_DIAMETER_KM

# Column indices of the packed arrays (one gather brings a candidate's whole record).
_X, _Y, _Z, _CPU, _REP = range(5)
_MEM, _GPU, _DISK, _PRICE, _LEVEL = range(5)


@dataclass(frozen=True, eq=False)
class Columns:
    """Provider attributes packed by row, in a fixed order (a capacity class's tree order).

    ``f`` holds ``x, y, z, cpu, reputation`` and ``i`` holds ``memory_mb, gpu, disk_mb,
    price_wei, level``, one row per provider, so one fancy index fetches a candidate's
    whole record. ``bits`` are the image bitsets (see
    :class:`~marketplace.matching.table.ProviderTable`), ``rows`` the table row of each
    entry and ``names`` the table's ids (shared, not copied). Every provider in it was
    online when it was packed; ``live``, when set, marks the entries still current (the
    others changed since and are never eligible here).
    """

    rows: NDArray[np.int64]
    names: NDArray[np.object_]
    f: NDArray[np.float64]
    i: NDArray[np.int64]
    bits: NDArray[np.uint64]
    image_index: Mapping[str, int]
    live: NDArray[np.bool_] | None = None
    _masks: dict[str, NDArray[np.bool_]] = field(default_factory=dict, init=False, repr=False)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def of_table(cls, table: ProviderTable, order: NDArray[np.int64]) -> Columns:
        """Packed copies of ``table``'s columns for the rows ``order``, in that order."""
        n = order.shape[0]
        f = np.empty((n, 5), dtype=np.float64)
        f[:, :3] = table.xyz[order]
        f[:, _CPU] = table.cpu[order]
        f[:, _REP] = table.reputation[order]
        i = np.empty((n, 5), dtype=np.int64)
        i[:, _MEM] = table.memory_mb[order]
        i[:, _GPU] = table.gpu[order]
        i[:, _DISK] = table.disk_mb[order]
        i[:, _PRICE] = table.price_wei[order]
        i[:, _LEVEL] = table.level[order]
        bits = np.take(table.image_bits, order, axis=1)  # much faster than [:, order]
        return cls(rows=order, names=table.ids, f=f, i=i, bits=bits, image_index=table.image_index)

    def subset(self, positions: NDArray[np.int64]) -> Columns:
        """The entries at ``positions`` (ascending positions keep the spatial order)."""
        return Columns(
            rows=self.rows[positions],
            names=self.names,
            f=self.f[positions],
            i=self.i[positions],
            bits=np.take(self.bits, positions, axis=1),
            image_index=self.image_index,
            live=None if self.live is None else self.live[positions],
        )

    def updated(
        self,
        table: ProviderTable,
        keep: NDArray[np.bool_],
        add: NDArray[np.int64],
        at: NDArray[np.int64],
    ) -> Columns:
        """A copy with the entries ``keep`` and ``table``'s rows ``add`` inserted before the
        kept positions ``at`` (ascending), the columns of ``table`` (a later version of this
        one's, its rows in the same places)."""
        new = Columns.of_table(table, add)
        n_kept = int(np.count_nonzero(keep))
        placed = at + np.arange(add.shape[0])  # where the added entries land
        src = np.empty(n_kept + add.shape[0], dtype=np.int64)  # in (old entries, added)
        src[placed] = len(self) + np.arange(add.shape[0])
        kept = np.ones(src.shape[0], dtype=np.bool_)
        kept[placed] = False
        src[kept] = np.flatnonzero(keep)
        return Columns(
            rows=np.concatenate([self.rows, add])[src],
            names=table.ids,
            f=np.take(np.concatenate([self.f, new.f]), src, axis=0),
            i=np.take(np.concatenate([self.i, new.i]), src, axis=0),
            bits=np.take(np.concatenate([self.bits, new.bits], axis=1), src, axis=1),
            image_index=table.image_index,
        )

    def slice(self, start: int, stop: int) -> Columns:
        """The entries ``start .. stop - 1`` (views, not copies)."""
        return Columns(
            rows=self.rows[start:stop],
            names=self.names,
            f=self.f[start:stop],
            i=self.i[start:stop],
            bits=self.bits[:, start:stop],
            image_index=self.image_index,
            live=None if self.live is None else self.live[start:stop],
        )

    def holds(self, image: str, idx: NDArray[np.int64] | None) -> NDArray[np.bool_]:
        """Whether the providers at ``idx`` (None: all, a mask made once per image) hold
        ``image``."""
        if idx is None:
            mask = self._masks.get(image)
            if mask is None:
                mask = self._masks[image] = self.holds(image, np.arange(len(self)))
            return mask
        b = self.image_index.get(image)
        if b is None:
            return np.zeros(idx.shape, dtype=np.bool_)
        word = self.bits[b // 64][idx]
        return np.asarray((word >> np.uint64(b % 64)) & np.uint64(1) == 1)


def distances(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    z: NDArray[np.float64],
    level: NDArray[np.int64],
    q: NDArray[np.float64],
    weight_km: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Chord and augmented distances of providers at ``(x, y, z, level)`` from ``q``.

    Arrays of shape (n,) go with ``q`` of shape (3,); (p, n) with (p, 3). Only correctly
    rounded operations are used, so the bits do not depend on the shapes.
    """
    qb = q if x.ndim == 1 else q[:, None, :]
    dx = x - qb[..., 0]
    dy = y - qb[..., 1]
    dz = z - qb[..., 2]
    chord2 = dx * dx + dy * dy + dz * dz
    e = weight_km * level
    return np.sqrt(chord2), np.sqrt(chord2 + e * e)


def scored(scorer: Scorer, s: NDArray[np.float64], rep: NDArray[np.float64]) -> NDArray[np.float64]:
    """Apply ``scorer`` and enforce its contract (``cost >= s`` elementwise)."""
    cost = np.asarray(scorer(s, rep), dtype=np.float64)
    if cost.shape != s.shape or not bool(np.all(cost >= s)):
        raise ScorerContractError(
            "the scorer returned a cost below the augmented distance (or NaN, or a different "
            "shape); it may only add penalties: return cost >= augmented_km elementwise"
        )
    return cost


Bound = float | NDArray[np.float64] | NDArray[np.int64]
"""A threshold: a scalar for one job, or a (p, 1) column for p jobs at once."""


class Thresholds(NamedTuple):
    """What a provider must have (at least) and ask (at most) to be eligible."""

    cpu: Bound
    memory_mb: Bound
    gpu: Bound
    disk_mb: Bound
    max_price: Bound


def evaluate(
    cols: Columns,
    idx: NDArray[np.int64],
    q: NDArray[np.float64],
    th: Thresholds,
    *,
    weight_km: float,
    scorer: Scorer,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(eligible, chord, augmented, cost)`` of the candidates ``idx`` (image not checked).

    ``idx`` of shape (n,) goes with ``q`` (3,) and scalar thresholds; (p, n) with
    ``q`` (p, 3) and (p, 1) thresholds.
    """
    f = cols.f[idx]
    i = cols.i[idx]
    cpu, memory_mb, gpu, disk_mb, price = th
    ok = (
        (f[..., _CPU] >= cpu)
        & (i[..., _MEM] >= memory_mb)
        & (i[..., _GPU] >= gpu)
        & (i[..., _DISK] >= disk_mb)
        & (i[..., _PRICE] <= price)
    )
    if cols.live is not None:
        ok &= cols.live[idx]
    chord, s = distances(f[..., _X], f[..., _Y], f[..., _Z], i[..., _LEVEL], q, weight_km)
    return np.asarray(ok), chord, s, scored(scorer, s, f[..., _REP])


def select_top_k(
    names: NDArray[np.object_],
    rows: NDArray[np.int64],
    levels: NDArray[np.int64],
    chord: NDArray[np.float64],
    s: NDArray[np.float64],
    cost: NDArray[np.float64],
    k: int,
) -> list[Match]:
    """The best ``k`` eligible candidates by ``(cost, provider id)``.

    ``rows`` (table rows, for the ids in ``names``), ``levels``, ``chord``, ``s`` and
    ``cost`` are aligned, one entry per eligible candidate.
    """
    n = rows.shape[0]
    if n == 0:
        return []
    if n > 4 * k + 64:  # many candidates (a scan): keep the k cheapest and their ties
        kth = np.partition(cost, k - 1)[k - 1]
        few = np.flatnonzero(cost <= kth)
        if few.shape[0] < n:
            return select_top_k(names, rows[few], levels[few], chord[few], s[few], cost[few], k)
    order = np.argsort(cost, kind="stable")
    head = cost[order[: k + 1]]
    if head.shape[0] > 1 and bool(np.any(head[1:] == head[:-1])):
        # Equal costs near the top: order those by provider id (rare; Python sort).
        kth = head[min(k, head.shape[0]) - 1]
        keep = np.flatnonzero(cost <= kth)
        c0 = cost[keep].tolist()
        n0 = names[rows[keep]].tolist()
        order = keep[sorted(range(len(c0)), key=lambda t: (c0[t], n0[t]))]
    best = order[:k]
    name = names[rows[best]].tolist()
    c = cost[best].tolist()
    a = s[best].tolist()
    lv = levels[best].tolist()
    ch = chord[best].tolist()
    return [
        Match(name[t], _D * math.asin(min(1.0, ch[t] / _D)), int(lv[t]), a[t], c[t])
        for t in range(len(name))
    ]


def scan(
    cols: Columns,
    idx: NDArray[np.int64] | None,
    job: JobThresholds,
    *,
    k: int,
    weight_km: float,
    scorer: Scorer,
) -> list[Match]:
    """Exact answer among the candidates ``idx`` (None: all of ``cols``) by filtering them
    first and scoring the eligible ones."""
    f = cols.f if idx is None else cols.f[idx]
    i = cols.i if idx is None else cols.i[idx]
    ok = (
        (f[:, _CPU] >= job.cpu)
        & (i[:, _MEM] >= job.memory_mb)
        & (i[:, _GPU] >= job.gpu)
        & (i[:, _DISK] >= job.disk_mb)
        & (i[:, _PRICE] <= job.max_price)
    )
    if cols.live is not None:
        ok &= cols.live if idx is None else cols.live[idx]
    if job.image is not None:
        ok &= cols.holds(job.image, idx)
    if job.exclude is not None:
        ok &= ~cols.holds(job.exclude, idx)
    e = np.flatnonzero(ok)
    fe, ie = f[e], i[e]
    q = np.asarray(job.point)
    chord, s = distances(fe[:, _X], fe[:, _Y], fe[:, _Z], ie[:, _LEVEL], q, weight_km)
    cost = scored(scorer, s, fe[:, _REP])
    if job.penalty > 0:
        cost = cost + job.penalty
    rows = cols.rows[e] if idx is None else cols.rows[idx[e]]
    return select_top_k(cols.names, rows, ie[:, _LEVEL], chord, s, cost, k)


def brute_force_match(
    table: ProviderTable,
    job: JobRequest,
    *,
    k: int = 5,
    weight_km: float = DEFAULT_ENERGY_WEIGHT_KM,
    scorer: Scorer = DEFAULT_SCORER,
    image_masks: MutableMapping[str, NDArray[np.bool_]] | None = None,
) -> list[Match]:
    """The reference answer: filter and score every provider with numpy, no tree.

    A job preferring an image (``prefer_image``) charges ``pull_km`` to every provider
    not holding it. ``image_masks`` optionally caches one boolean row mask per image
    across calls.
    """
    check_k(k)
    j = JobThresholds.of(job)

    def mask_of(image: str) -> NDArray[np.bool_]:
        mask = None if image_masks is None else image_masks.get(image)
        if mask is None:
            mask = table.image_mask(image)
            if image_masks is not None:
                image_masks[image] = mask
        return mask

    ok = (
        table.online
        & (table.cpu >= j.cpu)
        & (table.memory_mb >= j.memory_mb)
        & (table.gpu >= j.gpu)
        & (table.disk_mb >= j.disk_mb)
        & (table.price_wei <= j.max_price)
    )
    if j.image is not None:
        ok &= mask_of(j.image)
    rows = np.flatnonzero(ok)
    xyz = table.xyz[rows]
    q = np.asarray(j.point)
    chord, s = distances(xyz[:, 0], xyz[:, 1], xyz[:, 2], table.level[rows], q, weight_km)
    cost = scored(scorer, s, table.reputation[rows])
    if prefers(job):
        assert job.prefer_image is not None
        cost = np.where(mask_of(job.prefer_image)[rows], cost, cost + job.pull_km)
    return select_top_k(table.ids, rows, table.level[rows], chord, s, cost, k)


def merge_top_k(a: list[Match], b: list[Match], k: int) -> list[Match]:
    """The best ``k`` of two answers over disjoint providers, by ``(score, provider id)``."""
    if not a or not b:
        return (a or b)[:k]
    return sorted(a + b, key=lambda m: (m.score, m.provider_id))[:k]
