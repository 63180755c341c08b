"""End-to-end job overhead and throughput: submit → matched → run → verified → settled, on anvil.

Run from the repository root (needs Docker and the local images; ``make setup``)::

    .venv/bin/python -m bench.e2e            # 200 jobs back to back, then 200 saturated
    .venv/bin/python -m bench.e2e --quick    # 40 jobs each (CI)

Real processes: an anvil chain with the contracts deployed, the marketplace, and four
provider agents running busybox containers in Docker. Renters (the chain's dev accounts)
each submit jobs back to back through the SDK: match, fund with a permit, push the spec,
wait for the result, download and verify it, confirm on chain. Two loads, one row each:

- ``back-to-back``: five renters, one job each at a time (the load of the first figures);
- ``saturated``: one renter per container slot of the agents (4 agents x ``max_parallel``),
  so every slot can be busy and throughput is bounded by the machine, not by latency.

The agents run with the product's defaults for heartbeats (5 s) and payouts (5 s), not the
devnet's every second. The chain mines each transaction as it arrives (anvil's automine),
as a rollup's sequencer confirms it at once; a chain with fixed block times adds up to a
block per transaction.

``overhead_s`` is the median over jobs of (submit → confirm mined) minus the container's
own run time as its provider measured it; ``jobs_per_s`` is completed jobs over the wall
time of the load. The baselines, measured in the same run just before each load:
``docker_direct_s``, the median time to run the same container directly with the Docker
SDK (create, start, wait, collect logs, remove), one at a time; ``docker_rate_per_s``,
containers per second run that way by as many threads as the load can keep containers
running at once (``concurrency``: renters, at most the agents' slots); ``ratio_to_docker``
is ``jobs_per_s`` over it. ``cpu_ms_per_job_*`` is the CPU time each part of the network
used per job during the load (``machine``: every process on the machine, others included;
``docker``: the engine's daemons, not the short-lived shims).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker

from agents import config as files
from agents.devnet.localchain import deploy, docker_engine, start_chain
from agents.devnet.network import Network, Provider, ProviderSpec
from agents.provider.config import CONFIG_FILE, ProviderConfig
from bench.report import print_table, write_results
from protocol.schemas import JobSpec

PORT, NETWORK = 8559, "dcloud-bench"
IMAGE = "dcloud/busybox:1"
COMMAND = ["sh", "-c", "echo ok > /output/o.txt"]
CITIES = [
    ("b-frankfurt", 50.11, 8.68),
    ("b-paris", 48.86, 2.35),
    ("b-milan", 45.46, 9.19),
    ("b-vienna", 48.21, 16.37),
]
FIRST_RENTER = 5  # dev accounts 5, 6, ... are the renters
BACK_TO_BACK = 5
SLOTS = len(CITIES) * int(ProviderConfig.model_fields["max_parallel"].default)
# agents heartbeat as often as the product's default (the devnet's do every second)
HEARTBEAT_S = float(ProviderConfig.model_fields["heartbeat_s"].default)
PHASES = ("match", "fund", "push_accept", "run_commit_reveal", "verify", "confirm")
TICK = os.sysconf("SC_CLK_TCK")
DOCKER_DAEMONS = ("dockerd", "containerd")


def run_direct(client: docker.DockerClient) -> float:
    """One container run the plain way; returns its seconds."""
    t0 = time.perf_counter()
    c = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo ok"],
        detach=True,
        network_disabled=True,
        user="65534:65534",
        read_only=True,
    )
    c.wait(timeout=30)
    c.logs()
    c.remove(force=True)
    return time.perf_counter() - t0


def docker_direct(n: int) -> float:
    client = docker.from_env()
    return statistics.median(run_direct(client) for _ in range(n))


def docker_rate(threads: int, n: int) -> tuple[float, float]:
    """Containers per second when `threads` threads run `n` containers between them, and
    the engine daemons' CPU milliseconds per container meanwhile."""
    client = docker.from_env(max_pool_size=max(threads, 10))
    daemons = pids_named(DOCKER_DAEMONS)
    cpu0, t0 = sum(cpu_ticks(p) for p in daemons), time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda _: run_direct(client), range(n)))
    wall, cpu = time.perf_counter() - t0, sum(cpu_ticks(p) for p in daemons) - cpu0
    return n / wall, 1000 * cpu / TICK / n


