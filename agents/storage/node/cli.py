"""``dcloud node`` commands: lend disk space.

Sizes are written like ``10MB``, ``1.5GB`` (powers of 1000) or ``4MiB`` (powers of 1024).
The keystore password comes from ``$DCLOUD_PASSWORD``, or a prompt on a terminal.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from agents.storage.cli_common import (
    Home,
    Verbose,
    ask_password,
    fmt_size,
    parse_size,
    setup_logging,
)
from agents.storage.market import DEFAULT_MARKETPLACE

node_app = typer.Typer(no_args_is_help=True, help="Lend disk space: store renters' shards.")

console = Console()
logger = logging.getLogger(__name__)


def _node_home(home: Path | None) -> Path:
    return (home or Path.home() / ".dcloud" / "node").expanduser()


@node_app.command("init")
def node_init(
    quota: Annotated[str, typer.Option(help="disk space to lend, e.g. 10MB or 5GB")],
    lat: Annotated[float, typer.Option(help="latitude of this machine, degrees north")],
    lon: Annotated[float, typer.Option(help="longitude of this machine, degrees east")],
    home: Home = None,
    endpoint: Annotated[
        str | None, typer.Option(help="URL renters reach this node at (default from host/port)")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="port to listen on (default: a free one)")
    ] = None,
    region: Annotated[str | None, typer.Option(help="price region (default: nearest)")] = None,
    marketplace: Annotated[
        str | None, typer.Option(envvar="DCLOUD_MARKETPLACE_URL", help="marketplace URL")
    ] = DEFAULT_MARKETPLACE,
    heartbeat: Annotated[float, typer.Option(help="seconds between heartbeats")] = 10.0,
    rpc_url: Annotated[
        str | None, typer.Option(envvar="DCLOUD_RPC_URL", help="chain for audits")
    ] = None,
) -> None:
    """Create a storage node: a key and its settings, in --home."""
    from agents.storage.node.run import KEYSTORE, init_node

    where = _node_home(home)
    password = "" if (where / KEYSTORE).exists() else ask_password(confirm=True)
    config = init_node(
        where,
        password=password,
        quota_bytes=parse_size(quota),
        lat=lat,
        lon=lon,
        region=region,
        host=host,
        port=port,
        endpoint=endpoint,
        marketplace=marketplace,
        heartbeat_s=heartbeat,
        rpc_url=rpc_url,
    )
    console.print(
        f"storage node {config.address} in {where}: {fmt_size(config.quota_bytes)} at "
        f"{config.endpoint}; start it with `dcloud node run --home {where}`",
        highlight=False,
    )


@node_app.command("run")
def node_run(home: Home = None, verbose: Verbose = True) -> None:
    """Serve shards and heartbeat to the marketplace until interrupted."""
    from agents.storage.node.run import run_node

    setup_logging(verbose)
    run_node(_node_home(home), password=ask_password(confirm=False))


@node_app.command("status")
def node_status(home: Home = None) -> None:
    """Quota, used and free space, shards, and whether the node is running."""
    from agents.storage.node.run import load_config, open_store, runtime

    where = _node_home(home)
    config = load_config(where)
    running = runtime(where)
    store = open_store(where, config)
    table = Table(show_header=False, box=None)
    table.add_row("address", config.address)
    table.add_row("endpoint", config.endpoint)
    state = "stopped"
    if running is not None:
        state = f"running (pid {running['pid']})"
        try:
            httpx.get(f"{config.endpoint}/v1/health", timeout=3).raise_for_status()
        except httpx.HTTPError:
            state += ", not answering"
    table.add_row("state", state)
    table.add_row("quota", fmt_size(config.quota_bytes))
    table.add_row("used", fmt_size(store.used_bytes))
    table.add_row("free", fmt_size(store.free_bytes))
    table.add_row("shards", str(store.shard_count))
    table.add_row("marketplace", config.marketplace or "-")
    console.print(table)
