"""The load generator: simulated providers heartbeating and renters submitting jobs.

Each generator is a process of its own (``python -m bench.scale --generate PLAN``) that
runs one asyncio loop with an aiohttp client. Before the step it signs everything it will
send (heartbeats with strictly increasing timestamps per provider, so none is a replay;
job submits round-robin over many renters), says READY on stdout and waits for the start
time on stdin. Then it sends open-loop: provider ``g`` of ``n`` heartbeats at
``start + (g / n) * interval + k * interval``, whatever the answers, and the renters submit
(quote, then the signed submit) at a steady rate. The first heartbeats, for a warm-up
(new connections, the first index build), are sent and checked but their latencies are
not counted. It reports every answer's latency, the
lag between when a request was due and when it went out (how far the generator itself fell
behind) and the CPU seconds it used, as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from protocol import purposes

CONNECTIONS_PER_GENERATOR = 256


@dataclass
class Plan:
    url: str
    providers: list[int]  # global indices this generator simulates
    network: int  # providers in the whole network (for the phases)
    interval_s: float
    duration_s: float
    jobs_per_s: float = 0.0
    first_job: int = 0
    warmup_s: float = 0.0  # sent first, before `duration_s`; latencies not counted


@dataclass
class Outcome:
    hb_ms: list[float] = field(default_factory=list)  # latency of each 200 after the warm-up
    hb_sent: int = 0
    hb_ok: int = 0
    hb_errors: dict[str, int] = field(default_factory=dict)
    lag_ms: list[float] = field(default_factory=list)
    jobs_sent: int = 0
    jobs_matched: int = 0
    job_errors: dict[str, int] = field(default_factory=dict)
    job_ms: list[float] = field(default_factory=list)  # quote + submit, answered
    cpu_s: float = 0.0
    wall_s: float = 0.0


def presign(plan: Plan) -> tuple[list[tuple[float, bytes]], list[tuple[float, bytes, bytes]]]:
    """(heartbeats, jobs): each as (due offset in s, body...), sorted by due time."""
    from bench.scalesim.network import (
        RENTERS,
        heartbeat_payload,
        job_spec,
        provider_account,
        renter_account,
    )
    from protocol.signing import sign_request

    total_s = plan.warmup_s + plan.duration_s
    beats = math.ceil(total_s / plan.interval_s)
    base_ms = time.time_ns() // 1_000_000
    heartbeats: list[tuple[float, bytes]] = []
    for g in plan.providers:
        account = provider_account(g)
        phase = (g % plan.network) / plan.network * plan.interval_s
        for k in range(beats):
            due = phase + k * plan.interval_s
            if due >= total_s:
                break
            env = sign_request(
                account,
                purpose=purposes.PROVIDER_HEARTBEAT,
                payload=heartbeat_payload(g, k),
                timestamp_ms=base_ms + k,
            )
            heartbeats.append((due, json.dumps(env, separators=(",", ":")).encode()))
    heartbeats.sort(key=lambda t: t[0])
    jobs: list[tuple[float, bytes, bytes]] = []
    if plan.jobs_per_s > 0:
        renters = [renter_account(r) for r in range(RENTERS)]
        for n in range(int(plan.duration_s * plan.jobs_per_s)):
            j = plan.first_job + n
            spec = job_spec(j)
            env = sign_request(
                renters[j % RENTERS],
                purpose=purposes.JOB_SUBMIT,
                payload=spec,
                timestamp_ms=base_ms + j,
            )
            jobs.append(
                (
                    plan.warmup_s + n / plan.jobs_per_s,
                    json.dumps(spec).encode(),
                    json.dumps(env, separators=(",", ":")).encode(),
                )
            )
    return heartbeats, jobs


async def drive(
    plan: Plan,
    heartbeats: list[tuple[float, bytes]],
    jobs: list[tuple[float, bytes, bytes]],
    start_at: float,
) -> Outcome:
    import aiohttp

    out = Outcome()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_GENERATOR, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    loop = asyncio.get_running_loop()
    # wall clock -> loop clock, so every generator starts at the same instant
    t0 = loop.time() + (start_at - time.time())

    def count(errors: dict[str, int], key: str) -> None:
        errors[key] = errors.get(key, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def beat(due: float, body: bytes) -> None:
            sent = loop.time()
            out.lag_ms.append((sent - (t0 + due)) * 1000)
            try:
                async with http.post(
                    plan.url + "/v1/providers/heartbeat", data=body, headers=headers
                ) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                count(out.hb_errors, type(exc).__name__)
                return
            if status == 200:
                out.hb_ok += 1
                if due >= plan.warmup_s:
                    out.hb_ms.append((loop.time() - sent) * 1000)
            else:
                count(out.hb_errors, str(status))

        async def job(spec: bytes, body: bytes) -> None:
            sent = loop.time()
            try:
                async with http.post(plan.url + "/v1/jobs/quote", data=spec, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        count(out.job_errors, f"quote {r.status}")
                        return
                async with http.post(plan.url + "/v1/jobs", data=body, headers=headers) as r:
                    answer = await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                count(out.job_errors, type(exc).__name__)
                return
            out.job_ms.append((loop.time() - sent) * 1000)
            if status == 201 and json.loads(answer).get("status") == "matched":
                out.jobs_matched += 1
            else:
                count(out.job_errors, f"submit {status}")

        tasks: list[asyncio.Task[None]] = []
        events = sorted(
            [(due, 0, body, b"") for due, body in heartbeats]
            + [(due, 1, spec, body) for due, spec, body in jobs],
            key=lambda e: e[0],
        )
        for due, kind, first, second in events:
            delay = t0 + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == 0:
                out.hb_sent += 1
                tasks.append(asyncio.create_task(beat(due, first)))
            else:
                out.jobs_sent += 1
                tasks.append(asyncio.create_task(job(first, second)))
        await asyncio.gather(*tasks)
    return out


def main(plan_json: str) -> None:
    """Generator process: sign, say READY, wait for the start time, load, report."""
    plan = Plan(**json.loads(plan_json))
    heartbeats, jobs = presign(plan)
    print("READY", flush=True)
    start_at = float(sys.stdin.readline())
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.time()
    out = asyncio.run(drive(plan, heartbeats, jobs, start_at))
    after = resource.getrusage(resource.RUSAGE_SELF)
    out.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out.wall_s = time.time() - max(wall, start_at)
    print("RESULT " + json.dumps(asdict(out)), flush=True)


def outcome_of(data: dict[str, Any]) -> Outcome:
    return Outcome(**data)
