"""The grid-impact figure: cost saved and distance added against the energy weight."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from protocol.cities import CITIES


def plot(rows: Sequence[dict[str, Any]], path: Path, *, default_km: float) -> None:
    """Cost saved and distance added against the weight, two panels, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    labels = [f"{r['weight']:.0f}" for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    saved = [r["cost_saved_pct"] for r in rows]
    a1.bar(x, saved, color="#2a9d8f", zorder=2)
    for i, v in enumerate(saved):
        a1.annotate(f"{v:.1f}%", (i, v), ha="center", va="bottom", fontsize=9)
    a1.axhline(25, color="#e76f51", linestyle="--", linewidth=1, label="target: 25% saved")
    a1.set_ylabel("energy cost saved vs nearest only (%)")
    a1.set_title("Energy cost of the same jobs")
    a1.legend(loc="upper left")
    added = [r["km_added_mean"] for r in rows]
    a2.plot(x, added, "o-", color="#264653", label="mean", zorder=3)
    for i, v in enumerate(added):
        if v <= 0:
            continue
        a2.annotate(
            f"{v:,.0f}",
            (i, v),
            textcoords="offset points",
            xytext=(0, -14),
            ha="center",
            fontsize=9,
        )
    a2.plot(x, [r["km_added_p95"] for r in rows], "s--", color="#8ab17d", label="95th percentile")
    a2.set_ylabel("distance added per job (km)")
    a2.set_title("Distance added vs nearest site with room")
    a2.legend(loc="upper left")
    for ax in (a1, a2):
        ax.set_xticks(x, labels)
        ax.set_xlabel("energy weight (km per level; 0 = nearest only)")
        ax.grid(axis="y", alpha=0.3)
        for i, r in enumerate(rows):
            if r["weight"] == default_km:
                ax.axvspan(i - 0.45, i + 0.45, color="#f4a261", alpha=0.2, lw=0, zorder=0)
    jobs = rows[0]["jobs"]
    fig.suptitle(
        f"Grid impact: {jobs:,} jobs over one simulated day, {len(CITIES)} city sites "
        f"(shaded: default weight {default_km:.0f})"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