def spec() -> JobSpec:
    return JobSpec.model_validate(
        {
            "image": IMAGE,
            "command": COMMAND,
            "resources": {"cpu": 0.25, "memory_mb": 32, "disk_mb": 4},
            "time_limit_s": 20,
            "max_price_wei": 10**18,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )


def cpu_ticks(pid: int) -> int:
    """utime + stime + reaped children's of a process and of its live descendants (a
    chain started through a launcher runs as its child); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        kids = [
            int(k)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for k in (task / "children").read_text().split()
        ]
    except OSError:
        return 0
    return sum(int(f) for f in fields[11:15]) + sum(cpu_ticks(k) for k in kids)


def pids_named(names: tuple[str, ...]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_ticks() -> int:
    """Busy CPU ticks of the whole machine (all cores; idle and iowait left out)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values) - values[3] - values[4]


class CpuMeter:
    """CPU used by each part of the network between :meth:`start` and :meth:`stop`."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = {**parts, "docker": pids_named(DOCKER_DAEMONS)}

    def _read(self) -> dict[str, int]:
        now = {k: sum(cpu_ticks(p) for p in pids) for k, pids in self.parts.items()}
        now["machine"] = machine_ticks()
        return now

    def start(self) -> None:
        self.t0, self.self0 = self._read(), os.times()

    def stop(self, jobs: int) -> dict[str, float]:
        end, self1 = self._read(), os.times()
        used = {k: (end[k] - self.t0[k]) / TICK for k in end}
        used["renters"] = self1.user + self1.system - self.self0.user - self.self0.system
        return {f"cpu_ms_per_job_{k}": round(1000 * v / max(jobs, 1), 1) for k, v in used.items()}


def start_agent(net: Network, provider: Provider) -> None:
    """Start an agent that claims its earnings as often as the product's default (the
    devnet's agents withdraw every second, a transaction a second each under load)."""
    path = provider.home / CONFIG_FILE
    cfg = files.load(path, ProviderConfig, init_hint="")
    payout_s = ProviderConfig.model_fields["payout_s"].default
    files.save(path, cfg.model_copy(update={"payout_s": payout_s}))
    net.start_provider(provider)


