"""Matching benchmark: the energy-weighted k-d tree index vs a brute-force numpy scan.

Run from the repository root::

    .venv/bin/python -m bench.matching            # 10k, 100k and 1M providers
    .venv/bin/python -m bench.matching --quick    # 10k and 100k, fewer queries (CI)

Both sides answer the same jobs over the same providers, weights, scorer and filters
(CPU, memory, GPU, disk, image, price; 20% of providers full, 3% offline), k = 10. Every
answer is compared. Single mode times one query per call; batch mode sends the jobs in
batches of 100. The refresh rows change 1% of providers and refresh the index on a
background thread while the main thread keeps querying, against one plain build of the
same kind of tree over all providers (and a ``BallTree`` build, the tree used before).
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.neighbors import BallTree

from bench.report import format_table, print_table, write_results
from marketplace.energy import BundledPriceSource, levels_for_locations, region_levels
from marketplace.matching import (
    JobRequest,
    Provider,
    ProviderIndex,
    ProviderTable,
    ReputationPenalty,
    Resources,
    brute_force_match,
    distance_only,
)
from marketplace.matching.tree_build import InlineTreeBuilder, build_tree

logger = logging.getLogger(__name__)

K = 10
BATCH = 100
N_IMAGES = 20
AT = datetime(2025, 1, 8, 18, tzinfo=UTC)  # an evening in Europe: levels spread out
POPULARITY = 0.8 * 0.85 ** np.arange(N_IMAGES)


def _positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Population-like positions: 90% in 400 "cities", 10% uniform on the sphere.

    The cities are scattered around the bundled regions' centres (std 8 degrees of
    latitude, 12 of longitude) with Zipf-like sizes; each city spreads its providers over
    0.3-1.5 degrees. The same cities are used for every size and for the jobs.
    """
    city_rng = np.random.default_rng(12345)
    regions = BundledPriceSource().regions()
    m = 400
    home = city_rng.integers(0, len(regions), m)
    clat = np.array([r.lat for r in regions])[home] + city_rng.normal(0, 8, m)
    clon = np.array([r.lon for r in regions])[home] + city_rng.normal(0, 12, m)
    spread = city_rng.uniform(0.3, 1.5, m)
    weight = 1.0 / np.arange(1, m + 1) ** 0.9
    city = rng.choice(m, n, p=weight / weight.sum())
    widen = 1.0 / np.maximum(np.cos(np.radians(np.clip(clat[city], -80, 80))), 0.2)
    lat = clat[city] + rng.normal(0, 1, n) * spread[city]
    lon = clon[city] + rng.normal(0, 1, n) * spread[city] * widen
    uniform = rng.random(n) < 0.1
    lat[uniform] = np.degrees(np.arcsin(rng.uniform(-1, 1, uniform.sum())))
    lon[uniform] = rng.uniform(-180, 180, uniform.sum())
    return np.clip(lat, -90, 90), (lon + 180) % 360 - 180


def make_table(n: int, seed: int) -> ProviderTable:
    """``n`` synthetic providers, levels from the bundled prices at ``AT``."""
    rng = np.random.default_rng(seed)
    lat, lon = _positions(rng, n)
    source = BundledPriceSource()
    levels = levels_for_locations(source.regions(), region_levels(source, AT), lat, lon)
    full = rng.random(n) < 0.2
    cores = rng.choice([1, 2, 4, 8, 16, 32], n, p=[0.1, 0.2, 0.3, 0.2, 0.15, 0.05])
    cpu = np.where(full, 0.0, np.maximum(0.5, np.round(cores * rng.uniform(0.1, 1, n) * 2) / 2))
    memory = np.where(full, 0, (cpu * rng.choice([1024, 2048, 4096], n)).astype(np.int64))
    gpu = np.where(rng.random(n) < 0.1, rng.integers(1, 5, n), 0)
    disk = rng.integers(10_000, 1_000_000, n)
    holders = {f"img{i}": np.flatnonzero(rng.random(n) < p) for i, p in enumerate(POPULARITY)}
    return ProviderTable.from_arrays(
        ids=[f"0x{i:040x}" for i in range(n)],
        lat=lat,
        lon=lon,
        cpu=cpu,
        memory_mb=memory,
        gpu=gpu,
        disk_mb=disk,
        price_wei=rng.integers(10**9, 10**10, n),
        level=levels,
        reputation=rng.beta(5, 2, n),
        online=rng.random(n) > 0.03,
        holders=holders,
    )


