"""`dcloud image`: your own container images, carried by the storage network.

Build an image in your own Docker engine (`docker build -t myapp:1 .`), push it, then name
it in a job or a service (`dcloud job submit --image myapp:1`, `dcloud service deploy
--image myapp:1`): the spec pins it to its digest and the provider that runs it is granted
its layers and nothing else. It acts with the renter's key and config (`dcloud job init`).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn
from rich.table import Table

from agents import config as files
from agents import keys
from agents.image.images import Images, K, N, PushProgress
from agents.renter import cli as renter_cli
from agents.storage.cli_common import fmt_size, setup_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

Home = renter_cli.Home
Ref = Annotated[str, typer.Argument(help="the image, NAME:TAG (as `docker images` shows it)")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="log what happens")]


def open_images(home: Path | None, *, k: int = K, n: int = N, verbose: bool = False) -> Images:
    """The renter's :class:`Images`: its folder, key and marketplace (`dcloud job init`)."""
    setup_logging(verbose)
    folder = files.home("renter", home)
    cfg = renter_cli._config(home)
    account = keys.load(folder / "keystore.json", renter_cli._password())
    return Images(home=folder, account=account, marketplace=cfg.marketplace_url, k=k, n=n)


LABELS = {"exporting": "exporting from Docker", "storing": "storing new layers"}


class _Bars(PushProgress):
    """A bar per stage on a terminal; a line per stage otherwise."""

    def __init__(self) -> None:
        self.rich: Progress | None = None
        self.task: TaskID | None = None
        if console.is_terminal:
            self.rich = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> _Bars:
        if self.rich is not None:
            self.rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rich is not None:
            self.rich.stop()

    def stage(self, label: str, total: int) -> None:
        text = LABELS.get(label, label)
        if self.rich is None:
            console.print(f"{text} ({fmt_size(total)})", highlight=False)
            return
        if self.task is not None:
            self.rich.update(self.task, completed=self.rich.tasks[self.task].total)
        self.task = self.rich.add_task(text, total=total or None)

    def advance(self, n: int) -> None:
        if self.rich is not None and self.task is not None:
            self.rich.update(self.task, advance=n)


def _layers(count: int) -> str:
    return f"{count} layer{'' if count == 1 else 's'}"


@app.command()
def push(
    ref: Ref,
    k: Annotated[int, typer.Option("--k", help="shards needed to read a layer's segment")] = K,
    n: Annotated[int, typer.Option("--n", help="shards stored per segment")] = N,
    home: Home = None,
    verbose: Verbose = False,
) -> None:
    """Store an image from your Docker engine on the network.

    Its layers are encrypted and erasure-coded; a layer you stored already (for another
    image) is shared, not stored again.
    """
    with open_images(home, k=k, n=n, verbose=verbose) as images, _Bars() as bars:
        pushed = images.push(ref, progress=bars)
    r = pushed.record
    new = sum(x.size for x in pushed.stored)
    console.print(
        f"[bold]{r.name}[/] {r.digest[:19]}… stored ({_layers(len(pushed.stored))}, "
        f"{fmt_size(new)}), shared ({_layers(len(pushed.shared))} already stored) · "
        f"{fmt_size(r.size)} in {pushed.seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    if pushed.replaced:
        console.print(
            f"{r.name} named {pushed.replaced[:19]}… before; "
            f"{_layers(len(pushed.removed))} no image uses any more deleted",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"use it: dcloud job submit --image {r.name} …", highlight=False)


@app.command("ls")
def ls(home: Home = None) -> None:
    """The images you pushed."""
    with open_images(home) as images:
        records = images.ls()
    if not records:
        console.print("no pushed images; push one with `dcloud image push NAME:TAG`")
        return
    table = Table("name", "digest", "size", "layers", "pushed")  # digest: as docker's image id
    for r in records:
        when = dt.datetime.fromtimestamp(r.pushed_at).strftime("%Y-%m-%d %H:%M")
        table.add_row(r.name, r.digest[7:19], fmt_size(r.size), str(len(r.layers)), when)
    console.print(table)


@app.command()
def rm(ref: Ref, home: Home = None, verbose: Verbose = False) -> None:
    """Forget an image and delete its layers that no other image of yours uses."""
    start = time.perf_counter()
    with open_images(home, verbose=verbose) as images:
        removed = images.rm(ref)
    console.print(
        f"removed {removed.record.name} ({removed.record.digest[:19]}…): "
        f"{_layers(len(removed.deleted))} deleted from the network, {removed.kept} kept for "
        f"your other images ({time.perf_counter() - start:.1f} s)",
        highlight=False,
        soft_wrap=True,
    )
