"""`dcloud job`: rent compute. Submit a container job, watch it, fetch its verified result."""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from agents import config as files
from agents import keys
from agents.errors import UserError
from agents.network import open_deployment
from agents.origin import parse_origin
from agents.renter import deadlines, disputes, when
from agents.renter.client import Renter
from agents.renter.inputs import input_files
from agents.token.payback import payback
from agents.token.tokens import Tokens
from agents.token.view import balance_lines, payback_line
from agents.units import fmt_tokens, parse_tokens
from protocol.deployments import connect
from protocol.schemas import JobSpec, Location, Wire

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
CONFIG_FILE = "renter.json"

Home = Annotated[
    Path | None, typer.Option("--home", help="renter folder (default ~/.dcloud/renter)")
]
JobId = Annotated[int, typer.Argument(help="the job's on-chain id (from `submit` or `list`)")]
StartBy = Annotated[
    str | None,
    typer.Option(help="start at the cheapest hour until then: +6h, 18:00 or an ISO time"),
]
FinishBy = Annotated[
    str | None, typer.Option(help="finish by then (the latest start less the time limit)")
]
MaxKm = Annotated[
    float | None,
    typer.Option(help="km farther than the nearest provider the job may go for energy"),
]


class RenterConfig(Wire):
    marketplace_url: str
    rpc_url: str
    deployments: str | None = None
    origin: Location | None = None  # where jobs come from unless --origin says otherwise
    gateway_url: str = "http://127.0.0.1:8780"  # the ingress gateway services answer at
    apps_domain: str = "localhost"  # services answer at NAME.apps.<apps_domain>


def _password() -> str:
    pw = os.environ.get(keys.PASSWORD_ENV)
    return pw if pw is not None else getpass.getpass("keystore password: ")


def _config(home: Path | None) -> RenterConfig:
    folder = files.home("renter", home)
    return files.load(folder / CONFIG_FILE, RenterConfig, init_hint="dcloud job init")


def _renter(home: Path | None) -> Renter:
    folder = files.home("renter", home)
    cfg = _config(home)
    account = keys.load(folder / "keystore.json", _password())
    return Renter(
        account=account,
        marketplace_url=cfg.marketplace_url,
        rpc_url=cfg.rpc_url,
        deployments=cfg.deployments,
        home=folder,
    )


@app.command()
def init(
    marketplace: Annotated[str, typer.Option(help="marketplace URL")] = "http://127.0.0.1:8700",
    rpc: Annotated[str, typer.Option(help="Ethereum JSON-RPC URL")] = "http://127.0.0.1:8545",
    origin: Annotated[
        str | None,
        typer.Option(help="where your jobs come from: lat,lon or a city, e.g. Munich"),
    ] = None,
    deployments: Annotated[
        str | None,
        typer.Option(help="pin a deployments file instead of the marketplace's addresses"),
    ] = None,
    private_key: Annotated[
        str | None, typer.Option(help="import this key", envvar="DCLOUD_PRIVATE_KEY")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(help="the ingress gateway your services answer at (http://HOST:PORT)"),
    ] = None,
    apps_domain: Annotated[
        str | None, typer.Option(help="services answer at NAME.apps.DOMAIN")
    ] = None,
    home: Home = None,
) -> None:
    """Create the renter's key (encrypted keystore) and config, or change the config.

    The marketplace says which chain and contracts it follows; they are checked against
    the chain at --rpc before anything is saved. Run it again to change the URLs or the
    origin (the key stays).
    """
    folder = files.home("renter", home)
    where = parse_origin(origin) if origin else None
    network = _check_network(marketplace, rpc, deployments, folder)
    path = folder / CONFIG_FILE
    if path.exists():
        if private_key:
            raise UserError(
                f"{path} exists with its own key; --private-key only imports a key into a "
                "new renter folder (choose another with --home)"
            )
        old = files.load(path, RenterConfig, init_hint="dcloud job init")
        cfg = RenterConfig(
            marketplace_url=marketplace,
            rpc_url=rpc,
            deployments=deployments,
            origin=where or old.origin,
            gateway_url=gateway or old.gateway_url,
            apps_domain=apps_domain or old.apps_domain,
        )
        files.save(path, cfg)
        console.print(f"renter config updated in {folder}")
        console.print(network)
        return
    account = keys.create(folder / "keystore.json", _password(), private_key=private_key)
    cfg = RenterConfig(
        marketplace_url=marketplace, rpc_url=rpc, deployments=deployments, origin=where
    )
    if gateway:
        cfg.gateway_url = gateway
    if apps_domain:
        cfg.apps_domain = apps_domain
    files.save(path, cfg)
    console.print(f"renter [bold]{account.address}[/] set up in {folder}")
    console.print(network)
    if where is None:
        console.print(
            "jobs need an origin: pass --origin to each submit, or set it once with "
            "`dcloud job init --origin CITY-OR-LAT,LON`"
        )