def make_jobs(m: int, seed: int) -> list[JobRequest]:
    """``m`` jobs: mostly small, 5% wanting a GPU, 85% naming an image, 70% with a budget."""
    rng = np.random.default_rng(seed)
    lat, lon = _positions(rng, m)
    weights = POPULARITY / POPULARITY.sum()
    jobs = []
    for i in range(m):
        image = f"img{rng.choice(N_IMAGES, p=weights)}" if rng.random() < 0.85 else None
        cpu = float(rng.choice([0.5, 1, 2, 4]))
        jobs.append(
            JobRequest(
                lat=float(lat[i]),
                lon=float(lon[i]),
                resources=Resources(
                    cpu=cpu,
                    memory_mb=int(cpu * rng.choice([512, 1024, 2048])),
                    gpu=int(rng.random() < 0.05),
                    disk_mb=int(rng.integers(100, 20_000)),
                ),
                image=image,
                max_price_wei=(8 * 10**9) if rng.random() < 0.7 else None,
                id=f"job{i}",
            )
        )
    return jobs


def _p99_ms(seconds: list[float]) -> float:
    return float(np.percentile(np.asarray(seconds) * 1e3, 99))


SCORERS: dict[str, Any] = {"reputation": ReputationPenalty(), "distance": distance_only}


def bench_queries(
    table: ProviderTable, jobs: list[JobRequest], scorer_name: str
) -> tuple[list[dict[str, Any]], ProviderIndex]:
    """Time single and batch queries of the index and the brute-force scan; compare them."""
    scorer = SCORERS[scorer_name]
    n = len(table)
    t0 = time.perf_counter()
    index = ProviderIndex(table, scorer=scorer, builder=InlineTreeBuilder())
    build_s = time.perf_counter() - t0
    masks: dict[str, Any] = {}
    brute, brute_t = [], []
    for job in jobs:
        t = time.perf_counter()
        brute.append(brute_force_match(table, job, k=K, scorer=scorer, image_masks=masks))
        brute_t.append(time.perf_counter() - t)
    index.query_batch(jobs[:BATCH], k=K)  # warm-up
    single, single_t = [], []
    for job in jobs:
        t = time.perf_counter()
        single.append(index.query(job, k=K))
        single_t.append(time.perf_counter() - t)
    batch: list[Any] = []
    batch_t = []
    for i in range(0, len(jobs), BATCH):
        t = time.perf_counter()
        batch.extend(index.query_batch(jobs[i : i + BATCH], k=K))
        batch_t.append(time.perf_counter() - t)
    brute_us = float(np.mean(brute_t)) * 1e6
    found = float(np.mean([len(b) for b in brute]))
    rows = []
    for mode, answers, times, per_query in (
        ("single", single, single_t, float(np.mean(single_t)) * 1e6),
        ("batch", batch, batch_t, float(np.sum(batch_t)) / len(jobs) * 1e6),
    ):
        rows.append(
            {
                "providers": n,
                "scorer": scorer_name,
                "mode": mode,
                "queries": len(jobs),
                "ours_us": per_query,
                "brute_us": brute_us,
                "speedup": brute_us / per_query,
                "p50_ms": float(np.percentile(np.asarray(times) * 1e3, 50)),
                "p99_ms": _p99_ms(times),
                "agree": answers == brute,
                "mean_found": found,
                "build_s": build_s,
            }
        )
    return rows, index


