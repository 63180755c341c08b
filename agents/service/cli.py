"""`dcloud service`: host a long-running container at a stable name, paid by the second.

It acts with the renter's key and config (`dcloud job init`): the same marketplace, chain,
origin and folder; the gateway the URLs name is the config's `gateway_url` and
`apps_domain` (`dcloud job init --gateway URL --apps-domain DOMAIN` changes them).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.status import Status
from rich.table import Table

from agents.errors import UserError
from agents.origin import parse_origin
from agents.renter import cli as renter_cli
from agents.service import manifest as manifests
from agents.service.client import Services
from agents.service.gateway import Gateway
from agents.service.inputs import collect_inputs
from agents.service.rates import fmt_duration, fmt_moment, fmt_rate, parse_rate
from agents.service.views import NAME_RULE, ServiceView, place_of
from agents.units import fmt_tokens, parse_tokens
from protocol.services import ServiceSpec

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

Home = renter_cli.Home
Name = Annotated[str, typer.Argument(help="the service's name (see `dcloud service ls`)")]
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
STEPS = (
    "placing",
    "opening the lease",
    "sending to the provider",
    "waiting for it to come up",
    "checking the URL",
)


class _Steps:
    """Deploy's progress: a spinner naming the step (and the provider's state while it
    comes up), and a tick line for each step done (plain lines when piped)."""

    def __init__(self, status: Status) -> None:
        self.status, self.name, self.at = status, STEPS[0], time.monotonic()

    def update(self, text: str) -> None:
        if text in STEPS and text != self.name:
            self.done()
            self.name, self.at = text, time.monotonic()
        self.status.update(text if text in STEPS else f"{self.name}: {text}")

    def done(self) -> None:
        took = time.monotonic() - self.at
        console.print(f"  [green]✓[/] {self.name} ({took:.1f} s)", highlight=False)


def _services(home: Path | None) -> Services:
    cfg = renter_cli._config(home)
    return Services(
        renter_cli._renter(home), gateway=Gateway(url=cfg.gateway_url, domain=cfg.apps_domain)
    )


def check_name(name: str) -> None:
    if not (3 <= len(name) <= 40 and _NAME.match(name)):
        raise UserError(f"{name!r} cannot be a service name: {NAME_RULE}")


def build_spec(fields: dict[str, Any]) -> ServiceSpec:
    try:
        return ServiceSpec.model_validate(fields)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        ]
        raise UserError("the service spec is not valid:\n" + "\n".join(lines)) from None


@app.command()
def deploy(
    command: Annotated[
        list[str] | None, typer.Argument(help="command run in the container (after --)")
    ] = None,
    name: Annotated[str, typer.Option(help="the name: NAME.apps.DOMAIN and /apps/NAME/")] = "",
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            "-f",
            help="a YAML file of several containers (compose-like: services, image, ports, "
            "env, depends_on, resources, health) deployed together; see the README",
        ),
    ] = None,
    image: Annotated[
        str,
        typer.Option(
            help="container image: one providers offer, or one you pushed (dcloud image push)"
        ),
    ] = "",
    port: Annotated[int, typer.Option(help="the port the container listens on")] = 0,
    cpu: Annotated[float, typer.Option(help="CPU cores")] = 0.5,
    memory_mb: Annotated[int, typer.Option(help="memory, MB")] = 256,
    disk_mb: Annotated[int, typer.Option(help="/data, kept across restarts, MB")] = 64,
    max_rate: Annotated[
        str, typer.Option(help="most you pay: 0.001/h, 0.5/day, 1e-6/s (tokens), 1000wei/s")
    ] = "",
    deposit: Annotated[
        str | None,
        typer.Option(help="tokens paid in now (default: an hour at the placed rate)"),
    ] = None,
    input_: Annotated[
        list[Path] | None,
        typer.Option("--input", help="file or folder sent to /input (folders recursively)"),
    ] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
    origin: Annotated[
        str | None, typer.Option(help="lat,lon or a city (default: the one set at init)")
    ] = None,
    health_path: Annotated[str, typer.Option(help="HTTP path whose 2xx/3xx means healthy")] = "/",
    tcp: Annotated[bool, typer.Option("--tcp", help="healthy = accepts TCP connections")] = False,
    network: Annotated[bool, typer.Option(help="allow outbound connections")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for it to come up")] = 180,
    snapshot_every: Annotated[
        int | None,
        typer.Option(
            help="copy /data into the storage network this often (seconds, at least 5), "
            "encrypted; a failover restores the newest copy (default: /data stays local)"
        ),
    ] = None,
    failover: Annotated[
        bool,
        typer.Option(
            help="if it is down past the grace period, move it (and the rest of the deposit) "
            "to another provider within --max-rate, under the same name; --no-failover: "
            "refund the rest instead"
        ),
    ] = True,
    home: Home = None,
) -> None:
    """Deploy a service and wait until its URL answers.

    It is placed on a provider, its lease opened on chain (your deposit, with a permit),
    sent to the provider, and checked through the gateway. With -f FILE, the containers
    the file names are deployed together on one provider under one lease.
    """
    required = [("--name", name), ("--image", image), ("--max-rate", max_rate)]
    if manifest is not None:
        given = [f for f, v in (("--image", image), ("--port", port), ("a command", command),
                                ("--env", env), ("--tcp", tcp)) if v]  # fmt: skip
        if given:
            raise UserError(f"{', '.join(given)}: the manifest says these; edit it instead")
        required = required[2:]
    for flag, value in required:
        if not value:
            raise UserError(f"{flag} is required (see `dcloud service deploy --help`)")
    if not port and manifest is None:
        raise UserError("--port is required: the port the container listens on")
    if name or manifest is None:
        check_name(name)
    cfg = renter_cli._config(home)
    where = parse_origin(origin) if origin else cfg.origin
    if where is None:
        raise UserError(
            "where do your users come from? pass --origin CITY or LAT,LON (e.g. Munich), or "
            "set it once with `dcloud job init --origin CITY`"
        )
    files, contents = collect_inputs(input_ or [])
    services = _services(home)
    if manifest is not None:
        spec = manifests.build(
            manifest,
            name=name,
            max_rate_wei_per_s=parse_rate(max_rate),
            origin=where,
            inputs=[f.model_dump() for f in files],
            network=network,
            images=services.renter.images,
        )
        if snapshot_every is not None:
            spec = build_spec({**spec.model_dump(mode="json"), "snapshot_s": snapshot_every})
    else:
        spec = build_spec(
            {
                "name": name,
                "image": image,
                "command": command or [],
                "env": dict(renter_cli._pair(e) for e in env or []),
                "port": port,
                "health": {"kind": "tcp"} if tcp else {"path": health_path},
                "resources": {"cpu": cpu, "memory_mb": memory_mb, "disk_mb": disk_mb},
                "max_rate_wei_per_s": parse_rate(max_rate),
                "origin": where.model_dump(),
                "network": network,
                "inputs": [f.model_dump() for f in files],
                "snapshot_s": snapshot_every,
            }
        )
    amount = parse_tokens(deposit) if deposit is not None else None
    with console.status("placing") as status:
        steps = _Steps(status)
        up = services.deploy(
            spec,
            contents,
            deposit=amount,
            progress=steps.update,
            timeout_s=timeout,
            failover=failover,
        )
        steps.done()
    where_ = f"provider {up.place or up.provider}"
    level = f", level {up.energy_level}" if up.energy_level is not None else ""
    console.print(
        f"[bold]{up.name}[/] is up: {up.url} ({where_}{level}, {fmt_rate(up.rate_wei_per_s)})",
        highlight=False,
        soft_wrap=True,
    )
    if not up.reachable:
        console.print(
            f"[yellow]warning:[/] its URL did not answer through the gateway: {up.detail}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("ls")
def ls(
    all_: Annotated[bool, typer.Option("--all", help="ended services too")] = False,
    home: Home = None,
) -> None:
    """Your services: URL, state, uptime, rate, what they cost and when they run out."""
    services = _services(home)
    views = services.ls(everything=all_)
    if not views:
        console.print("no services; deploy one with `dcloud service deploy`")
        return
    table = Table("name", "URL", "state", "uptime", "rate", "spent", "left", "runs out in")
    for v in views:
        out = v.runs_out_at
        table.add_row(
            v.name,
            v.url,
            v.state,
            fmt_duration(v.uptime_s) if v.uptime_s else "-",
            fmt_rate(v.lease.rate_per_second),
            fmt_tokens(v.spent),
            fmt_tokens(v.left),
            fmt_duration(out - v.now) if out else "-",
        )
    console.print(table)


@app.command()
def status(name: Name, home: Home = None) -> None:
    """One service: its lease, the provider's view and its route.

    The lease: deposit, rate, spent so far, what is left and when it runs out; the
    provider's view: state, restarts, uptime.
    """
    services = _services(home)
    v = services.status(name)
    for line in status_lines(v, place=place_of(services.market, v.lease.provider)):
        console.print(line, highlight=False, soft_wrap=True)


def status_lines(v: ServiceView, *, place: str = "") -> list[str]:
    lease, rec = v.lease, v.record
    lines = [f"[bold]{v.name}[/] · lease {v.lease_id} · {v.state}"]
    lines.append(f"  URL        {v.url} (or {v.path_url})")
    spec = rec.get("spec") or {}
    if spec.get("containers"):
        others = " · ".join(c["name"] for c in spec["containers"])
        lines.append(f"  containers {spec['alias']} (published, port {spec['port']}) · {others}")
    level = rec.get("energy_level")
    lines.append(
        f"  provider   {lease.provider}{f' ({place})' if place else ''} at {rec['endpoint']}"
        + (f" · energy level {level}" if level is not None else "")
    )
    if rec.get("failover_from"):
        lines.append(
            f"  failover   moved here from lease {rec['failover_from']}, whose provider was "
            "down past the grace period"
        )
    if lease.down_seconds:
        lines.append(f"  down       {lease.down_seconds} s seen down by the watchers (not paid)")
    lines.append(
        f"  lease      {lease.status.name.lower()} · rate {fmt_rate(lease.rate_per_second)} · "
        f"deposit {fmt_tokens(lease.deposit)} · spent {fmt_tokens(v.spent)} · "
        f"left {fmt_tokens(v.left)}"
    )
    if v.runs_out_at:
        lines.append(f"  runs out   {fmt_moment(v.runs_out_at, now=v.now)}")
    if v.agent is not None:
        a = v.agent
        line = (
            f"  provider's view: {a.get('state')} · restarts {a.get('restarts', 0)} · "
            f"up {fmt_duration(float(a.get('uptime_s') or 0))}"
        )
        if a.get("last_error"):
            line += f" · last error: {a['last_error']}"
        if a.get("detail"):
            line += f" · {a['detail']}"
        lines.append(line)
    elif v.agent_problem:
        lines.append(f"  provider's view: unavailable ({v.agent_problem})")
    market = v.market or {}
    if market.get("route"):
        health = market.get("health") or {}
        probe = health.get("probe_healthy")
        seen = {True: "healthy", False: "unhealthy", None: "not probed yet"}[probe]
        lines.append(f"  route      {market['route']} ({seen} by the marketplace's prober)")
    elif lease.live:
        lines.append("  route      none yet (the provider has not reported a port)")
    return lines


@app.command()
def logs(
    name: Name,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep streaming")] = False,
    home: Home = None,
) -> None:
    """The service's logs from its provider (-f streams them until Ctrl-C)."""
    services = _services(home)
    try:
        for chunk in services.logs(name, follow=follow):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