def _check_network(marketplace: str, rpc: str, deployments: str | None, folder: Path) -> str:
    """Check the marketplace's contracts (or the pinned file) against the chain; a summary."""
    w3 = connect(rpc)
    with console.status(f"asking {marketplace} which contracts it follows"):
        d = open_deployment(
            w3, marketplace_url=marketplace, deployments=deployments, cache_dir=folder
        )
    return f"chain {d.chain_id} · JobEscrow {d.contracts['JobEscrow'].address} · checked on {rpc}"


def _spec(
    spec_file: Path | None,
    fields: dict[str, Any],
    inputs: list[Path],
    *,
    origin: Location | None = None,
    window: tuple[str | None, str | None] = (None, None),
) -> tuple[JobSpec, dict[str, bytes]]:
    """The spec from the file, the options over it, the renter's origin if neither
    names one, and the start window (--start-by, --finish-by) as its latest start."""
    data: dict[str, Any] = {}
    if spec_file is not None:
        try:
            data = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read spec {spec_file} ({exc})") from None
    data.update({k: v for k, v in fields.items() if v is not None})
    latest = when.start_by(
        start=window[0], finish=window[1], time_limit_s=data.get("time_limit_s"), now=time.time()
    )
    if latest is not None:
        data["start_by"] = latest
    if "origin" not in data:
        if origin is None:
            raise UserError(
                "where do your jobs come from? pass --origin CITY or LAT,LON (e.g. Munich), "
                "or set it once with `dcloud job init --origin CITY`"
            )
        data["origin"] = origin.model_dump()
    specs, contents = input_files(inputs)
    if specs:
        data["inputs"] = [s.model_dump() for s in specs]
    try:
        return JobSpec.model_validate(data), contents
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        ]
        raise UserError("the job spec is not valid:\n" + "\n".join(lines)) from None


