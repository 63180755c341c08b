"""The devnet's demo: three jobs from Munich (one replicated) and one in an image the renter
built and pushed itself, a file stored and read back and a small web site hosted as a
service at a stable name; then a table of who ran what where, in which image, for how much
and at which energy level, and the site's URL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from agents.devnet.demo_image import DEMO_IMAGE, push_demo_image
from agents.devnet.network import TOKEN, Network, dev_account
from agents.errors import AgentError
from agents.service import Gateway, Services, fmt_rate
from agents.service.rates import fmt_duration
from agents.service.views import place_of
from agents.units import fmt_tokens
from protocol.schemas import JobSpec
from protocol.services import ServiceSpec

RENTER_KEY = 20
SERVICE_NAME = "hello"
SITE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>dcloud demo service</title>"
    b"<h1>Hello from dcloud</h1><p>This page is served by a container on a provider "
    b"the marketplace chose for its cheap, low-demand power, paid by the second.</p></html>"
)


def run_demo(
    net: Network,
    *,
    home: Path,
    console: Console,
    progress: Callable[[], Progress],
    gateway_url: str,
) -> None:
    renter = net.renter(RENTER_KEY)
    jobs = [
        (
            "uppercase",
            ["sh", "-c", "echo 'energy aware cloud' | tr a-z A-Z > /output/out.txt"],
            1,
            "dcloud/busybox:1",
        ),
        (
            "pi",
            [
                "python3",
                "-c",
                "import math; open('/output/pi.txt','w').write(str(round(math.pi, 10)))",
            ],
            1,
            "dcloud/python:3.11",
        ),
        ("replicated", ["sh", "-c", "echo 42 > /output/answer.txt"], 3, "dcloud/busybox:1"),
        ("own image", ["/hello.sh"], 1, DEMO_IMAGE),
    ]
    table = Table(
        "job", "id", "image", "ran in", "km", "energy", "cost", "result", title="demo jobs"
    )
    names = {p.address: p.spec.name.removeprefix("provider-") for p in net.providers}
    with progress() as bar:
        task = bar.add_task(f"demo image {DEMO_IMAGE}: build and push", total=1)
        _, digest = push_demo_image(net, RENTER_KEY)
        bar.update(
            task,
            completed=1,
            description=f"[green]✓[/] demo image {DEMO_IMAGE} {digest[:19]}… pushed to the nodes",
        )
        for name, command, replicas, image in jobs:
            task = bar.add_task(f"demo job {name}", total=1)
            spec = JobSpec.model_validate(
                {
                    "image": image,
                    "command": command,
                    "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 8},
                    "time_limit_s": 60,
                    "max_price_wei": 10**18,
                    "replicas": replicas,
                    "origin": {"lat": 48.14, "lon": 11.58},
                }
            )

            def show(stage: str, task: TaskID = task, name: str = name) -> None:
                bar.update(task, description=f"demo job {name}: {stage}")

            job_id = renter.submit(spec, progress=show)
            renter.wait(job_id, timeout_s=180, progress=show)
            res = renter.result(job_id, out_dir=home / "results" / str(job_id))
            renter.confirm(job_id)
            bar.update(task, completed=1, description=f"[green]✓[/] demo job {name}")
            out = next(iter(res.files.values()), b"").decode(errors="replace").strip()
            for a in renter.record(job_id)["assignments"]:
                table.add_row(
                    name,
                    str(job_id),
                    image.removeprefix("dcloud/") if image != DEMO_IMAGE else f"yours: {image}",
                    names.get(a["provider"], a["provider"][:10]),
                    f"{a['distance_km']:.0f}",
                    f"level {a['energy_level']}",
                    fmt_tokens(a["cost_wei"]),
                    out[:24],
                )
        task = bar.add_task("demo file (5 MB, k=4 of n=8 across 8 nodes)", total=1)
        digest, where = store_demo_file(net, home)
        bar.update(task, completed=1, description="[green]✓[/] demo file stored and read back")
        task = bar.add_task(f"demo service {SERVICE_NAME}", total=1)

        def shown(stage: str) -> None:
            bar.update(task, description=f"demo service {SERVICE_NAME}: {stage}")

        up = deploy_demo_service(net, gateway_url, progress=shown)
        bar.update(task, completed=1, description=f"[green]✓[/] demo service {SERVICE_NAME}")
    console.print(table)
    console.print(
        f"demo file: sha256 {digest[:16]}… verified after a round trip; shards on {where}"
    )
    console.print(up)


def store_demo_file(net: Network, home: Path) -> tuple[str, str]:
    from agents.storage.files.client import StorageClient

    data = hashlib.sha256(b"dcloud demo").digest() * (5 * 2**20 // 32)
    with StorageClient(
        home=home / "renter-files",
        account=dev_account(RENTER_KEY, net.mnemonic),
        marketplace=net.market_url,
    ) as client:
        name = f"demo-{int(time.time())}.bin"
        client.put_bytes(data, name=name, k=4, n=8)
        back = client.get_bytes(name)
    if back != data:
        raise AgentError("the demo file came back different")
    return hashlib.sha256(back).hexdigest(), "8 nodes"


def deploy_demo_service(net: Network, gateway_url: str, *, progress: Callable[[str], None]) -> str:
    """Host a one-page site as service "hello" (or find the one a previous run left up)."""
    services = Services(net.renter(RENTER_KEY), gateway=Gateway(url=gateway_url))
    spec = ServiceSpec.model_validate(
        {
            "name": SERVICE_NAME,
            "image": "dcloud/python:3.11",
            "command": ["python3", "-m", "http.server", "8000", "--directory", "/input"],
            "port": 8000,
            "resources": {"cpu": 0.25, "memory_mb": 64, "disk_mb": 8},
            "max_rate_wei_per_s": 10**13,
            "origin": {"lat": 48.14, "lon": 11.58},
            "inputs": [
                {
                    "path": "index.html",
                    "size": len(SITE),
                    "sha256": hashlib.sha256(SITE).hexdigest(),
                }
            ],
        }
    )
    again = ""
    try:
        if services.status(SERVICE_NAME, ask_provider=False).lease.live:
            again = "still up from the last run"
    except AgentError:
        pass  # never deployed by this renter
    if not again:
        services.deploy(spec, {"index.html": SITE}, deposit=TOKEN, progress=progress)
    return service_summary(services, SERVICE_NAME, note=again)


def service_summary(services: Services, name: str, *, note: str = "") -> str:
    """Where the demo service answers, which provider serves it, for how long and at what
    rate, and what happens if that provider goes dark."""
    view = services.status(name, ask_provider=False)
    market = view.market or {}
    provider = str(market.get("provider") or view.record["provider"])
    place = place_of(services.market, provider) or provider[:10]
    health = market.get("health") or {}
    uptime = float(health.get("uptime_s") or 0)
    state = health.get("state") or view.state
    level = market.get("energy_level")
    moved = view.record.get("failover_from")
    parts = [
        f"demo service: {view.url} (also {view.path_url})",
        f"provider {place}" + (f", level {level}" if level is not None else ""),
        f"up {fmt_duration(uptime)}, {state}",
        fmt_rate(view.lease.rate_per_second),
    ]
    if moved:
        parts.append(f"failed over from lease {moved}")
    cap, _ = services.chain.leases.failover_of(view.lease_id)
    grace = services.chain.leases.watch_rules().grace
    parts.append(
        f"moves to another provider if down {grace} s" if cap else "no failover (refund if down)"
    )
    return " · ".join(parts) + (f" ({note})" if note else "")