def _changes(table: ProviderTable, seed: int, percent: int = 1) -> list[Provider]:
    """Heartbeats of ``percent``% of providers: new free capacity, level, online flag."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(table), size=max(1, len(table) * percent // 100), replace=False)
    out = []
    for r in rows.tolist():
        p = table.provider(str(table.ids[r]))
        cpu = float(rng.choice([0.0, 1.0, 2.0, 4.0, 8.0]))
        out.append(
            Provider(
                id=p.id,
                lat=p.lat,
                lon=p.lon,
                free=Resources(
                    cpu=cpu, memory_mb=int(cpu * 2048), gpu=p.free.gpu, disk_mb=p.free.disk_mb
                ),
                price_wei=p.price_wei,
                images=p.images,
                online=bool(rng.random() > 0.03),
                energy_level=int(rng.integers(0, 10)),
                reputation=p.reputation,
            )
        )
    return out


def _refresh_while_querying(
    index: ProviderIndex, changes: list[Provider], jobs: list[JobRequest]
) -> tuple[float, list[float], Any]:
    """Refresh on a background thread; query from this one until it is done."""
    during: list[float] = []
    t0 = time.perf_counter()
    future = index.refresh_in_background(changed=changes)
    i = 0
    while not future.done():
        t = time.perf_counter()
        index.query(jobs[i % len(jobs)], k=K)
        during.append(time.perf_counter() - t)
        i += 1
        time.sleep(0.0005)
    snap = future.result()
    refresh_s = time.perf_counter() - t0
    index.close()
    return refresh_s, during or [0.0], snap


def bench_refresh(table: ProviderTable, jobs: list[JobRequest], seed: int) -> dict[str, Any]:
    """Refresh after 1% changes, alone and then on a background thread while querying.

    The baseline is one plain build of the tree the index uses (a ``cKDTree`` over every
    provider's four coordinates, same leaf size); a ``BallTree`` build (the tree the
    index used before) is timed beside it.
    """
    n = len(table)
    points = np.empty((n, 4))
    points[:, :3] = table.xyz
    points[:, 3] = ProviderIndex().snapshot.weight_km * table.level
    t = time.perf_counter()
    build_tree(points, leaf_size=40)
    full_build_s = time.perf_counter() - t
    t = time.perf_counter()
    BallTree(points, leaf_size=40)
    balltree_build_s = time.perf_counter() - t
    changes = _changes(table, seed)
    live = ProviderIndex(table)
    idle = []
    for job in jobs[:200]:
        t = time.perf_counter()
        live.query(job, k=K)
        idle.append(time.perf_counter() - t)
        time.sleep(0.0005)
    t = time.perf_counter()
    live.refresh(changed=changes)  # nothing else running: the refresh's own cost
    refresh_s = time.perf_counter() - t
    busy_s, during, snap = _refresh_while_querying(live, _changes(table, seed + 1), jobs)
    agree = all(
        snap.query(job, k=K) == brute_force_match(snap.table, job, k=K) for job in jobs[:50]
    )
    # Changed rows gather in side trees until they pass SIDE_AT_MOST (5%) of the rows; the
    # refresh that passes it rebuilds every tree. Time one such refresh (4% more changed).
    more = _changes(snap.table, seed + 2, percent=4)
    t = time.perf_counter()
    rebuilt = live.refresh(changed=more)
    rebuild_s = time.perf_counter() - t
    agree = agree and all(
        rebuilt.query(job, k=K) == brute_force_match(rebuilt.table, job, k=K) for job in jobs[:50]
    )
    return {
        "providers": n,
        "mode": "refresh",
        "changed": len(changes),
        "refresh_s": refresh_s,
        "full_build_s": full_build_s,
        "ratio": refresh_s / full_build_s,
        "balltree_build_s": balltree_build_s,
        "ratio_to_balltree": refresh_s / balltree_build_s,
        "rebuild_s": rebuild_s,
        "rebuild_ratio": rebuild_s / full_build_s,
        "busy_refresh_s": busy_s,
        "queries_during": len(during),
        "p99_ms": _p99_ms(during),
        "max_ms": float(np.max(during)) * 1e3,
        "idle_p99_ms": _p99_ms(idle),
        "agree": agree,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Matching index vs brute force")
    parser.add_argument("--quick", action="store_true", help="small sizes for CI")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    jobs = make_jobs(200 if args.quick else 1000, args.seed + 1)
    rows: list[dict[str, Any]] = []
    refresh_rows = []
    for n in sizes:
        print(f"{n} providers ...", flush=True)
        table = make_table(n, args.seed)
        for name in SCORERS:
            query_rows, _ = bench_queries(table, jobs, name)
            rows.extend(query_rows)
        refresh_rows.append(bench_refresh(table, jobs, args.seed + 2))
    print_table(rows, title="Matching: ours vs brute force (k = 10)")
    print_table(refresh_rows, title="Refresh after 1% of providers change, while querying")
    write_results(
        "matching",
        rows + refresh_rows,
        title="Matching (energy-weighted k-d trees vs brute-force numpy scan)",
        notes=(
            "k = 10; 20% of providers full, 3% offline, 20 images, 70% of jobs with a price "
            "cap, 5% wanting a GPU. `scorer`: reputation = the default ReputationPenalty "
            "(20 km), distance = distance_only. Times are per query (batch: batches of "
            f"{BATCH}, p50/p99 are per batch). `agree` = every answer equal to the "
            "brute-force scan's (same scorer).\n\nRefresh (1% of providers changed): "
            "`refresh_s` is the whole refresh (table update, memory order, columns, one "
            "k-d tree per energy level) with nothing else running, against `full_build_s`, "
            "one plain build of the same kind of tree (cKDTree, leaf size 40) over all "
            "providers (`ratio`); `balltree_build_s`: a plain sklearn BallTree build of "
            "the same points, the tree the index used before. Then another 1% is refreshed "
            "on a background thread while this thread keeps querying the old snapshot: "
            "`busy_refresh_s`, and the query latency during it (`p99_ms`, `max_ms`; "
            "`idle_p99_ms` without a refresh); the k-d tree builds with the GIL released. "
            "A refresh of at most 5% of the rows (counting earlier ones since the last "
            "rebuild) masks them in the big trees and indexes them in a side tree; "
            "`rebuild_s` is the refresh that passes 5% (4% more changed), which rebuilds "
            "every tree from the updated memory order (`rebuild_ratio` to `full_build_s`)."
            "\n\n" + format_table(refresh_rows)
        ),
        columns=[
            "providers",
            "scorer",
            "mode",
            "queries",
            "ours_us",
            "brute_us",
            "speedup",
            "p50_ms",
            "p99_ms",
            "agree",
            "mean_found",
            "build_s",
        ],
        table=rows,
    )


if __name__ == "__main__":
    main()