@app.command()
def submit(
    command: Annotated[
        list[str] | None, typer.Argument(help="command run in the container")
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="container image: one providers offer, or one you pushed (dcloud image push)"
        ),
    ] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU cores")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="memory, MB")] = None,
    disk_mb: Annotated[int | None, typer.Option(help="output space, MB")] = None,
    time_limit: Annotated[int | None, typer.Option(help="seconds")] = None,
    max_price: Annotated[str | None, typer.Option(help="most you pay per replica, tokens")] = None,
    replicas: Annotated[
        int | None, typer.Option(help="providers that run it (majority wins)")
    ] = None,
    origin: Annotated[
        str | None, typer.Option(help="lat,lon or a city (default: the one set at init)")
    ] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
    input_: Annotated[
        list[Path] | None, typer.Option("--input", help="file sent to /input")
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="JSON job spec (options override it)")] = None,
    start_by: StartBy = None,
    finish_by: FinishBy = None,
    max_km: MaxKm = None,
    estimate: Annotated[
        bool, typer.Option(help="only show who would run it, when, and the cost; pay nothing")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="folder for the result")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the result, verify and confirm")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 600,
    home: Home = None,
) -> None:
    """Submit a job: match, pay into escrow, run, verify the result, confirm.

    With --start-by or --finish-by the marketplace may hold the job and start it later,
    at the hour and place of least expected energy cost; you pay now, and `dcloud job
    cancel` refunds it all until it starts."""
    fields: dict[str, Any] = {
        "image": image,
        "command": command or None,
        "time_limit_s": time_limit,
        "replicas": replicas,
        "max_price_wei": parse_tokens(max_price) if max_price else None,
        "env": dict(_pair(e) for e in env) if env else None,
    }
    res = {"cpu": cpu, "memory_mb": memory_mb, "disk_mb": disk_mb}
    if any(v is not None for v in res.values()):
        fields["resources"] = {k: v for k, v in res.items() if v is not None}
    if origin:
        fields["origin"] = parse_origin(origin).model_dump()
    job_spec, contents = _spec(
        spec, fields, input_ or [], origin=_config(home).origin, window=(start_by, finish_by)
    )
    if max_km is not None:
        job_spec = job_spec.model_copy(update={"max_km": max_km})
    renter = _renter(home)
    if estimate:
        _estimate(renter.quote(job_spec), time.time())
        return
    with console.status("submitting") as status:
        job_id = renter.submit(job_spec, contents, progress=lambda s: status.update(s))
    rec = renter.record(job_id)
    for a in rec["assignments"]:
        console.print(
            f"job [bold]{job_id}[/] slot {a['slot']}: {a['provider']} at {a['endpoint']} · "
            f"{a['distance_km']:.0f} km · energy level {a['energy_level']} · "
            f"{fmt_tokens(a['cost_wei'])}"
        )
    now = renter.escrow.now()
    for line in when.plan_lines(rec.get("plan"), now):
        console.print(f"  {line}")
    if rec.get("start_at", 0) > now:
        console.print(
            f"job {job_id} is held until {when.local(rec['start_at'], now)}; follow it with "
            f"`dcloud job status {job_id}`, fetch it with `dcloud job result {job_id}`, or "
            f"`dcloud job cancel {job_id}` for a full refund until it starts"
        )
        return
    if not wait:
        console.print(
            f"funded {fmt_tokens(rec['price_wei'] * job_spec.replicas)}; "
            f"follow it with `dcloud job status {job_id}`"
        )
        return
    _finish(renter, job_id, out or Path(f"dcloud-job-{job_id}"), timeout)


def _estimate(quote: dict[str, Any], now: float) -> None:
    if quote.get("price_wei") is None:
        raise UserError(f"no provider can run this job: {quote['reason']}")
    for a in quote["candidates"]:
        console.print(
            f"{a['provider']} · {a['distance_km']:.0f} km · energy level {a['energy_level']} · "
            f"{fmt_tokens(a['cost_wei'])}"
        )
    for line in when.plan_lines(quote.get("plan"), now):
        console.print(f"  {line}")
    console.print(f"price {fmt_tokens(quote['price_wei'])} per replica; nothing was paid")


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise UserError(f"--env {text!r} must look like KEY=VALUE")
    return key, value


def _finish(renter: Renter, job_id: int, out: Path, timeout: float) -> None:
    with console.status("waiting for the providers") as status:
        view = renter.wait(job_id, progress=lambda s: status.update(s), timeout_s=timeout)
    if view.closed:
        console.print(f"job {job_id} closed: {view.chain.status.name.lower()}")
        return
    with console.status("downloading and verifying the result"):
        res = renter.result(job_id, out_dir=out)
    with console.status("confirming on chain"):
        renter.confirm(job_id)
    verdict = "[green]ok[/]" if res.exit_code == 0 else f"[red]exit {res.exit_code}[/]"
    console.print(
        f"job {job_id} {verdict} {res.detail} · result {res.result_hash[:18]}… verified · "
        f"saved in {out}"
    )


@app.command()
def status(job_id: JobId, home: Home = None) -> None:
    """The job on chain and at each provider."""
    renter = _renter(home)
    view = renter.view(job_id)
    c = view.chain
    console.print(
        f"job {job_id}: {c.status.name.lower()} · {c.accepted}/{c.replicas} accepted · "
        f"{c.committed} committed · {c.revealed} revealed · price {fmt_tokens(c.price)} per replica"
    )
    now = renter.escrow.now()
    for label, moment in deadlines.deadlines(c, now=now, windows=renter.escrow.windows()):
        console.print(f"  {label}: {moment}")
    table = Table("slot", "provider", "on chain", "at provider", "detail")
    for r in view.replicas:
        agent = r.agent or {}
        table.add_row(
            str(r.slot), r.provider, r.state, agent.get("state", "?"), agent.get("detail", "")
        )
    console.print(table)
    console.print("you can:")
    for line in deadlines.actions(c, renter.escrow.windows(), now=now):
        console.print(f"  · {line}")


