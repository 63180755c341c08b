"""The grid-impact figure: cost saved and distance added per mode and start window."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from protocol.cities import CITIES

_COLOURS = ("#e9c46a", "#2a9d8f", "#264653", "#8ab17d", "#e76f51")


def _series(rows: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The windowed runs grouped by mode and bound, in the order they appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["mode"] not in ("temporal", "both"):
            continue
        if r["mode"] == "temporal":
            name = "temporal (nearest site)"
        elif r["max_km"] is None:
            name = "both, no distance bound"
        else:
            name = f"both, max {r['max_km']:,.0f} km"
        groups.setdefault(name, []).append(r)
    return list(groups.items())


def plot(
    rows: Sequence[dict[str, Any]], path: Path, *, default_km: float, headline_km: float
) -> None:
    """Cost saved and mean km added per mode and window (bars), against spatial only at
    the default weight (lines), as a two-panel PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spatial = next(r for r in rows if r["mode"] == "spatial" and r["weight"] == default_km)
    series = _series(rows)
    windows = sorted({r["window_h"] for _, group in series for r in group})
    x = np.arange(len(windows))
    width = 0.8 / max(1, len(series))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5.6), constrained_layout=True)
    for i, (name, group) in enumerate(series):
        by_window = {r["window_h"]: r for r in group}
        pos = x - 0.4 + width * (i + 0.5)
        saved = [by_window[w]["cost_saved_pct"] if w in by_window else np.nan for w in windows]
        added = [by_window[w]["km_added_mean"] if w in by_window else np.nan for w in windows]
        colour = _COLOURS[i % len(_COLOURS)]
        a1.bar(pos, saved, width, color=colour, label=name, zorder=2)
        a2.bar(pos, added, width, color=colour, label=name, zorder=2)
        for p, v in zip(pos, saved, strict=True):
            a1.annotate(f"{v:.0f}", (p, v), ha="center", va="bottom", fontsize=7)
        for p, v in zip(pos, added, strict=True):
            a2.annotate(f"{v:,.0f}", (p, v), ha="center", va="bottom", fontsize=7)
    a1.axhline(
        spatial["cost_saved_pct"], color="#f4a261", linewidth=2,
        label=f"spatial only, weight {default_km:.0f}: {spatial['cost_saved_pct']:.1f}%",
    )  # fmt: skip
    a1.axhline(45, color="#e76f51", linestyle="--", linewidth=1, label="target: 45% (6 h, both)")
    a1.set_ylabel("energy cost saved vs nearest now (%)")
    a1.set_title("Energy cost of the same jobs")
    a2.axhline(
        spatial["km_added_mean"], color="#f4a261", linewidth=2,
        label=f"spatial only: {spatial['km_added_mean']:,.0f} km",
    )  # fmt: skip
    a2.axhline(
        spatial["km_added_mean"] / 2, color="#e76f51", linestyle="--", linewidth=1,
        label="target: at most half of spatial only",
    )  # fmt: skip
    a2.set_ylabel("mean distance added per job (km)")
    a2.set_title("Distance added vs nearest site with room")
    for ax in (a1, a2):
        ax.set_xticks(x, [f"{w:g} h" for w in windows])
        ax.set_xlabel("start window (slack)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
    jobs = rows[0]["jobs"]
    fig.suptitle(
        f"Grid impact: {jobs:,} jobs over one simulated day, {len(CITIES)} city sites "
        f"(headline bound for both: {headline_km:,.0f} km)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
