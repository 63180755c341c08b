"""``dcloud file`` commands: store files.

Sizes are written like ``10MB``, ``1.5GB`` (powers of 1000) or ``4MiB`` (powers of 1024).
The keystore password comes from ``$DCLOUD_PASSWORD``, or a prompt on a terminal.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from agents import keys
from agents.errors import AgentError, UserError
from agents.storage.cli_common import (
    Home,
    Verbose,
    ask_password,
    fmt_size,
    parse_size,
)
from agents.storage.files.gateway.cli import serve
from agents.storage.files.renter import open_client, renter_home
from agents.storage.market import DEFAULT_MARKETPLACE

if TYPE_CHECKING:
    from agents.storage.files.client import StorageClient

file_app = typer.Typer(no_args_is_help=True, help="Store files: encrypted, erasure-coded, spread.")

console = Console()
logger = logging.getLogger(__name__)


Marketplace = Annotated[str, typer.Option(envvar="DCLOUD_MARKETPLACE_URL", help="marketplace URL")]
Rpc = Annotated[
    str | None, typer.Option("--rpc", envvar="DCLOUD_RPC_URL", help="chain of the deals")
]
Deployments = Annotated[
    Path | None,
    typer.Option(envvar="DCLOUD_DEPLOYMENTS", help="the deployments file naming the contracts"),
]


class _Bar:
    """A rich progress bar on a terminal, a few plain lines otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.total, self.done, self.label = total, 0, label
        self._next_line = 0.25
        self._rich: Progress | None = None
        if console.is_terminal:
            self._rich = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=console,
                transient=True,
            )
            self._task = self._rich.add_task(label, total=total)

    def __enter__(self) -> _Bar:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def __call__(self, advance: int) -> None:
        self.done += advance
        if self._rich is not None:
            self._rich.update(self._task, advance=advance)
        elif self.total and self.done / self.total >= self._next_line:
            console.print(f"{self.label}: {self.done * 100 // self.total}%", highlight=False)
            self._next_line += 0.25


@file_app.command("init")
def file_init(home: Home = None) -> None:
    """Create the renter's key (kept if there is one) in --home."""
    where = renter_home(home)
    keystore = where / "key.json"
    if keystore.exists():
        address = keys.address_of(keystore)
        console.print(f"renter {address} already set up in {where}", highlight=False)
        return
    account = keys.create(keystore, ask_password(confirm=True))
    console.print(f"renter {account.address} created in {where}", highlight=False)


@file_app.command("put")
def file_put(
    path: Annotated[Path, typer.Argument(help="the file to store")],
    name: Annotated[str | None, typer.Option(help="name to store it under")] = None,
    k: Annotated[int, typer.Option("--k", help="shards needed to read a segment")] = 8,
    n: Annotated[int, typer.Option("--n", help="shards stored per segment")] = 12,
    segment_size: Annotated[str, typer.Option(help="plaintext bytes per segment")] = "4MiB",
    deal_epochs: Annotated[
        int | None,
        typer.Option(help="pay each shard's node on chain for this many epochs (StorageEscrow)"),
    ] = None,
    price_per_epoch: Annotated[
        float | None, typer.Option(help="tokens per shard per epoch [default: 0.01]")
    ] = None,
    epoch_length: Annotated[
        int | None, typer.Option(help="seconds per epoch [default: one day]")
    ] = None,
    rpc: Rpc = None,
    deployments: Deployments = None,
    home: Home = None,
    marketplace: Marketplace = DEFAULT_MARKETPLACE,
    verbose: Verbose = False,
) -> None:
    """Encrypt, erasure-code and spread a file over storage nodes (and pay them, with
    --deal-epochs)."""
    from agents.storage.files.deals import TOKEN, DealParams, connect_chain, put_with_deals

    if not path.is_file():
        raise UserError(f"no file at {path}")
    with (
        open_client(home, marketplace, verbose) as client,
        _Bar(f"put {path.name}", path.stat().st_size) as bar,
    ):
        segment_bytes = parse_size(segment_size)
        if deal_epochs is None:
            m = client.put(path, name=name, k=k, n=n, segment_bytes=segment_bytes, progress=bar)
        else:
            params = DealParams(deal_epochs)
            if price_per_epoch is not None:
                params = replace(params, price_per_epoch=round(price_per_epoch * TOKEN))
            if epoch_length is not None:
                params = replace(params, epoch_length=epoch_length)
            chain = connect_chain(
                client.account,
                rpc_url=rpc,
                deployments=deployments,
                marketplace=marketplace,
                cache_dir=client.home,
            )
            m = put_with_deals(
                client,
                path,
                chain=chain,
                deals=params,
                name=name,
                k=k,
                n=n,
                segment_bytes=segment_bytes,
                progress=bar,
            )
    nodes = {s.node for seg in m.segments for s in seg.shards}
    console.print(
        f"stored {m.name!r}: {fmt_size(m.size)} in {len(m.segments)} segments, k={m.k} of "
        f"n={m.n} shards each, on {len(nodes)} nodes",
        highlight=False,
    )
    if m.deals:
        console.print(
            f"opened {len(m.deals)} storage deals (ids {m.deals[0].deal_id}.."
            f"{m.deals[-1].deal_id}) for {deal_epochs} epochs",
            highlight=False,
        )


