"""Capacity classes: the providers one tree holds, with its bounds for quick rejection.

A class holds packed :class:`~marketplace.matching.core.Columns` in the order of its tree's
points and the tree over them. The index keeps one class per energy level (and per
"has a free GPU"), lowest level first, so a query asks a class only while its level can
still beat the k-th cost found so far.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marketplace.matching.core import (
    _CPU,
    _DISK,
    _GPU,
    _LEVEL,
    _MEM,
    _PRICE,
    Columns,
    JobThresholds,
)
from marketplace.matching.records import MAX_PRICE_WEI
from marketplace.matching.tree_build import TreeBuilder

__all__ = ["FEW_HOLDERS", "IMAGE_PULL_FACTOR", "CapacityClass"]

logger = logging.getLogger(__name__)

FEW_HOLDERS = 1024
"""An image held by at most this many providers of a class is searched among them alone."""

IMAGE_PULL_FACTOR = 4.0
"""A job needing an image held by a share ``h`` of a class first asks for this many times
``k / h`` neighbours."""


@dataclass(frozen=True, eq=False)
class CapacityClass:
    """Providers in one tree (columns in tree order), with bounds for quick rejection.

    ``floor`` is a lower bound of every member's augmented distance from any job (``weight_km
    * level`` for a class of one energy level), so a job whose k-th cost so far is below
    it need not search the class.
    """

    cols: Columns
    tree: Any
    max_cpu: float
    max_memory_mb: int
    max_gpu: int
    max_disk_mb: int
    min_price: int
    image_share: Mapping[str, float]
    floor: float = 0.0
    _held: dict[str, NDArray[np.int64]] = field(default_factory=dict, repr=False)

    def holders(self, image: str) -> NDArray[np.int64]:
        """Positions (ascending) of the providers holding ``image``; made once per image."""
        got = self._held.get(image)
        if got is None:
            got = np.zeros(0, dtype=np.int64)
            b = self.cols.image_index.get(image)
            if b is not None:
                held = (self.cols.bits[b // 64] >> np.uint64(b % 64)) & np.uint64(1)
                got = np.flatnonzero(held).astype(np.int64)
            self._held[image] = got  # racing threads store equal values
        return got

    def few_holders(self, image: str) -> NDArray[np.int64] | None:
        """:meth:`holders` when at most :data:`FEW_HOLDERS` providers hold ``image``."""
        got = self.holders(image)
        return got if got.shape[0] <= FEW_HOLDERS else None

    @classmethod
    def by_level(
        cls,
        cols: Columns,
        *,
        weight_km: float,
        leaf_size: int,
        builder: TreeBuilder,
        whole_below: int = 0,
    ) -> tuple[CapacityClass, ...]:
        """One class per energy level of ``cols`` (sorted by level), lowest level first.

        Each level's providers are one contiguous run of ``cols`` (views, not copies).
        Every point of a level lies ``weight_km * level`` off the jobs' hyperplane, so one
        tree over all levels sees a job from afar and must walk a thin shell of nearly
        equidistant points; a tree per level is asked only near the job, and only while its
        level can still beat the k-th cost found so far. With ``weight_km == 0`` levels do
        not matter and one class holds everyone, as it does when there are at most
        ``whole_below`` providers (a class the index scans whole rather than searching).
        """
        opts: dict[str, Any] = {"weight_km": weight_km, "leaf_size": leaf_size, "builder": builder}
        level = cols.i[:, _LEVEL]
        n = level.shape[0]
        if weight_km == 0 or n <= whole_below or level[0] == level[-1]:
            return (cls.of_columns(cols, whole_below=whole_below, **opts),)
        starts = np.flatnonzero(np.diff(level)) + 1
        edges = [0, *starts.tolist(), n]
        return tuple(
            cls.of_columns(cols.slice(a, b), whole_below=whole_below, **opts)
            for a, b in itertools.pairwise(edges)
        )

    @classmethod
    def of_columns(
        cls,
        cols: Columns,
        *,
        weight_km: float,
        leaf_size: int,
        builder: TreeBuilder,
        whole_below: int = 0,
    ) -> CapacityClass:
        """Build the tree over packed columns (already in spatial order).

        A class of at most ``whole_below`` providers is scanned whole, one attribute at a
        time: its columns are stored attribute by attribute (Fortran order) for that.
        """
        n = len(cols)
        if 0 < n <= whole_below:
            cols = replace(cols, f=np.asfortranarray(cols.f), i=np.asfortranarray(cols.i))
        if n == 0:
            return cls(cols, None, 0.0, 0, 0, 0, MAX_PRICE_WEI, {})
        # Share of providers holding each image, from an evenly spread sample: only a hint
        # for how many neighbours to ask for first.
        sample = np.unique(np.linspace(0, n - 1, min(n, 4096)).astype(np.int64))
        # Every image's bit of every sampled provider at once (bit b = column b).
        words = np.ascontiguousarray(np.take(cols.bits, sample, axis=1).T).astype("<u8")
        held = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little").sum(axis=0)
        share = {image: float(held[b]) / sample.shape[0] for image, b in cols.image_index.items()}
        points = np.empty((n, 4), dtype=np.float64)
        points[:, :3] = cols.f[:, :3]
        points[:, 3] = weight_km * cols.i[:, _LEVEL]
        level = cols.i[:, _LEVEL]
        return cls(
            cols=cols,
            tree=builder.build(points, leaf_size=leaf_size),
            max_cpu=float(cols.f[:, _CPU].max()),
            max_memory_mb=int(cols.i[:, _MEM].max()),
            max_gpu=int(cols.i[:, _GPU].max()),
            max_disk_mb=int(cols.i[:, _DISK].max()),
            min_price=int(cols.i[:, _PRICE].min()),
            image_share=share,
            floor=weight_km * float(level.min()),
        )

    def first_pull(self, job: JobThresholds, base: int, k: int) -> int:
        """Neighbours to ask for first: ``base``, more when the job's image is rare."""
        if job.image is None:
            return base
        share = self.image_share.get(job.image, 0.0)
        return base if share <= 0 else max(base, math.ceil(IMAGE_PULL_FACTOR * k / share))

    def could_serve(self, job: JobThresholds) -> bool:
        """False when no provider of the class can take ``job`` (a cheap exact test)."""
        return (
            len(self.cols) > 0
            and job.cpu <= self.max_cpu
            and job.memory_mb <= self.max_memory_mb
            and job.gpu <= self.max_gpu
            and job.disk_mb <= self.max_disk_mb
            and job.max_price >= self.min_price
            and (job.image is None or job.image in self.cols.image_index)
        )