def load(net: Network, meter: CpuMeter, *, renters: int, jobs: int) -> dict[str, Any]:
    """`jobs` jobs from `renters` renters, each submitting back to back; one result row."""
    concurrency = min(renters, SLOTS)
    direct = docker_direct(20)
    rate, docker_cpu_ms = docker_rate(concurrency, max(40, 4 * concurrency))
    clients = [net.renter(FIRST_RENTER + i) for i in range(renters)]
    per_renter = [jobs // renters + (1 if i < jobs % renters else 0) for i in range(renters)]
    totals: list[tuple[Any, int, float]] = []  # renter, job, submit -> confirmed
    phases: dict[str, list[float]] = {k: [] for k in PHASES}
    errors: list[str] = []
    lock = threading.Lock()

    def work(renter: Any, count: int) -> None:
        for _ in range(count):
            t0 = time.perf_counter()
            marks: dict[str, float] = {}

            def mark(stage: str, marks: dict[str, float] = marks) -> None:
                marks.setdefault(stage.split(" ")[0], time.perf_counter())

            try:
                job_id = renter.submit(spec(), progress=mark)
                t_pushed = time.perf_counter()
                renter.wait(job_id, timeout_s=120, poll_s=0.02)
                t_revealed = time.perf_counter()
                res = renter.result(job_id)
                t_verified = time.perf_counter()
                renter.confirm(job_id)
                t_confirmed = time.perf_counter()
                if res.exit_code != 0:
                    raise RuntimeError(f"job {job_id} exited {res.exit_code}")
            except Exception as exc:  # a benchmark counts failures, it does not stop
                with lock:
                    errors.append(repr(exc))
                continue
            with lock:
                totals.append((renter, job_id, t_confirmed - t0))
                phases["match"].append(marks["funding"] - t0)
                phases["fund"].append(marks["sending"] - marks["funding"])
                phases["push_accept"].append(t_pushed - marks["sending"])
                phases["run_commit_reveal"].append(t_revealed - t_pushed)
                phases["verify"].append(t_verified - t_revealed)
                phases["confirm"].append(t_confirmed - t_verified)

    meter.start()
    t0 = time.perf_counter()
    threads = [
        threading.Thread(target=work, args=(r, n)) for r, n in zip(clients, per_renter, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done = len(totals)
    cpu = meter.stop(done)
    samples = []  # each job's overhead: asked of its provider after the load, not during it
    for renter, job_id, total in totals:
        agent = renter.view(job_id).replicas[0].agent or {}
        ran = (agent.get("finished_at") or 0) - (agent.get("started_at") or 0)
        samples.append(total - max(ran, 0.0))
    jobs_per_s = done / wall
    return {
        "load": "back-to-back" if renters == BACK_TO_BACK else "saturated",
        "agents": len(CITIES),
        "renters": renters,
        "concurrency": concurrency,
        "jobs": done,
        "errors": len(errors),
        "overhead_s": round(statistics.median(samples), 3) if samples else None,
        "overhead_p90_s": round(sorted(samples)[int(0.9 * (done - 1))], 3) if samples else None,
        "jobs_per_s": round(jobs_per_s, 2),
        "docker_direct_s": round(direct, 3),
        "docker_rate_per_s": round(rate, 2),
        "ratio_to_docker": round(jobs_per_s / rate, 3),
        "first_error": errors[0][:300] if errors else "",
        "docker_cpu_ms_per_container": round(docker_cpu_ms, 1),
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in phases.items() if v},
        **cpu,
    }


def run(jobs: int, loads: list[int]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="dcloud-e2e-") as tmp:
        root = Path(tmp)
        docker_engine("start", holder=os.getpid())  # started by PID if none runs
        try:
            chain = start_chain(
                "anvil", PORT, logs=root / "logs", accounts=FIRST_RENTER + max(loads)
            )
            net = None
            try:
                deploy(NETWORK, root / "deployments.json", logs=root / "logs")
                net = Network(
                    root=root,
                    rpc_url=f"http://127.0.0.1:{PORT}",
                    deployments=root / "deployments.json",
                    poll_s=0.02,
                    heartbeat_s=HEARTBEAT_S,
                    offline_after_s=4 * HEARTBEAT_S,
                )
                net.start_marketplace()
                for i, (name, lat, lon) in enumerate(CITIES):
                    spec_ = ProviderSpec(name, i + 1, lat, lon, cpu=4, memory_mb=4096)
                    start_agent(net, net.add_provider(spec_, start=False))
                assert net.market is not None
                meter = CpuMeter(
                    {
                        "marketplace": [net.market.pid],
                        "agents": [p.proc.pid for p in net.providers if p.proc is not None],
                        "chain": [chain.pid],
                    }
                )
                for renters in loads:
                    rows.append(load(net, meter, renters=renters, jobs=jobs))
            finally:
                try:
                    if net is not None:
                        net.close()
                finally:
                    chain.stop()
        finally:
            docker_engine("stop", holder=os.getpid())
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="End-to-end job overhead and throughput")
    parser.add_argument("--quick", action="store_true", help="40 jobs per load (CI)")
    parser.add_argument(
        "--load",
        choices=("back-to-back", "saturated", "both"),
        default="both",
        help="which load to run (default: both, one row each)",
    )
    args = parser.parse_args(argv)
    loads = {"back-to-back": [BACK_TO_BACK], "saturated": [SLOTS]}.get(
        args.load, [BACK_TO_BACK, SLOTS]
    )
    rows = run(40 if args.quick else 200, loads)
    print_table(rows, title="End-to-end jobs on anvil through 4 provider agents")
    write_results(
        "e2e",
        rows,
        title="End-to-end job overhead (submit → settled) through 4 local agents on anvil",
        notes=(
            "`overhead_s`: median per job of submit → confirm mined, minus the container's "
            "own run time; `jobs_per_s`: completed jobs over the wall time, renters submitting "
            "back to back (`back-to-back`: 5 renters; `saturated`: one per agent slot); "
            "`docker_direct_s`: median of running the same busybox container directly with "
            "the Docker SDK, one at a time; `docker_rate_per_s`: containers/s run that way by "
            "`concurrency` threads (the baseline, same run); `ratio_to_docker`: jobs_per_s "
            "over it; `cpu_ms_per_job_*`: CPU per job by part during the load."
        ),
    )


if __name__ == "__main__":
    main()