@app.command("top-up")
def top_up(
    name: Name,
    amount: Annotated[str, typer.Argument(help="tokens to add, e.g. 0.5")],
    home: Home = None,
) -> None:
    """Add tokens to the service's deposit: it runs out later."""
    services = _services(home)
    with console.status("topping up (permit and topUp)"):
        t = services.top_up(name, parse_tokens(amount))
    line = f"{name}: deposit {fmt_tokens(t.before.deposit)} → {fmt_tokens(t.after.deposit)}"
    if t.after.runs_out_at:
        line += f"; runs out {fmt_moment(t.after.runs_out_at, now=t.now)}"
    console.print(line, highlight=False, soft_wrap=True)


@app.command()
def stop(name: Name, home: Home = None) -> None:
    """Stop the service and take the rest of its deposit back.

    Its lease is closed on chain: the provider is paid to this second and the rest of the
    deposit comes back to your wallet.
    """
    services = _services(home)
    with console.status(f"stopping {name}: closing its lease"):
        s = services.stop(name)
    if s.was_live:
        back = f"the rest of the deposit, {fmt_tokens(s.refund)}, came back to your wallet"
        if s.withdrawn != s.refund:
            back = (
                f"{fmt_tokens(s.refund)} of the deposit came back ({fmt_tokens(s.withdrawn)} "
                "withdrawn to your wallet with earlier credit)"
            )
        console.print(
            f"{name} stopped (lease {s.lease_id} closed): the provider was paid "
            f"{fmt_tokens(s.lease.paid)} in all (fees included; "
            f"{fmt_tokens(s.provider_now + s.fee_now)} of it now); {back}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        reason = s.lease.reason.name.lower().replace("_", " ")
        console.print(
            f"{name}'s lease {s.lease_id} had ended already ({reason}); "
            f"{fmt_tokens(s.withdrawn)} withdrawn to your wallet",
            highlight=False,
            soft_wrap=True,
        )
