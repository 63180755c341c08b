"""End-to-end job overhead: submit → matched → container run → verified → settled, on anvil.

Run from the repository root (needs Docker and the local images; ``make setup``)::

    .venv/bin/python -m bench.e2e            # 200 jobs through 4 agents
    .venv/bin/python -m bench.e2e --quick    # 40 jobs (CI)

Real processes: an anvil chain with the contracts deployed, the marketplace, and four
provider agents running busybox containers in Docker. Five renters (the chain's dev
accounts) each submit jobs back to back through the SDK: match, fund with a permit,
push the spec, wait for the reveal, download and verify the result, confirm on chain.

``overhead_s`` is the median over jobs of (submit → confirm mined) minus the
container's own run time as its provider measured it; ``jobs_per_s`` is completed jobs
over the wall time of the whole run; ``docker_direct_s`` is the median time to run the
same container directly with the Docker SDK (create, start, wait, collect logs, remove)
in the same run, the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker

from agents.devnet.localchain import deploy, docker_engine, start_chain
from agents.devnet.network import Network, ProviderSpec
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
RENTERS = [5, 6, 7, 8, 9]


def docker_direct(n: int) -> float:
    client = docker.from_env()
    times = []
    for _ in range(n):
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
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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


def run(jobs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dcloud-e2e-") as tmp:
        root = Path(tmp)
        docker_engine("start", holder=os.getpid())  # started by PID if none runs
        try:
            chain = start_chain("anvil", PORT, logs=root / "logs")
            net = None
            try:
                deploy(NETWORK, root / "deployments.json", logs=root / "logs")
                net = Network(
                    root=root,
                    rpc_url=f"http://127.0.0.1:{PORT}",
                    deployments=root / "deployments.json",
                    poll_s=0.02,
                )
                net.start_marketplace()
                for i, (name, lat, lon) in enumerate(CITIES):
                    net.add_provider(ProviderSpec(name, i + 1, lat, lon, cpu=4, memory_mb=4096))
                direct = docker_direct(20)
                renters = [net.renter(k) for k in RENTERS]
                per_renter = [
                    jobs // len(renters) + (1 if i < jobs % len(renters) else 0)
                    for i in range(len(renters))
                ]
                samples: list[float] = []
                phases: dict[str, list[float]] = {
                    k: []
                    for k in (
                        "match",
                        "fund",
                        "push_accept",
                        "run_commit_reveal",
                        "verify",
                        "confirm",
                    )
                }
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
                        except Exception as exc:  # a benchmark counts failures, it does not stop
                            with lock:
                                errors.append(repr(exc))
                            continue
                        total = t_confirmed - t0
                        agent = renter.view(job_id).replicas[0].agent or {}
                        ran = (agent.get("finished_at") or 0) - (agent.get("started_at") or 0)
                        with lock:
                            samples.append(total - max(ran, 0.0))
                            phases["match"].append(marks["funding"] - t0)
                            phases["fund"].append(marks["sending"] - marks["funding"])
                            phases["push_accept"].append(t_pushed - marks["sending"])
                            phases["run_commit_reveal"].append(t_revealed - t_pushed)
                            phases["verify"].append(t_verified - t_revealed)
                            phases["confirm"].append(t_confirmed - t_verified)
                        assert res.exit_code == 0

                t0 = time.perf_counter()
                threads = [
                    threading.Thread(target=work, args=(r, n))
                    for r, n in zip(renters, per_renter, strict=True)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
            finally:
                try:
                    if net is not None:
                        net.close()
                finally:
                    chain.stop()
        finally:
            docker_engine("stop", holder=os.getpid())
    done = len(samples)
    return {
        "agents": len(CITIES),
        "jobs": done,
        "errors": len(errors),
        "overhead_s": round(statistics.median(samples), 3) if samples else None,
        "overhead_p90_s": round(sorted(samples)[int(0.9 * (done - 1))], 3) if samples else None,
        "jobs_per_s": round(done / wall, 2),
        "docker_direct_s": round(direct, 3),
        "first_error": errors[0][:300] if errors else "",
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in phases.items() if v},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="End-to-end job overhead and throughput")
    parser.add_argument("--quick", action="store_true", help="40 jobs (CI)")
    args = parser.parse_args(argv)
    rows = [run(40 if args.quick else 200)]
    print_table(rows, title="End-to-end jobs on anvil through 4 provider agents")
    write_results(
        "e2e",
        rows,
        title="End-to-end job overhead (submit → settled) through 4 local agents on anvil",
        notes=(
            "`overhead_s`: median per job of submit → confirm mined, minus the container's "
            "own run time; `jobs_per_s`: completed jobs over the wall time with 5 renters "
            "submitting back to back; `docker_direct_s`: median of running the same busybox "
            "container directly with the Docker SDK in the same run (the baseline)."
        ),
    )


if __name__ == "__main__":
    main()
