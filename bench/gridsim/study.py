"""The study's runs: the weight sweep through the matching index, then start windows."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from bench.gridsim.energy import HourlyGrid
from bench.gridsim.simulate import Placement, simulate, summarise
from bench.gridsim.timeshift import day_integral, simulate_shift
from bench.gridsim.world import Config, make_world
from marketplace.energy import BundledPriceSource, PriceSource


def _timed(what: str, fn: Callable[[], Placement]) -> Placement:
    t0 = time.perf_counter()
    out = fn()
    print(f"  {what}: {time.perf_counter() - t0:.1f}s", flush=True)
    return out


def run(
    cfg: Config,
    source: PriceSource | None = None,
    *,
    windows_h: Sequence[float] = (),
    both_max_km: Sequence[float | None] = (),
) -> list[dict[str, Any]]:
    """Simulate the day at every weight of ``cfg`` (mode ``nearest`` for weight 0, else
    ``spatial``), then, for each window, ``temporal`` and ``both`` at each bound of
    ``both_max_km``; rows as :func:`summarise`, all against the first weight's run."""
    src = source or BundledPriceSource()
    world = make_world(cfg, src)
    grid = HourlyGrid(src, cfg.day)
    cap = f"capacity x{cfg.capacity_factor:g}"
    placements: list[tuple[dict[str, Any], Placement]] = []
    for w in cfg.weights:
        label = {
            "mode": "nearest" if w == 0 else "spatial",
            "window_h": 0,
            "weight": int(w) if float(w).is_integer() else w,
            "max_km": None,
        }
        p = _timed(f"{cap}, weight {w:>7.0f} km/level", partial(simulate, world, grid, w))
        placements.append((label, p))
    integral = day_integral(world, grid)
    for window in windows_h:
        for mode, bound in [("temporal", None), *(("both", b) for b in both_max_km)]:
            label = {"mode": mode, "window_h": window, "weight": None, "max_km": bound}
            p = _timed(
                f"{cap}, {mode} window {window:g} h max_km {bound}",
                partial(simulate_shift, world, integral, mode=mode, window_h=window, max_km=bound),
            )
            placements.append((label, p))
    return summarise(world, placements, grid, capacity_factor=cfg.capacity_factor)
