"""The marketplace side of the scale bench: replicas on one database behind HAProxy.

Each replica is ``python -m bench.scale --serve`` (the marketplace's ``create_app`` under
uvicorn, one worker, no access log) on a free loopback port. HAProxy (Debian's package,
installed with apt-get when missing) listens in front of them: heartbeats, registrations
and reads go round-robin to every replica; job and service placement (``/v1/jobs``,
``/v1/services``, ``/v1/watch``) go to the leader only, found by HAProxy's health check
``GET /v1/leader`` (200 on the leader, 503 on followers). Everything started here is
stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.scalesim.postgres import free_port

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent.parent
START_S = 90.0


def serve(port: int, database_url: str) -> None:
    """Run one replica in this process (``python -m bench.scale --serve``)."""
    import uvicorn

    from marketplace.app import create_app
    from marketplace.settings import Settings

    # Heartbeats are signed before the run: a wide clock window keeps the last ones of a
    # step acceptable. The rate limiter stays on (its cost is in the figures) with budgets
    # the load cannot reach (it all comes from one loopback address). All else: defaults.
    settings = Settings(
        database_url=database_url,
        host=HOST,
        port=port,
        signature_max_skew_s=3600,
        rate_per_client=1e9,
        rate_burst_per_client=10**9,
        rate_per_signer=1e9,
        rate_burst_per_signer=10**9,
    )
    uvicorn.run(
        create_app(settings), host=HOST, port=port, workers=1, log_level="warning", access_log=False
    )


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Cluster:
    """Replicas and the load balancer in front of them (:func:`start`)."""

    url: str  # the load balancer's
    replicas: list[Process] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    balancer: Process | None = None

    @property
    def pids(self) -> list[int]:
        return [r.proc.pid for r in self.replicas]

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for r in self.replicas:
            r.stop()


def ensure_haproxy() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("HAProxy is not installed; run `apt-get install haproxy` as root")
    print("installing haproxy (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True, env=env)
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(found):
        raise SystemExit("apt-get installed haproxy but it is not on PATH")
    return found


def haproxy_config(*, port: int, replicas: list[int]) -> str:
    """HAProxy's configuration: placement to the leader, everything else round-robin."""
    servers = "\n".join(f"  server r{i} {HOST}:{p}" for i, p in enumerate(replicas))
    checked = "\n".join(f"  server r{i} {HOST}:{p} check" for i, p in enumerate(replicas))
    return f"""global
  maxconn 8000
  nbthread 1

defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-keep-alive

frontend api
  bind {HOST}:{port}
  acl leader_only path_beg /v1/jobs /v1/services /v1/watch
  use_backend leader if leader_only
  default_backend replicas

backend replicas
  balance roundrobin
{servers}

backend leader
  # a follower answers 503 at once; a leader slow to answer on a busy machine is still
  # the leader: three failed checks, each given 5 s, before it counts as gone
  option httpchk GET /v1/leader
  http-check expect status 200
  timeout check 5s
  default-server inter 1s fall 3 rise 1
{checked}
"""


def start(database_url: str, *, replicas: int, workdir: Path) -> Cluster:
    """Start `replicas` marketplace processes on `database_url` and HAProxy before them;
    return once the balancer answers and exactly one replica leads."""
    import httpx

    haproxy = ensure_haproxy()
    cluster = Cluster(url="")
    try:
        for i in range(replicas):
            port = free_port()
            log = workdir / f"replica-{i}.log"
            command = [sys.executable, "-m", "bench.scale", "--serve", "--port", str(port)]
            env = {**os.environ, "DCLOUD_BENCH_DATABASE_URL": database_url}
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            cluster.replicas.append(Process(f"replica-{i}", proc, log))
            cluster.ports.append(port)
        for replica, port in zip(cluster.replicas, cluster.ports, strict=True):
            _wait_ready(replica, f"http://{HOST}:{port}/v1/providers?limit=1")
        lb_port = free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(port=lb_port, replicas=cluster.ports))
        log = workdir / "haproxy.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [haproxy, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        cluster.balancer = Process("haproxy", proc, log)
        cluster.url = f"http://{HOST}:{lb_port}"
        _wait_ready(cluster.balancer, cluster.url + "/v1/leader")
        leaders = [
            p for p in cluster.ports if httpx.get(f"http://{HOST}:{p}/v1/leader").status_code == 200
        ]
        if len(leaders) != 1:
            raise SystemExit(f"expected exactly one leader, found {len(leaders)}")
        return cluster
    except BaseException:
        cluster.stop()
        raise


def _wait_ready(process: Process, url: str) -> None:
    import httpx

    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{process.name} did not start; its log:\n{process.log.read_text()[-3000:]}")
