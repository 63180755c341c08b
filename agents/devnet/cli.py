"""`dcloud devnet`: the whole local network (chain, contracts, marketplace, providers,
storage nodes) with a demo, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agents import config as files
from agents.devnet.up import Devnet, Options, down, running
from agents.errors import UserError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
Home = Annotated[
    Path | None, typer.Option("--home", help="devnet folder (default ~/.dcloud/devnet)")
]


@app.command()
def up(
    chain: Annotated[str, typer.Option(help="anvil or ganache")] = "anvil",
    demo: Annotated[bool, typer.Option(help="run the demo jobs and file")] = True,
    stay: Annotated[
        bool, typer.Option(help="stay up until Ctrl-C (--no-stay: stop after the demo)")
    ] = True,
    home: Home = None,
) -> None:
    """Start the network (or report the one already running), run the demo, stay up."""
    if chain not in ("anvil", "ganache"):
        raise UserError(f"--chain {chain!r}: use anvil or ganache")
    Devnet(
        Options(home=files.home("devnet", home), chain=chain, demo=demo, stay=stay), console
    ).up()


@app.command("down")
def down_(home: Home = None) -> None:
    """Stop every process the running devnet started (state is kept)."""
    if not down(files.home("devnet", home), console):
        console.print("no devnet is running")


@app.command()
def status(home: Home = None) -> None:
    """Is a devnet running, and where."""
    state = running(files.home("devnet", home))
    if state is None:
        console.print("no devnet is running")
        return
    console.print(f"devnet up: marketplace {state['market_url']} · chain {state['rpc_url']}")
    for name, pid in state["pids"].items():
        console.print(f"  {name}: pid {pid}")
