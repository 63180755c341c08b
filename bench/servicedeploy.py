"""Services: from `deploy` to the first 200 through the service's name, on anvil.

Real processes, as `make demo` runs them: an anvil chain with the contracts deployed, the
marketplace (its prober reports each service serving on LeaseEscrow), two provider agents
and the ingress gateway (nginx fed by the marketplace's routes). One renter deploys small
sites one after another through the SDK (place at the marketplace, open the lease with a
permit, push the spec and the page to the provider, which accepts, starts the container
and publishes its port); the clock stops at the first 200 answered through the gateway
with the service's Host name.

Baseline, in the same run: the same image and command started straight with the Docker
SDK, its port published, until the first 200 on that port (``docker_direct``).
Rows (``metric``): ``deploy_to_first_ok`` and ``docker_direct`` with ``p50_s``/``p99_s``.
Target: deploy p50 <= 5 s.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import httpx

from agents.devnet.localchain import deploy, docker_engine, start_chain
from agents.devnet.network import Network, ProviderSpec
from agents.devnet.procs import free_port
from agents.devnet.up import DEVNET_LEASE_GRACE_S
from agents.ingress import Controller, Nginx
from agents.service import Gateway, Services
from bench import failover
from protocol.services import ServiceSpec

PORT, NETWORK = 8559, "dcloud-bench"
IMAGE = "dcloud/python:3.11"
COMMAND = ["python3", "-m", "http.server", "8000", "--directory", "/input"]
PAGE = b"<h1>bench</h1>"
PAGE_FILE = {"path": "index.html", "size": len(PAGE), "sha256": hashlib.sha256(PAGE).hexdigest()}
RENTER = 5
TOKEN = 10**18


def _spec(name: str) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "name": name,
            "image": IMAGE,
            "command": COMMAND,
            "port": 8000,
            "resources": {"cpu": 0.25, "memory_mb": 64, "disk_mb": 8},
            "max_rate_wei_per_s": 10**13,
            "origin": {"lat": 50.0, "lon": 8.0},
            "health": {"interval_s": 0.2, "start_period_s": 30},
            "inputs": [
                {
                    "path": "index.html",
                    "size": len(PAGE),
                    "sha256": hashlib.sha256(PAGE).hexdigest(),
                }
            ],
        }
    )


def _first_ok(url: str, *, headers: dict[str, str] | None = None, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} never answered 200")


def docker_direct(n: int, inputs: Path) -> list[float]:
    """Start the same container with the Docker SDK, port published, until the first 200."""
    client = docker.from_env()
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "index.html").write_bytes(PAGE)
    times = []
    for _ in range(n):
        port = free_port()
        t0 = time.perf_counter()
        c = client.containers.run(
            IMAGE,
            COMMAND,
            detach=True,
            ports={"8000/tcp": ("127.0.0.1", port)},
            volumes={str(inputs): {"bind": "/input", "mode": "ro"}},
            user="65534:65534",
            read_only=True,
        )
        try:
            _first_ok(f"http://127.0.0.1:{port}/")
            times.append(time.perf_counter() - t0)
        finally:
            c.remove(force=True)
    return times


def _row(metric: str, times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "metric": metric,
        "runs": len(times),
        "p50_s": round(statistics.median(ordered), 3),
        "p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def measure(services: int, failovers: int = 0) -> list[dict[str, Any]]:
    """Rows ``deploy_to_first_ok`` and ``docker_direct`` (and, with `failovers`, the
    ``failover`` row of :mod:`bench.failover`, with a second provider to fail over to)."""
    with tempfile.TemporaryDirectory(prefix="dcloud-services-") as tmp:
        root = Path(tmp)
        docker_engine("start", holder=os.getpid())
        try:
            chain = start_chain("anvil", PORT, logs=root / "logs")
            net: Network | None = None
            gateway: Nginx | None = None
            controller: Controller | None = None
            try:
                deploy(
                    NETWORK,
                    root / "deployments.json",
                    logs=root / "logs",
                    DCLOUD_LEASE_GRACE=str(DEVNET_LEASE_GRACE_S),
                )
                net = Network(
                    root=root,
                    rpc_url=f"http://127.0.0.1:{PORT}",
                    deployments=root / "deployments.json",
                    poll_s=0.02,
                )
                net.start_marketplace()
                for i, (name, lat, lon) in enumerate([("s-frankfurt", 50.11, 8.68)]):
                    net.add_provider(ProviderSpec(name, i + 1, lat, lon, cpu=4, memory_mb=4096))
                gateway = Nginx(root / "gateway", port=free_port())
                gateway.start()
                controller = Controller(gateway, net.market_url, interval_s=0.1).start()
                sdk = Services(
                    net.renter(RENTER), gateway=Gateway(url=f"http://127.0.0.1:{gateway.port}")
                )
                deployed = []
                for i in range(services):
                    name = f"bench-{i}"
                    t0 = time.perf_counter()
                    done = sdk.deploy(_spec(name), {"index.html": PAGE}, deposit=TOKEN)
                    _first_ok(
                        f"http://127.0.0.1:{gateway.port}/",
                        headers={"host": f"{name}.apps.localhost:{gateway.port}"},
                    )
                    deployed.append(time.perf_counter() - t0)
                    sdk.stop(done.name)
                direct = docker_direct(services, root / "direct")
                rows = [_row("deploy_to_first_ok", deployed), _row("docker_direct", direct)]
                if failovers:
                    spare = ProviderSpec("s-paris", 2, 48.86, 2.35, cpu=4, memory_mb=4096)
                    net.add_provider(spare)
                    spec = _spec("failover")
                    rows.append(failover.measure(net, sdk, gateway.port, spec, failovers))
                return rows
            finally:
                if controller is not None:
                    controller.stop()
                if gateway is not None:
                    gateway.stop()
                if net is not None:
                    net.close()
                chain.stop()
        finally:
            docker_engine("stop", holder=os.getpid())