@file_app.command("get")
def file_get(
    name: Annotated[str, typer.Argument(help="the stored object's name")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
    home: Home = None,
    marketplace: Marketplace = DEFAULT_MARKETPLACE,
    verbose: Verbose = False,
) -> None:
    """Fetch a stored file: the first k intact shards per segment from the fastest nodes."""
    dest = output or Path(Path(name).name)
    with open_client(home, marketplace, verbose) as client:
        size = client.store.find(name).size
        with _Bar(f"get {name}", size) as bar:
            result = client.get(name, dest, overwrite=overwrite, progress=bar)
    speed = size / result.seconds / 1e6 if result.seconds else 0.0
    console.print(f"wrote {dest} ({fmt_size(size)}, {speed:.0f} MB/s)", highlight=False)
    for label, nodes in (("unreachable", result.failed_nodes), ("corrupt", result.corrupt_nodes)):
        if nodes:
            console.print(f"{label} nodes (reported): {', '.join(nodes)}", highlight=False)


@file_app.command("ls")
def file_ls(home: Home = None, marketplace: Marketplace = DEFAULT_MARKETPLACE) -> None:
    """The objects this renter stored."""
    with open_client(home, marketplace) as client:
        objects = client.ls()
    if not objects:
        console.print("no stored objects; store one with `dcloud file put FILE`")
        return
    table = Table("name", "size", "k/n", "segments", "stored", "problem")
    for o in objects:
        when = (
            dt.datetime.fromtimestamp(o.created_at).strftime("%Y-%m-%d %H:%M")
            if o.created_at
            else "-"
        )
        table.add_row(
            o.name, fmt_size(o.size), f"{o.k}/{o.n}", str(o.segments), when, o.problem or ""
        )
    console.print(table)


@file_app.command("rm")
def file_rm(
    name: Annotated[str, typer.Argument(help="the stored object's name")],
    force: Annotated[bool, typer.Option(help="forget it even if some nodes are down")] = False,
    home: Home = None,
    marketplace: Marketplace = DEFAULT_MARKETPLACE,
    verbose: Verbose = False,
) -> None:
    """Delete a stored file's shards from their nodes and forget it."""
    with open_client(home, marketplace, verbose) as client:
        r = client.rm(name, force=force)
    console.print(
        f"removed {name!r}: {r.deleted} shards deleted, {r.missing} already gone"
        + (f", {r.failed} left on unreachable nodes" if r.failed else ""),
        highlight=False,
    )


@file_app.command("health")
def file_health(
    name: Annotated[str | None, typer.Argument(help="one object (default: all)")] = None,
    deep: Annotated[bool, typer.Option(help="download and hash every shard")] = False,
    home: Home = None,
    marketplace: Marketplace = DEFAULT_MARKETPLACE,
    verbose: Verbose = False,
) -> None:
    """How many healthy shards each segment has."""
    from agents.storage.files.repair import health

    with open_client(home, marketplace, verbose) as client:
        reports = health(client, name, deep=deep)
    for h in reports:
        state = "healthy" if h.min_healthy == h.n else "degraded" if h.readable else "UNREADABLE"
        console.print(
            f"{h.name}: {state}, at least {h.min_healthy} of {h.n} shards healthy in each of "
            f"{len(h.segments)} segments (k={h.k})",
            highlight=False,
        )
        for seg in h.segments:
            if seg.problems:
                issues = ", ".join(f"shard {i} {why}" for i, why in sorted(seg.problems.items()))
                console.print(f"  segment {seg.index}: {len(seg.healthy)}/{h.n}: {issues}")


@file_app.command("repair")
def file_repair(
    name: Annotated[str | None, typer.Argument(help="one object (default: all)")] = None,
    threshold: Annotated[
        int | None, typer.Option(help="repair segments with fewer healthy shards (default n)")
    ] = None,
    deep: Annotated[bool, typer.Option(help="download and hash every shard")] = False,
    every: Annotated[
        float | None, typer.Option(help="keep repairing, every this many seconds")
    ] = None,
    home: Home = None,
    marketplace: Marketplace = DEFAULT_MARKETPLACE,
    verbose: Verbose = False,
) -> None:
    """Rebuild lost shards onto other nodes (once, or as a long-running repairer)."""
    with open_client(home, marketplace, verbose) as client:
        while True:
            try:
                failed = _repair_once(client, name, threshold=threshold, deep=deep)
            except AgentError as exc:
                if every is None:
                    raise
                console.print(f"[red]repair round failed:[/] {exc}", highlight=False)
            if every is None:
                break
            time.sleep(every)
    if failed:
        raise typer.Exit(1)


def _repair_once(
    client: StorageClient, name: str | None, *, threshold: int | None, deep: bool
) -> bool:
    from agents.storage.files.repair import repair_all, repair_object

    if name:
        results = [repair_object(client, name, threshold=threshold, deep=deep)]
    else:
        results = repair_all(client, threshold=threshold, deep=deep)
    failed = False
    for r in results:
        console.print(
            f"{r.name}: {r.shards_rebuilt} shards rebuilt in {r.segments_repaired} of "
            f"{r.segments_checked} segments; now at least {r.health_after} healthy per segment",
            highlight=False,
        )
        for failure in r.failures:
            failed = True
            console.print(f"  [red]not repaired:[/] {failure}", highlight=False)
    return failed


@file_app.command("audit")
def file_audit(
    every: Annotated[
        float | None, typer.Option(help="keep auditing, every this many seconds")
    ] = None,
    per_pass: Annotated[int, typer.Option(help="at most this many challenges per pass")] = 16,
    rpc: Rpc = None,
    deployments: Deployments = None,
    home: Home = None,
    marketplace: Marketplace = DEFAULT_MARKETPLACE,
    verbose: Verbose = False,
) -> None:
    """Challenge this renter's storage deals, slash missed answers, repair slashed shards."""
    from agents.storage.files.auditor import audit_pass, make_auditor
    from agents.storage.files.deals import connect_chain

    failed = False
    with open_client(home, marketplace, verbose) as client:
        chain = connect_chain(
            client.account,
            rpc_url=rpc,
            deployments=deployments,
            marketplace=marketplace,
            cache_dir=client.home,
        )
        auditor = make_auditor(chain, per_pass=per_pass)
        while True:
            try:
                out = audit_pass(client, chain, auditor)
            except AgentError as exc:
                if every is None:
                    raise
                console.print(f"[red]audit pass failed:[/] {exc}", highlight=False)
            else:
                console.print(
                    f"audit: {len(out.challenged)} deals challenged, {len(out.slashed)} slashed"
                    + "".join(f"; {n}: {c} shards moved" for n, c in sorted(out.repaired.items()))
                    + (f"; new deals {out.reopened}" if out.reopened else ""),
                    highlight=False,
                )
                for failure in out.failures:
                    failed = True
                    console.print(f"  [red]not repaired:[/] {failure}", highlight=False)
            if every is None:
                break
            time.sleep(every)
    if failed:
        raise typer.Exit(1)


file_app.command("serve")(serve)  # the gateway's command, in its own module
