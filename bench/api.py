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
The target (BENCHMARKS.md) is ≥ 30% of the bare route's throughput at p99 < 50 ms.

No lost writes: after the heartbeat run, the providers' heartbeat counters in the
database must have grown by exactly the number of 200 answers wrk counted; the bench
prints the check and exits non-zero when it fails or when any route had errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import print_table, write_results

HOST = "127.0.0.1"
CONNECTIONS = 8
PROVIDERS = 64
WARMUP = 200
TIME_CAP_S = 120
ROOT = Path(__file__).resolve().parent.parent

REGISTER, HEARTBEAT = "dcloud/provider.register", "dcloud/provider.heartbeat"

# One wrk script for every route. Each wrk thread has one connection and its own Lua state.
# args: <requests per thread, comma-separated> [<file of request bodies, "%d" = thread id>]
# wrk itself runs for a duration: a thread that has its answers stops and says so on stdout,
# and the parent interrupts wrk once every thread has. Times come from CLOCK_MONOTONIC.
LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local method, path, body = "__METHOD__", "__PATH__", __BODY__
local headers = {["Content-Type"] = "application/json"}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local i = 0
  for n in string.gmatch(args[1], "%d+") do
    i = i + 1
    if i == id then limit = tonumber(n) end
  end
  bodies = nil
  if args[2] then
    bodies = {}
    for line in io.lines(string.format(args[2], id)) do bodies[#bodies + 1] = line end
  end
  answered, ok, first_us, last_us = 0, 0, 0, 0
  fixed = wrk.format(method, path, headers, body)
  spare = wrk.format("GET", "__SPARE__")
end

-- wrk calls request() once more than it sends (to inspect it), so the body to send is
-- chosen by the count of answers; each connection has one request in flight at a time.
function request()
  if answered == 0 then first_us = now_us() end
  if answered >= limit then return spare end  -- never a write past the count
  if bodies then return wrk.format(method, path, headers, bodies[answered + 1]) end
  return fixed
end

function response(status, hdrs, resp)
  if answered >= limit then return end
  answered = answered + 1
  if status >= 200 and status < 300 then ok = ok + 1 end
  if answered == limit then
    last_us = now_us()
    io.stdout:write("THREAD_DONE\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local answered_all, ok_all, first, last = 0, 0, math.huge, 0
  for _, t in ipairs(threads) do
    answered_all = answered_all + t:get("answered")
    ok_all = ok_all + t:get("ok")
    first = math.min(first, t:get("first_us"))
    last = math.max(last, t:get("last_us"))
  end
  if last == 0 then last = first + summary.duration end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "answered": %d, "ok": %d, "duration_us": %d, "p99_us": %d, ' ..
    '"p50_us": %d, "mean_us": %f, "max_us": %d, "socket_errors": %d, "status_errors": %d}\n',
    summary.requests, answered_all, ok_all, last - first, latency:percentile(99),
    latency:percentile(50), latency.mean, latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


# ------------------------------------------------------------------ servers


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/sync")
    def hello_sync() -> dict[str, str]:
        return {"hello": "world"}

    return app


def serve(kind: str, port: int, db: str | None) -> None:
    """Run one server in this process (the parent starts two of these)."""
    import uvicorn

    if kind == "bare":
        app = bare_app()
    else:
        from marketplace.app import create_app
        from marketplace.settings import Settings

        assert db is not None
        # Heartbeats are signed before the run; a wide clock window keeps a slow run's
        # last envelopes acceptable. Nothing else differs from the defaults.
        settings = Settings(
            database_url=f"sqlite:///{db}", host=HOST, port=port, signature_max_skew_s=3600
        )
        app = create_app(settings)
    uvicorn.run(app, host=HOST, port=port, workers=1, log_level="warning", access_log=False)


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if not 8545 <= port <= 8559:  # kept free for local chains
            return port


def start_server(kind: str, workdir: Path, *, db: Path | None, ready_path: str) -> Server:
    import httpx

    port = _free_port()
    log = workdir / f"{kind}.log"
    command = [sys.executable, "-m", "bench.api", "--serve", kind, "--port", str(port)]
    if db is not None:
        command += ["--db", str(db)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(kind, port, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(server.url + ready_path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"{kind} server did not start; its log:\n{log.read_text()[-3000:]}")


# ------------------------------------------------------------------ load


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed; run `apt-get install wrk` as root")
    print("installing wrk (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


@dataclass
class Route:
    label: str
    server: Server
    method: str
    path: str
    body: dict[str, Any] | None = None
    bodies: list[list[str]] | None = None  # per connection, for signed requests
    spare: str = "/healthz"


def run_wrk(
    wrk: str, route: Route, requests: int, workdir: Path, *, warmup: bool = False
) -> dict[str, Any]:
    """Send `requests` requests to the route over CONNECTIONS connections; wrk's figures."""
    per_thread = split(requests)
    body = "nil" if route.body is None else json.dumps(json.dumps(route.body))
    script = (
        LUA.replace("__METHOD__", route.method)
        .replace("__PATH__", route.path)
        .replace("__BODY__", body)
        .replace("__SPARE__", route.spare)
    )
    lua = workdir / "route.lua"
    lua.write_text(script)
    args = [",".join(map(str, per_thread))]
    if route.bodies is not None:
        for i, lines in enumerate(route.bodies, start=1):
            (workdir / f"bodies-{i}.jsonl").write_text("\n".join(lines) + "\n")
        args.append(str(workdir / "bodies-%d.jsonl"))
    command = [
        wrk,
        f"-t{CONNECTIONS}",
        f"-c{CONNECTIONS}",
        f"-d{TIME_CAP_S}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        route.server.url + route.path,
        "--",
        *args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines, finished = [], 0
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("THREAD_DONE"):
                finished += 1
                if finished == CONNECTIONS:  # every count answered: end wrk's timed run
                    proc.send_signal(signal.SIGINT)
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    found = [ln for ln in lines if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not found:
        raise SystemExit(f"wrk failed on {route.label}:\n{''.join(lines)}\n{stderr}")
    figures: dict[str, Any] = json.loads(found[-1].removeprefix("BENCH "))
    figures["expected"] = sum(per_thread)
    if not warmup and figures["answered"] < figures["expected"]:
        print(
            f"  {route.label}: only {figures['answered']} of {figures['expected']} answered "
            f"within {TIME_CAP_S} s",
            flush=True,
        )
    return figures


# ------------------------------------------------------------------ the marketplace's data


def provider_accounts(n: int) -> list[Any]:
    from eth_account import Account
    from eth_utils.crypto import keccak

    return [Account.from_key(keccak(text=f"bench-api-provider-{i}")) for i in range(n)]


def registration(i: int) -> dict[str, Any]:
    lat = -60 + (i * 37) % 120
    lon = -170 + (i * 71) % 340
    return {
        "endpoint": f"http://{HOST}:{9100 + i}",
        "location": {"lat": lat, "lon": lon},
        "total": {"cpu": 16, "memory_mb": 65536, "gpu": 0, "disk_mb": 500_000},
        "free": {"cpu": 16, "memory_mb": 65536, "gpu": 0, "disk_mb": 500_000},
        "price_wei": 10**9 + i,
        "images": ["busybox", "python:3.11"],
    }


def register_providers(server: Server, accounts: list[Any]) -> int:
    """Register every account; return the clock (ms) after the last signature."""
    import httpx

    from protocol.signing import sign_request

    clock = time.time_ns() // 1_000_000
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i, acct in enumerate(accounts):
            env = sign_request(acct, purpose=REGISTER, payload=registration(i), timestamp_ms=clock)
            r = client.post("/v1/providers", json=env)
            if r.status_code != 201:
                raise SystemExit(f"registering provider {i} failed: {r.status_code} {r.text}")
    return clock


def split(requests: int) -> list[int]:
    """Requests per connection, adding up to `requests`."""
    base, extra = divmod(max(requests, CONNECTIONS), CONNECTIONS)
    return [base + (k < extra) for k in range(CONNECTIONS)]


def heartbeat_bodies(accounts: list[Any], requests: int, start_ms: int) -> list[list[str]]:
    """Signed heartbeats: connection k sends for its own providers, timestamps increasing."""
    from protocol.signing import sign_request

    per_conn_accounts = [accounts[k::CONNECTIONS] for k in range(CONNECTIONS)]
    out: list[list[str]] = []
    for k in range(CONNECTIONS):
        own = per_conn_accounts[k]
        lines = []
        for j in range(split(requests)[k]):
            acct = own[j % len(own)]
            payload = {"free": {"cpu": 1 + j % 15, "memory_mb": 1024 * (1 + j % 60)}}
            env = sign_request(acct, purpose=HEARTBEAT, payload=payload, timestamp_ms=start_ms + j)
            lines.append(json.dumps(env, separators=(",", ":")))
        out.append(lines)
    return out


def heartbeat_total(db: Path) -> int:
    from sqlalchemy import func, select

    from marketplace.store.db import make_engine
    from marketplace.store.models import ProviderRow

    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.sum(ProviderRow.heartbeats))) or 0)
    finally:
        engine.dispose()


QUOTE = {
    "image": "busybox",
    "command": ["echo", "hi"],
    "resources": {"cpu": 1, "memory_mb": 512},
    "time_limit_s": 60,
    "max_price_wei": 10**15,
    "replicas": 2,
    "origin": {"lat": 48.1, "lon": 11.6},
}


# ------------------------------------------------------------------ the run


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
