"""Energy-weighted matching of jobs to providers with SciPy's k-d trees (``cKDTree``).

Each provider is a point in four dimensions: its position on the Earth sphere in km
(:mod:`marketplace.geo`) and ``weight_km * energy_level``, the coordinate through which
cheap, lightly loaded power can outweigh distance. A job's origin is the point
``(x, y, z, 0)``, so the tree's Euclidean distance is

    augmented_km = sqrt(chord_km**2 + (weight_km * level)**2)

and nearest-first means "near and on cheap electricity"; ``weight_km = 0`` is nearest
only (see :data:`~marketplace.matching.records.DEFAULT_ENERGY_WEIGHT_KM` for how large a
weight must be to out-weigh distance).

A query returns the ``k`` best *eligible* providers (online, enough free CPU, memory, GPU
and disk, holding the image, asking at most the job's price), ranked by
``(score, provider_id)`` where ``score = scorer(augmented_km, reputation)``, plus
``pull_km`` for a provider that lacks an image the job prefers (a renter's image it can
fetch: a preference, not a filter). The scorer contract (``score >= augmented_km``)
makes the search exact:

- Providers that can never take a job (offline, no free CPU or memory) are left out of
  the trees; GPU jobs search a second set of trees, of the providers with a free GPU.
- Each energy level has a tree of its own (one tree over all levels sees every job from
  afar, ``weight_km * level`` off its hyperplane, and walks a thin shell of nearly
  equidistant points). Levels are searched lowest first, each only while its
  ``weight_km * level`` (a lower bound of every cost in it) does not exceed the k-th
  cost found so far; the answers merge by ``(score, provider_id)``.
- Within a level the tree is asked for the ``k'`` nearest points, ``k' = max(64, 16k)``
  (more for an image few providers hold: ``4k / share``), and the eligible ones among
  them are scored. Once ``k`` are eligible, the ``k``-th best score ``C`` bounds the
  answer: a provider whose augmented distance exceeds ``C`` scores more than ``C`` too.
  If the ``k'``-th distance exceeds ``C`` the answer is complete; otherwise one radius
  query (every point within ``C``) completes it.
- While fewer than ``k`` are eligible ``k'`` grows (by the observed eligible rate, at
  least fourfold) and the tree is asked again, until complete or exhausted; past
  ``n / 16`` a linear scan of the class is cheaper and is used instead.
- A class of at most :data:`SCAN_BELOW` providers (a small network, a sparse level) is
  scanned whole, and an image held by at most 1024 providers of a class (a renter's
  image in a few caches, a rare offered one) is answered by scoring exactly those
  holders, without the tree.
- A job preferring an image is two searches over disjoint providers: those holding it
  (a filter, as for a required image) and those that must pull it (the holders left
  out, ``pull_km`` added to every cost, so the bound is the ``k'``-th distance plus
  ``pull_km``). The half likelier to hold the answer runs first; the other only needs
  providers costing at most the first half's ``k``-th cost ``C`` and stops once the
  tree's distances pass ``C``. The best ``k`` of both, by ``(score, provider_id)``, is
  the answer.

So the result is identical to :func:`brute_force_match`, which scores every provider.

Refresh: an :class:`IndexSnapshot` is immutable (table, trees, settings). ``refresh``
builds a new snapshot off to the side and swaps one reference; a query uses the snapshot it
grabbed, so it never waits for a refresh, and the trees build with the GIL released, so
a refresh on a background thread does not stall query threads either. A refresh of a few
providers indexes only them, in a side class searched first, masking their old entries
(:mod:`~marketplace.matching.update`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from marketplace.errors import InvalidInputError
from marketplace.matching.classes import CapacityClass
from marketplace.matching.core import (
    REL_TOL,
    JobThresholds,
    Thresholds,
    brute_force_match,
    check_k,
    evaluate,
    merge_top_k,
    prefers,
    scan,
    select_top_k,
)
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
from marketplace.matching.tree_build import InlineTreeBuilder, TreeBuilder
from marketplace.matching.update import (
    SIDE_AT_MOST,
    Packed,
    packed,
    side_classes,
    updatable,
    updated_columns,
    with_side,
)

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

logger = logging.getLogger(__name__)

_MIN_PULL = 64
_PULL_PER_K = 16
_GROWTH = 4
_SCAN_DIVISOR = 16
_SCAN_FLOOR = 2048

SCAN_BELOW = 3000
"""A class of at most this many providers is scanned whole (cheaper than tree round trips)."""


@dataclass(frozen=True, eq=False)
class IndexSnapshot:
    """An immutable state of the index: the table, its trees and the ranking settings.

    Attributes:
        table: The providers.
        weight_km: Energy weight (km per level).
        scorer: Ranking cost, see :data:`~marketplace.matching.records.Scorer`.
        version: Increases by one with every refresh.
    """

    table: ProviderTable
    weight_km: float
    scorer: Scorer
    version: int
    _general: tuple[CapacityClass, ...]
    _gpu: tuple[CapacityClass, ...]
    _state: Packed

    @classmethod
    def build(
        cls,
        table: ProviderTable,
        *,
        weight_km: float = DEFAULT_ENERGY_WEIGHT_KM,
        scorer: Scorer = DEFAULT_SCORER,
        leaf_size: int = 40,
        builder: TreeBuilder | None = None,
        version: int = 1,
        previous: IndexSnapshot | None = None,
        touched: NDArray[np.int64] | None = None,
    ) -> IndexSnapshot:
        """Build the trees over the providers of ``table`` that could take some job.

        Given the ``previous`` snapshot, whose table ``table`` is a later version of (rows
        kept in place, new rows appended), and the rows ``touched`` since (changed or
        removed), only those rows are indexed anew: in small side trees searched beside the
        previous snapshot's trees (whose entries for them are masked), until the side
        holds more than :data:`~marketplace.matching.update.SIDE_AT_MOST` of the rows;
        then the memory order and columns are updated and every tree is rebuilt.
        """
        if not (math.isfinite(weight_km) and weight_km >= 0):
            raise InvalidInputError(f"weight_km={weight_km!r}; use a number of km >= 0")
        if leaf_size < 1:
            raise InvalidInputError(f"leaf_size={leaf_size}; use 1 or more (40 is typical)")
        b = builder or InlineTreeBuilder()
        opts: dict[str, Any] = {"weight_km": weight_km, "leaf_size": leaf_size, "builder": b}
        if previous is not None and touched is not None:
            side = np.union1d(previous._state.side, touched)
            if side.shape[0] <= SIDE_AT_MOST * len(table):
                general, gpu, state = with_side(
                    previous._general,
                    previous._gpu,
                    previous._state,
                    table,
                    side,
                    whole_below=SCAN_BELOW,
                    **opts,
                )
                return cls(table, weight_km, scorer, version, general, gpu, state)
            if updatable(previous._state, previous.table, table, side):
                cols, codes = updated_columns(previous._state, table, side)
            else:
                cols, codes = packed(table)
        else:
            cols, codes = packed(table)
        with_gpu = np.flatnonzero(cols.i[:, 1] > 0)  # keeps the spatial order
        whole = {"whole_below": SCAN_BELOW, **opts}
        no_side = side_classes(table, np.zeros(0, dtype=np.int64), **whole)
        general = (no_side[0], *CapacityClass.by_level(cols, **whole))
        gpu = (no_side[1], *CapacityClass.by_level(cols.subset(with_gpu), **whole))
        logger.debug(
            "index v%d: %d providers, %d in tree, %d with GPU",
            version,
            len(table),
            len(cols),
            with_gpu.shape[0],
        )
        state = Packed(cols, codes, with_gpu, np.zeros(0, dtype=np.int64))
        return cls(table, weight_km, scorer, version, general, gpu, state)

    def query(self, job: JobRequest, *, k: int = 5) -> list[Match]:
        """The ``k`` best eligible providers for ``job``, best first (fewer if not enough)."""
        return self.query_batch([job], k=k)[0]

    def query_batch(self, jobs: Sequence[JobRequest], *, k: int = 5) -> list[list[Match]]:
        """:meth:`query` for many jobs at once (one tree call per round for all of them)."""
        check_k(k)
        specs = [JobThresholds.of(j) for j in jobs]
        out: list[list[Match]] = [[] for _ in specs]
        for levels, wants_gpu in ((self._general, False), (self._gpu, True)):
            live = [i for i, j in enumerate(specs) if (j.gpu > 0) == wants_gpu]
            # The side (rows changed since the last rebuild) first, then the levels, lowest
            # first: the caps tighten fastest.
            for c in levels if live else ():
                self._search_class(c, jobs, specs, live, k, out)
        return out

    def _search_class(
        self,
        c: CapacityClass,
        jobs: Sequence[JobRequest],
        specs: list[JobThresholds],
        live: list[int],
        k: int,
        out: list[list[Match]],
    ) -> None:
        """Merge into ``out`` the jobs ``live``'s answers from class ``c``, searching only for
        providers that could beat each job's k-th cost so far. A job preferring an image is
        searched as its two halves (holders; those that must pull), the likelier to hold
        the best first, the other capped by the first's k-th cost."""
        first: list[tuple[int, JobThresholds]] = []
        second: list[tuple[int, JobThresholds]] = []
        for i in live:
            cap = _kth_cost(out[i], k)
            if c.floor > cap * (1.0 + REL_TOL):  # nobody here can make the top k
                continue
            j, job = specs[i], jobs[i]
            if cap < math.inf:
                j = j.capped(cap)
            if not prefers(job):
                if c.could_serve(j):
                    first.append((i, j))
                continue
            image = job.prefer_image
            assert image is not None
            pulling, holding = j.pulling(image, job.pull_km), j.holding(image)
            if not c.could_serve(holding):  # nobody here holds it (or nobody fits)
                if c.could_serve(pulling):
                    first.append((i, pulling))
            elif c.image_share.get(image, 0.0) > 0.5:  # most hold it: holders first
                first += [(i, holding)]
                second += [(i, pulling)]
            else:
                first += [(i, pulling)]
                second += [(i, holding)]
        for (i, _), found in zip(first, self._search(c, [t for _, t in first], k), strict=True):
            out[i] = merge_top_k(out[i], found, k)
        capped = [t.capped(min(t.cap, _kth_cost(out[i], k))) for i, t in second]
        for (i, _), found in zip(second, self._search(c, capped, k), strict=True):
            out[i] = merge_top_k(out[i], found, k)

    def _search(self, c: CapacityClass, specs: list[JobThresholds], k: int) -> list[list[Match]]:
        """The answer of each of ``specs`` (searches, or halves of one) in class ``c``."""
        out: list[list[Match]] = [[] for _ in specs]
        if not specs:
            return out
        cols = c.cols
        n = len(cols)
        opts: dict[str, Any] = {"weight_km": self.weight_km, "scorer": self.scorer}
        if n <= SCAN_BELOW:  # a small class: scoring all of it beats any tree walk
            return [scan(cols, None, spec, k=k, **opts) for spec in specs]
        scan_at = max(_SCAN_FLOOR, n // _SCAN_DIVISOR)
        # Searches waiting for a tree query, by how many neighbours they need.
        base = max(_MIN_PULL, _PULL_PER_K * k)
        groups: dict[int, list[int]] = {}
        for i, spec in enumerate(specs):
            held = None if spec.image is None else c.few_holders(spec.image)
            if held is not None:  # a rare image: score its few holders alone
                out[i] = scan(cols, held, spec, k=k, **opts)
                continue
            groups.setdefault(min(n, scan_at, c.first_pull(spec, base, k)), []).append(i)
        while groups:
            pull = min(groups)
            pending = groups.pop(pull)
            jobs = [specs[i] for i in pending]
            m = len(jobs)
            q4 = np.zeros((m, 4), dtype=np.float64)
            q4[:, :3] = [j.point for j in jobs]
            q = q4[:, :3]
            dist, pos = c.tree.query(q4, k=pull)
            dist, pos = dist.reshape(m, pull), pos.reshape(m, pull)
            th: Thresholds
            if m == 1:  # one job: scalar thresholds broadcast
                j0 = jobs[0]
                th = Thresholds(j0.cpu, j0.memory_mb, j0.gpu, j0.disk_mb, j0.max_price)
            else:
                th = Thresholds(
                    np.array([j.cpu for j in jobs], dtype=np.float64)[:, None],
                    np.array([j.memory_mb for j in jobs], dtype=np.int64)[:, None],
                    np.array([j.gpu for j in jobs], dtype=np.int64)[:, None],
                    np.array([j.disk_mb for j in jobs], dtype=np.int64)[:, None],
                    np.array([j.max_price for j in jobs], dtype=np.int64)[:, None],
                )
            ok, chord, s, cost = evaluate(cols, pos, q, th, **opts)
            for image, rows in _by_image(jobs, "image").items():
                ok[rows] &= cols.holds(image, pos[rows])
            for image, rows in _by_image(jobs, "exclude").items():
                ok[rows] &= ~cols.holds(image, pos[rows])
            # Every candidate not seen yet costs at least `bound` (penalty included).
            bound = dist[:, -1]
            penalty = np.array([j.penalty for j in jobs], dtype=np.float64)
            if bool(penalty.any()):
                cost = cost + penalty[:, None]
                bound = bound + penalty
            n_ok = ok.sum(axis=1)
            if pull >= k:  # inf when fewer than k are eligible
                limit = np.partition(np.where(ok, cost, np.inf), k - 1, axis=1)[:, k - 1]
            else:
                limit = np.full(m, np.inf)
            if any(j.cap < math.inf for j in jobs):  # a capped half needs only cost <= cap
                limit = np.minimum(limit, np.array([j.cap for j in jobs], dtype=np.float64))
            limit = limit * (1.0 + REL_TOL)
            # Complete when the whole class was returned or the bound passes the limit.
            done = np.ones(m, dtype=np.bool_) if pull >= n else bound > limit
            for t in np.flatnonzero(done).tolist():
                sel = ok[t]
                p = pos[t][sel]
                out[pending[t]] = select_top_k(
                    cols.names, cols.rows[p], cols.i[p, 4], chord[t][sel], s[t][sel],
                    cost[t][sel], k,
                )  # fmt: skip
            # k are eligible: every provider that could beat the k-th cost lies within that
            # cost (less the penalty) of the job, so one radius query finishes the search.
            known = n_ok >= k
            bounded = np.flatnonzero(~done & known)
            if bounded.shape[0]:
                radius = np.maximum(limit[bounded] - penalty[bounded], 0.0)
                near = c.tree.query_ball_point(q4[bounded], radius, return_sorted=False)
                for t, found in zip(bounded.tolist(), near.tolist(), strict=True):
                    idx = np.asarray(found, dtype=np.int64)
                    out[pending[t]] = scan(cols, idx, specs[pending[t]], k=k, **opts)
            for t in np.flatnonzero(~done & ~known).tolist():
                want = min(n, _next_pull(pull, k, int(n_ok[t])))
                if want > scan_at:  # the answer lies deep: a linear scan is cheaper
                    spec = specs[pending[t]]  # of the image's holders, if it needs one
                    held = None if spec.image is None else c.holders(spec.image)
                    out[pending[t]] = scan(cols, held, spec, k=k, **opts)
                else:
                    groups.setdefault(want, []).append(pending[t])
        return out


def _kth_cost(found: list[Match], k: int) -> float:
    """The k-th cost of an answer so far (inf while it has fewer than ``k``)."""
    return found[-1].score if len(found) == k else math.inf


def _by_image(jobs: list[JobThresholds], field: str) -> dict[str, list[int]]:
    """Rows of ``jobs`` by their ``image`` (holders only) or ``exclude`` (non-holders)."""
    groups: dict[str, list[int]] = {}
    for i, j in enumerate(jobs):
        image = j.image if field == "image" else j.exclude
        if image is not None:
            groups.setdefault(image, []).append(i)
    return groups


def _next_pull(pull: int, k: int, n_ok: int) -> int:
    """How many neighbours to ask for next when fewer than ``k`` of ``pull`` were eligible:
    scaled by the observed eligible rate, at least ``_GROWTH`` times more."""
    return max(pull * _GROWTH, math.ceil(2.0 * pull * (k + 1) / max(n_ok, 1)))


class ProviderIndex:
    """The matching index: queries never wait, refreshes swap in a new snapshot.

    Args:
        providers: Initial providers (records or a :class:`ProviderTable`).
        weight_km: Energy weight in km per level (0 = nearest only).
        scorer: Ranking cost; must satisfy the :data:`Scorer` contract.
        leaf_size: Tree leaf size.
        builder: How trees are built (inline by default; the build releases the GIL).

    Thread-safety: any number of threads may query while one refreshes; concurrent
    refreshes are serialised.
    """

    def __init__(
        self,
        providers: ProviderTable | Iterable[Provider] = (),
        *,
        weight_km: float = DEFAULT_ENERGY_WEIGHT_KM,
        scorer: Scorer = DEFAULT_SCORER,
        leaf_size: int = 40,
        builder: TreeBuilder | None = None,
    ) -> None:
        if isinstance(providers, ProviderTable):
            table = providers
        else:
            table = ProviderTable.from_providers(providers)
        self._opts: dict[str, Any] = {
            "weight_km": weight_km,
            "scorer": scorer,
            "leaf_size": leaf_size,
            "builder": builder or InlineTreeBuilder(),
        }
        self._write_lock = threading.Lock()
        self._background: ThreadPoolExecutor | None = None
        self._snapshot = IndexSnapshot.build(table, version=1, **self._opts)

    @property
    def snapshot(self) -> IndexSnapshot:
        """The current snapshot (grab it once to run several queries on one state)."""
        return self._snapshot

    def query(self, job: JobRequest, *, k: int = 5) -> list[Match]:
        """See :meth:`IndexSnapshot.query`."""
        return self._snapshot.query(job, k=k)

    def query_batch(self, jobs: Sequence[JobRequest], *, k: int = 5) -> list[list[Match]]:
        """See :meth:`IndexSnapshot.query_batch`."""
        return self._snapshot.query_batch(jobs, k=k)

    def refresh(
        self,
        *,
        changed: Iterable[Provider] = (),
        removed: Iterable[str] = (),
        levels: ArrayLike | None = None,
        table: ProviderTable | None = None,
    ) -> IndexSnapshot:
        """Build the next snapshot and swap it in; returns it.

        Args:
            changed: Providers to insert or update (from heartbeats).
            removed: Ids of providers that left.
            levels: New energy level for every row of the table (the hourly update).
            table: Replace the whole table (applied before the other changes).
        """
        with self._write_lock:
            old = self._snapshot
            base = old.table if table is None else table
            if levels is not None:
                base = base.with_levels(levels)
            ch, rm = list(changed), list(removed)
            base = base.with_changes(ch, rm)
            touched = None
            added = sum(p.id not in old.table.row_of for p in ch)
            if table is None and levels is None and len(base) == len(old.table) + added:
                # Rows stayed in place (the table was not compacted): update the order.
                gone = [old.table.row_of[pid] for pid in rm if pid in old.table.row_of]
                now = [base.row_of[p.id] for p in ch]
                touched = np.unique(np.array(gone + now, dtype=np.int64))
            snap = IndexSnapshot.build(
                base, version=old.version + 1, previous=old, touched=touched, **self._opts
            )
            self._snapshot = snap  # one reference assignment: atomic for readers
        return snap

    def refresh_in_background(
        self,
        *,
        changed: Iterable[Provider] = (),
        removed: Iterable[str] = (),
        levels: ArrayLike | None = None,
        table: ProviderTable | None = None,
    ) -> Future[IndexSnapshot]:
        """:meth:`refresh` on a background thread; queries keep using the old snapshot."""
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index")
        return self._background.submit(
            self.refresh, changed=list(changed), removed=list(removed), levels=levels, table=table
        )

    def close(self) -> None:
        """Stop the background refresh thread, if one was started."""
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None
