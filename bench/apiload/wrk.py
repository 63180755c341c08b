"""Load from ``wrk``: a fixed number of requests to one route over keep-alive connections.

Each wrk thread has one connection, so a connection's requests are strictly sequential;
the run stops when every thread has its count answered, or at a time cap.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.apiload.servers import Server

CONNECTIONS = 8
TIME_CAP_S = 120

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


def split(requests: int) -> list[int]:
    """Requests per connection, adding up to `requests`."""
    base, extra = divmod(max(requests, CONNECTIONS), CONNECTIONS)
    return [base + (k < extra) for k in range(CONNECTIONS)]