@app.command()
def logs(job_id: JobId, home: Home = None) -> None:
    """The job's logs, from a provider that ran it."""
    renter = _renter(home)
    for r in renter.view(job_id, ask_providers=False).replicas:
        if r.endpoint:
            console.out(renter.provider_get(r.endpoint, f"/v1/jobs/{job_id}/logs").text, end="")
            return
    raise UserError(f"job {job_id} has no provider to ask")


@app.command()
def result(
    job_id: JobId,
    out: Annotated[Path | None, typer.Option(help="folder for the result")] = None,
    home: Home = None,
) -> None:
    """Download the majority result and verify it against the chain."""
    renter = _renter(home)
    folder = out or Path(f"dcloud-job-{job_id}")
    res = renter.result(job_id, out_dir=folder)
    console.print(f"result {res.result_hash} verified (exit {res.exit_code}); saved in {folder}")


@app.command()
def confirm(job_id: JobId, home: Home = None) -> None:
    """Accept the result and pay the providers now."""
    _renter(home).confirm(job_id)
    console.print(f"job {job_id} confirmed and paid")


@app.command()
def cancel(job_id: JobId, home: Home = None) -> None:
    """Cancel a job nobody accepted (or whose accept window lapsed): full refund."""
    renter = _renter(home)
    start = renter.escrow.w3.eth.block_number
    with console.status("cancelling"):
        renter.cancel(job_id)
    _paid_back(renter, job_id, start, f"job {job_id} cancelled")


def _paid_back(renter: Renter, job_id: int, start: int, what: str) -> None:
    """Withdraw the refund and say what came back, from where, and the wallet's total rise."""
    back = payback(renter.escrow, job_id, renter.address, from_block=start)
    with console.status("withdrawing the refund from JobEscrow"):
        withdrawn = renter.withdraw()
    console.print(f"{what}: {payback_line(back, withdrawn)}", highlight=False)


@app.command()
def dispute(
    job_id: JobId,
    input_: Annotated[
        list[Path] | None,
        typer.Option("--input", help="the job's input files (default: the copies kept at submit)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="folder for the result")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the verdict, verify and settle")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 600,
    home: Home = None,
) -> None:
    """Dispute a single provider's result: two verifiers the marketplace draws run it again.

    You pay a bond of twice the price. The original result stands unless both verifiers
    agree on another; then its provider is slashed to you and its price refunded.
    """
    renter = _renter(home)
    contents = input_files(input_)[1] if input_ else None
    with console.status("disputing") as status:
        verifiers = disputes.dispute(
            renter, job_id, inputs=contents, progress=lambda s: status.update(s)
        )
    for v in verifiers:
        console.print(f"job [bold]{job_id}[/] verifier slot {v['slot']}: {v['provider']}")
    if wait:
        _finish(renter, job_id, out or Path(f"dcloud-job-{job_id}"), timeout)


@app.command("claim-no-show")
def claim_no_show(job_id: JobId, home: Home = None) -> None:
    """After the deadline with no result: slash the providers, refund you."""
    renter = _renter(home)
    start = renter.escrow.w3.eth.block_number
    with console.status("claiming the no-show"):
        renter.claim_no_show(job_id)
    _paid_back(renter, job_id, start, f"job {job_id} settled as a no-show")


@app.command("list")
def list_jobs(home: Home = None) -> None:
    """Your jobs on this chain."""
    renter = _renter(home)
    table = Table("job", "image", "status", "price/replica", "providers")
    for rec in renter.jobs():
        chain = renter.escrow.job(rec["job_id"])
        table.add_row(
            str(rec["job_id"]),
            rec["spec"]["image"],
            chain.status.name.lower(),
            fmt_tokens(rec["price_wei"]),
            ", ".join(a["provider"][:10] for a in rec["assignments"]),
        )
    console.print(table)


@app.command()
def balance(home: Home = None) -> None:
    """Your tokens, ETH and escrow credit (the same as `dcloud token balance`)."""
    renter = _renter(home)
    for line in balance_lines(Tokens(renter.escrow, renter.wallet).balances()):
        console.print(line, highlight=False)
