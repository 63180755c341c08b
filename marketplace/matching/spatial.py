"""Memory order of a capacity class: by energy level, then along a Morton (Z-order) curve.

Providers near each other in a tree are then near each other in memory, which makes the
tree's leaf scans and the gathers of candidate attributes cache friendly. Only speed
depends on it, never a result.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from marketplace.geo import EARTH_RADIUS_KM

__all__ = ["spatial_codes", "spatial_order"]


def _spread_lut() -> NDArray[np.uint64]:
    """``lut[v]`` spreads the 10 bits of ``v`` to every third bit (3-D Morton code)."""
    v = np.arange(1024, dtype=np.uint64)
    out = np.zeros(1024, dtype=np.uint64)
    for b in range(10):
        out |= ((v >> np.uint64(b)) & np.uint64(1)) << np.uint64(3 * b)
    return out


_SPREAD = _spread_lut()


def spatial_codes(xyz: NDArray[np.float64], level: NDArray[np.int64]) -> NDArray[np.uint64]:
    """The sort key of each point: its level above a Morton code of ``xyz``."""
    q = (xyz + EARTH_RADIUS_KM) * (1023.0 / (2 * EARTH_RADIUS_KM))
    np.clip(q, 0, 1023, out=q)
    qi = q.astype(np.int64)
    code = _SPREAD[qi[:, 0]] | (_SPREAD[qi[:, 1]] << np.uint64(1))
    code |= _SPREAD[qi[:, 2]] << np.uint64(2)
    code |= level.astype(np.uint64) << np.uint64(32)
    return code


def spatial_order(xyz: NDArray[np.float64], level: NDArray[np.int64]) -> NDArray[np.int64]:
    """A permutation sorting points by level, then along a Morton curve of ``xyz``.

    Only memory locality depends on it, never a result.
    """
    return np.argsort(spatial_codes(xyz, level)).astype(np.int64)
