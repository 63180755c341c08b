"""Refreshing the index by what changed: side trees, masks and an updated memory order.

A refresh that touches a few rows (heartbeats of some providers) does not rebuild the big
per-level trees. Their entries for the touched rows are masked (never eligible), and the
touched rows that can still take jobs go into a small *side* class, searched beside the
levels. Once the side holds more than :data:`SIDE_AT_MOST` of the rows, the next refresh
rebuilds every tree, reusing the memory order: the side rows are taken out of the packed
columns and put back at their sort keys, with no sort or gather of the whole table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marketplace.matching.classes import CapacityClass
from marketplace.matching.core import Columns
from marketplace.matching.spatial import spatial_codes
from marketplace.matching.table import ProviderTable

__all__ = [
    "SIDE_AT_MOST",
    "Packed",
    "packed",
    "side_classes",
    "updatable",
    "updated_columns",
    "with_side",
]

logger = logging.getLogger(__name__)

SIDE_AT_MOST = 0.05
"""Largest share of the rows kept in the side before the trees are rebuilt."""


@dataclass(frozen=True, eq=False)
class Packed:
    """What the next refresh reuses: the packed columns of the big trees (every level, in
    memory order), their sort keys, the positions of those with a free GPU, and the table
    rows in the side (masked in the big trees)."""

    cols: Columns
    codes: NDArray[np.uint64]
    gpu_pos: NDArray[np.int64]
    side: NDArray[np.int64]


def _active(table: ProviderTable, rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """The ``rows`` whose providers could take some job (online, free CPU and memory)."""
    ok = table.online[rows] & table.present[rows]
    ok &= (table.cpu[rows] > 0) & (table.memory_mb[rows] > 0)
    return rows[ok]


def packed(table: ProviderTable) -> tuple[Columns, NDArray[np.uint64]]:
    """The active rows of ``table`` packed in memory order, and their sort keys."""
    rows = _active(table, np.arange(len(table), dtype=np.int64))
    codes = spatial_codes(table.xyz[rows], table.level[rows])
    order = np.argsort(codes)
    return Columns.of_table(table, rows[order]), codes[order]


def side_classes(
    table: ProviderTable, rows: NDArray[np.int64], *, whole_below: int, **opts: Any
) -> tuple[CapacityClass, CapacityClass]:
    """The side classes (all, and those with a free GPU) over the active ``rows``."""
    act = _active(table, rows)
    cols = Columns.of_table(table, act[np.argsort(spatial_codes(table.xyz[act], table.level[act]))])
    gpu = cols.subset(np.flatnonzero(cols.i[:, 1] > 0))
    return (
        CapacityClass.of_columns(cols, whole_below=whole_below, **opts),
        CapacityClass.of_columns(gpu, whole_below=whole_below, **opts),
    )


def _masked(classes: tuple[CapacityClass, ...], live: NDArray[np.bool_]) -> list[CapacityClass]:
    """``classes`` (consecutive runs of the columns ``live`` describes) with ``live`` set."""
    out, start = [], 0
    for c in classes:
        stop = start + len(c.cols)
        out.append(replace(c, cols=replace(c.cols, live=live[start:stop])))
        start = stop
    return out


def with_side(
    general: tuple[CapacityClass, ...],
    gpu: tuple[CapacityClass, ...],
    state: Packed,
    table: ProviderTable,
    side: NDArray[np.int64],
    *,
    whole_below: int,
    **opts: Any,
) -> tuple[tuple[CapacityClass, ...], tuple[CapacityClass, ...], Packed]:
    """The classes of a snapshot whose rows ``side`` (a superset of the previous side) were
    touched since its big trees were built: the big trees' classes (``general[1:]`` and
    ``gpu[1:]``, after the previous side classes) with those rows masked, and new side
    classes over them."""
    stale = np.zeros(len(table), dtype=np.bool_)
    stale[side] = True
    live = ~stale[state.cols.rows]
    side_all, side_gpu = side_classes(table, side, whole_below=whole_below, **opts)
    return (
        (side_all, *_masked(general[1:], live)),
        (side_gpu, *_masked(gpu[1:], live[state.gpu_pos])),
        replace(state, side=side),
    )


def updatable(
    state: Packed, old: ProviderTable, table: ProviderTable, touched: NDArray[np.int64]
) -> bool:
    """Whether ``table`` kept ``old``'s rows and image words, and few rows were touched."""
    return (
        len(table) >= len(old)
        and table.image_bits.shape[0] == old.image_bits.shape[0]
        and touched.shape[0] <= 0.25 * len(table)
    )


def updated_columns(
    state: Packed, table: ProviderTable, touched: NDArray[np.int64]
) -> tuple[Columns, NDArray[np.uint64]]:
    """``state``'s columns and sort keys without the ``touched`` rows, with those of them
    active in ``table`` put back at their places in the memory order."""
    stale = np.zeros(len(table), dtype=np.bool_)
    stale[touched] = True
    old = state.cols
    keep = ~stale[old.rows]
    t = _active(table, touched)
    add_codes = spatial_codes(table.xyz[t], table.level[t])
    by_code = np.argsort(add_codes)
    add, add_codes = t[by_code], add_codes[by_code]
    kept_codes = state.codes[keep]
    at = np.searchsorted(kept_codes, add_codes, side="right")
    codes = np.empty(kept_codes.shape[0] + add.shape[0], dtype=np.uint64)
    placed = at + np.arange(add.shape[0])
    codes[placed] = add_codes
    kept = np.ones(codes.shape[0], dtype=np.bool_)
    kept[placed] = False
    codes[kept] = kept_codes
    return old.updated(table, keep, add, at), codes
