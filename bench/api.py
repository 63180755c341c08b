"""API throughput: the marketplace's routes against a bare FastAPI hello route, same setup.

    .venv/bin/python -m bench.api            # 5,000 requests per route
    .venv/bin/python -m bench.api --quick    # 500 requests per route (CI)

What it measures. Two servers run in their own processes on 127.0.0.1, each under uvicorn
with the same settings (one worker, no access log): the marketplace (`create_app`) on a
fresh SQLite file with registered providers, and a bare FastAPI app whose only route
returns ``{"hello": "world"}``. A second process, ``wrk`` (Debian's package, installed with
apt-get when missing), sends a fixed number of requests to one route at a time over a
fixed number of keep-alive connections (one per wrk thread, so each connection's requests
are strictly sequential) and stops when that count is answered, or at a time cap. Before
each measured run a short warm-up of the same route is sent and discarded.

Routes: the bare hello route (the baseline; a sync-``def`` variant is shown too),
``GET /healthz``, ``GET /v1/providers``, ``GET /v1/regions``, ``POST /v1/jobs/quote`` and
``POST /v1/providers/heartbeat``. Heartbeats are signed envelopes generated beforehand,
one provider per connection with strictly increasing timestamps, so none is a replay (the
bench server accepts a 1 h clock window, so a slow run's last envelopes are not stale).

Per route: requests per second, p99 and mean latency (wrk's own histogram), errors
(non-2xx answers and socket errors) and ``ratio_to_bare`` (rps over the bare route's rps).
The target is ≥ 30% of the bare route's throughput at p99 < 50 ms.

No lost writes: after the heartbeat run, the providers' heartbeat counters in the
database must have grown by exactly the number of 200 answers wrk counted; the bench
prints the check and exits non-zero when it fails or when any route had errors.

The servers, the wrk load and the marketplace's data are the package :mod:`bench.apiload`;
this module runs the routes in turn and reports.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.apiload import (
    CONNECTIONS,
    QUOTE,
    Route,
    ensure_wrk,
    heartbeat_bodies,
    heartbeat_total,
    provider_accounts,
    register_providers,
    run_wrk,
    serve,
    split,
    start_server,
)
from bench.report import print_table, write_results

PROVIDERS = 64
WARMUP = 200


def measure(requests: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    wrk = ensure_wrk()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dcloud-bench-")))
        db = workdir / "market.db"
        bare = start_server("bare", workdir, db=None, ready_path="/")
        stack.callback(bare.stop)
        market = start_server("marketplace", workdir, db=db, ready_path="/healthz")
        stack.callback(market.stop)

        accounts = provider_accounts(PROVIDERS)
        register_providers(market, accounts)
        routes = [
            Route("bare hello (async def)", bare, "GET", "/", spare="/"),
            Route("bare hello (def)", bare, "GET", "/sync", spare="/"),
            Route("GET /healthz", market, "GET", "/healthz"),
            Route("GET /v1/providers", market, "GET", "/v1/providers"),
            Route("GET /v1/regions", market, "GET", "/v1/regions"),
            Route("POST /v1/jobs/quote", market, "POST", "/v1/jobs/quote", body=QUOTE),
        ]
        results: dict[str, dict[str, Any]] = {}
        for route in routes:
            run_wrk(wrk, route, min(WARMUP, requests), workdir, warmup=True)
            results[route.label] = run_wrk(wrk, route, requests, workdir)
            print(f"  {route.label}: {_rps(results[route.label]):.0f} req/s", flush=True)

        before = heartbeat_total(db)
        bodies = heartbeat_bodies(accounts, requests, time.time_ns() // 1_000_000 + 1)
        hb = Route("POST /v1/providers/heartbeat", market, "POST", "/v1/providers/heartbeat")
        hb.bodies = bodies
        results[hb.label] = run_wrk(wrk, hb, requests, workdir)
        print(f"  {hb.label}: {_rps(results[hb.label]):.0f} req/s", flush=True)
        grown = heartbeat_total(db) - before
        writes = {
            "heartbeats_sent": sum(split(requests)),
            "answered_200": results[hb.label]["ok"],
            "db_heartbeats_added": grown,
            "no_lost_writes": grown == results[hb.label]["ok"],
        }

    baseline = _rps(results["bare hello (async def)"])
    rows = []
    for label, f in results.items():
        errors = (f["answered"] - f["ok"]) + f["socket_errors"]
        rows.append(
            {
                "route": label,
                "requests": f["answered"],
                "rps": round(_rps(f), 1),
                "p99_ms": round(f["p99_us"] / 1000, 2),
                "mean_ms": round(f["mean_us"] / 1000, 2),
                "ratio_to_bare": round(_rps(f) / baseline, 3),
                "errors": errors,
                "p99_under_50ms": f["p99_us"] < 50_000,
            }
        )
    return rows, writes


def _rps(figures: dict[str, Any]) -> float:
    return float(figures["answered"]) * 1e6 / float(figures["duration_us"])


def main() -> int:
    parser = argparse.ArgumentParser(description="Marketplace API vs a bare FastAPI route")
    parser.add_argument("--quick", action="store_true", help="500 requests per route (CI)")
    parser.add_argument("--requests", type=int, help="requests per route (default 5000)")
    parser.add_argument("--serve", choices=["bare", "marketplace"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db)
        return 0

    requests = args.requests or (500 if args.quick else 5000)
    print(f"API bench: {requests} requests per route, {CONNECTIONS} connections", flush=True)
    rows, writes = measure(requests)
    title = "API throughput (marketplace routes vs a bare FastAPI hello route)"
    print_table(rows, title=title)
    print(
        f"\nno lost writes: {writes['answered_200']} heartbeats answered 200, the database "
        f"counted {writes['db_heartbeats_added']} -> {'ok' if writes['no_lost_writes'] else 'LOST'}"
    )
    notes = (
        f"{requests} requests per route from wrk (a second process) over {CONNECTIONS} "
        "keep-alive connections, one per wrk thread, after a discarded warm-up; both apps "
        "under uvicorn, 1 worker, no access log, on 127.0.0.1; marketplace on a fresh SQLite "
        f"file with {PROVIDERS} registered providers. `ratio_to_bare` is rps over the bare "
        "`async def` hello route's rps (target >= 0.3 at p99 < 50 ms). Heartbeats are "
        "pre-signed, one provider per connection (so the server's clock window is 1 h; "
        "every other setting is the default); after them the database's heartbeat "
        f"counters grew by {writes['db_heartbeats_added']} for {writes['answered_200']} "
        f"answers 200 ({'no lost writes' if writes['no_lost_writes'] else 'WRITES LOST'})."
    )
    write_results("api", rows, title=title, notes=notes)
    failed = not writes["no_lost_writes"] or any(r["errors"] for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
