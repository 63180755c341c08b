"""Services: deploy to the first 200 through a name (:mod:`bench.servicedeploy`), and
requests through the ingress gateway against the same upstream directly.

    .venv/bin/python -m bench.services            # 20,000 requests per side
    .venv/bin/python -m bench.services --quick    # 2,000 requests per side (CI)

What it measures. The upstream is the API bench's bare FastAPI hello app under uvicorn
(one worker, no access log) in its own process on 127.0.0.1. The gateway is the real one
(:class:`agents.ingress.Nginx`: nginx with the generated config, one route ``bench`` to
that upstream). ``wrk`` (a second process, as in the API bench) sends a fixed number of
requests over 8 keep-alive connections, one per thread, first straight to the upstream
(``direct``), then to the gateway's path form ``/apps/bench/`` (``gateway``), which
strips the prefix and proxies over kept-alive upstream connections. Each side gets a
discarded warm-up first, then the two measured runs alternate twice and the better run
of each side is kept (the machine is shared; both sides get the same chance).

Rows (``metric``): ``direct`` and ``gateway`` with ``rps``, ``p50_ms``, ``p99_ms`` (wrk's
histogram) and ``ratio_to_direct`` (rps over direct rps); the gateway row adds
``added_p50_ms``. ``route_change`` is how long applying a changed route set takes
(write, ``nginx -t``, SIGHUP, until the new config answers), over 10 changes.
Targets: gateway >= 50% of direct throughput and < 2 ms added p50.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from agents.devnet.up import DEVNET_LEASE_GRACE_S
from agents.ingress import Nginx
from bench import servicedeploy
from bench.apiload import CONNECTIONS, Route, Server, ensure_wrk, run_wrk, start_server
from bench.apiload.servers import _free_port
from bench.report import print_table, write_results
from protocol.services import ServiceRoute

WARMUP = 500
ROUNDS = 2
CHANGES = 10


def _row(metric: str, figures: dict[str, Any], direct_rps: float) -> dict[str, Any]:
    rps = float(figures["answered"]) * 1e6 / float(figures["duration_us"])
    return {
        "metric": metric,
        "requests": figures["answered"],
        "rps": round(rps, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 3),
        "p99_ms": round(figures["p99_us"] / 1000, 3),
        "ratio_to_direct": round(rps / direct_rps, 3) if direct_rps else None,
        "errors": (figures["answered"] - figures["ok"]) + figures["socket_errors"],
    }


def _rps(figures: dict[str, Any]) -> float:
    return float(figures["answered"]) * 1e6 / float(figures["duration_us"])


def measure(requests: int) -> list[dict[str, Any]]:
    wrk = ensure_wrk()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dcloud-bench-")))
        bare = start_server("bare", workdir, db=None, ready_path="/")
        stack.callback(bare.stop)
        gateway = Nginx(workdir / "gateway", port=_free_port())
        target = [ServiceRoute(name="bench", target=bare.url, lease_id=1, healthy=True)]
        gateway.start(target)
        stack.callback(gateway.stop)
        assert gateway.popen is not None
        via = Server("gateway", gateway.port, gateway.popen, gateway.log)
        direct = Route("direct", bare, "GET", "/", spare="/")
        proxied = Route("gateway", via, "GET", "/apps/bench/", spare="/apps/bench/")

        best: dict[str, dict[str, Any]] = {}
        for route in (direct, proxied):
            run_wrk(wrk, route, WARMUP, workdir, warmup=True)
        for _ in range(ROUNDS):
            for route in (direct, proxied):
                figures = run_wrk(wrk, route, requests, workdir)
                print(f"  {route.label}: {_rps(figures):.0f} req/s", flush=True)
                if route.label not in best or _rps(figures) > _rps(best[route.label]):
                    best[route.label] = figures

        applies = []
        for i in range(CHANGES):
            lease = [ServiceRoute(name="bench", target=bare.url, lease_id=2 + i, healthy=True)]
            applies.append(gateway.apply(lease) * 1000)

    direct_rps = _rps(best["direct"])
    rows = [_row(side, best[side], direct_rps) for side in ("direct", "gateway")]
    rows[1]["added_p50_ms"] = round(rows[1]["p50_ms"] - rows[0]["p50_ms"], 3)
    applies.sort()
    rows.append(
        {
            "metric": "route_change",
            "requests": CHANGES,
            "p50_ms": round(statistics.median(applies), 1),
            "p99_ms": round(applies[-1], 1),
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="Ingress gateway vs direct to the upstream")
    parser.add_argument("--quick", action="store_true", help="2,000 requests per side (CI)")
    parser.add_argument("--requests", type=int, help="requests per side (default 20,000)")
    parser.add_argument("--deploys", type=int, help="services deployed (default 10; quick 3)")
    parser.add_argument("--failovers", type=int, help="provider kills (default 3; quick 1)")
    args = parser.parse_args()
    requests = args.requests or (2000 if args.quick else 20000)
    deploys = args.deploys or (3 if args.quick else 10)
    failovers = args.failovers if args.failovers is not None else (1 if args.quick else 3)
    print(
        f"services bench: {requests} requests per side, {CONNECTIONS} connections, "
        f"best of {ROUNDS}",
        flush=True,
    )
    started = time.monotonic()
    rows = measure(requests)
    title = "Services: deploy to first 200 by name; the ingress gateway (nginx) vs direct"
    gateway = rows[1]
    ok = gateway["ratio_to_direct"] >= 0.5 and gateway["added_p50_ms"] < 2.0
    print(
        f"\ngateway at {gateway['ratio_to_direct']:.0%} of direct throughput, "
        f"+{gateway['added_p50_ms']:.2f} ms p50 (targets >= 50%, < 2 ms): "
        f"{'met' if ok else 'MISSED'}; {time.monotonic() - started:.0f} s"
    )
    print(f"deploying {deploys} services on anvil, each to its first 200 through its name ...")
    deploy_rows = servicedeploy.measure(deploys, failovers)
    rows = deploy_rows + rows
    print_table(rows, title=title)
    p50 = deploy_rows[0]["p50_s"]
    print(
        f"deploy to first 200: p50 {p50:.2f} s (target <= 5 s: {'met' if p50 <= 5 else 'MISSED'})"
        f"; the same container started with the Docker SDK: p50 {deploy_rows[1]['p50_s']:.2f} s"
    )
    for row in deploy_rows[2:]:
        print(
            f"failover from the kill to the first 200 by name: p50 {row['p50_s']:.1f} s "
            f"(target <= 30 s: {'met' if row['p50_s'] <= 30 else 'MISSED'}); "
            f"{row['gas_per_report']} gas per watcher report (one lease per batch)"
        )
    notes = (
        f"`deploy_to_first_ok`: {deploys} services deployed one after another through the "
        "SDK on anvil with a marketplace, a provider agent and the gateway as real processes "
        "(place, lease with a permit, push, accept, container up, first 200 through the "
        "gateway by Host name); `docker_direct`: the same image and command started with the "
        "Docker SDK, port published, to its first 200 (target: deploy p50 <= 5 s). "
        f"`failover`: {failovers} runs of deploying a site on a second provider's network, "
        "SIGKILLing the agent of the provider serving it once the lease is reported serving, "
        "and timing until the gateway answers 200 for its name from the lease the failover "
        "opened (devnet settings: grace period "
        f"{DEVNET_LEASE_GRACE_S} s, prober every 1 s; target <= 30 s); `gas_per_report` is "
        "the gas of the marketplace's reportDown transactions over the reports they counted "
        "(one lease per batch here; bench/results/gas.json has a batch of 40). "
        f"{requests} requests per side from wrk (a second process) over {CONNECTIONS} "
        "keep-alive connections, one per thread, after a discarded warm-up; the better of "
        f"{ROUNDS} alternating runs per side. Upstream: a bare FastAPI hello route under "
        "uvicorn (1 worker, no access log) on 127.0.0.1. Gateway: nginx as agents/ingress "
        "configures it (worker_processes auto, upstream keepalive 64, no buffering), path "
        "form /apps/bench/ (prefix stripped). `ratio_to_direct` is rps over the direct rps "
        "(target >= 0.5); `added_p50_ms` the gateway's p50 minus the direct p50 (target < 2). "
        f"`route_change`: {CHANGES} route-set changes applied one after another (write the "
        "config, nginx -t, SIGHUP, until a new connection is answered by the new config); "
        "p99_ms is the slowest."
    )
    write_results("services", rows, title=title, notes=notes)
    return 1 if any(r.get("errors") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
