"""``dcloud watch run``: a LeaseEscrow watcher of one's own, in the foreground."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import httpx
import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console

from agents import keys
from agents.errors import UserError
from agents.watch.runner import Watcher
from protocol.logs import configure_logging

KEY_ENV = "DCLOUD_WATCHER_KEY"

app = typer.Typer(no_args_is_help=True, help="Watch services and co-sign their down time.")
console = Console()


def _account(keystore: Path | None) -> LocalAccount:
    if keystore is not None:
        return keys.load(keystore)
    secret = os.environ.get(KEY_ENV)
    if not secret:
        raise UserError(f"give the watcher's key: --keystore FILE (password in "
                        f"{keys.PASSWORD_ENV}) or {KEY_ENV}=0x...")  # fmt: skip
    try:
        account: LocalAccount = Account.from_key(secret)
    except ValueError:
        raise UserError(f"{KEY_ENV} is not a private key (64 hex digits)") from None
    return account


@app.command()
def run(
    marketplace: Annotated[
        str, typer.Option(envvar="DCLOUD_MARKETPLACE_URL", help="marketplace URL")
    ] = "http://127.0.0.1:8700",
    gateway: Annotated[
        str, typer.Option(help="the ingress gateway to look through (services' public names)")
    ] = "http://127.0.0.1:8780",
    domain: Annotated[str, typer.Option(help="services answer at NAME.apps.DOMAIN")] = "localhost",
    interval: Annotated[float, typer.Option(help="seconds between rounds")] = 2.0,
    keystore: Annotated[
        Path | None, typer.Option(help="the watcher's keystore (else $DCLOUD_WATCHER_KEY)")
    ] = None,
) -> None:
    """Co-sign the down time of services the marketplace sees down and this watcher sees
    down too, until Ctrl-C. The key must hold LeaseEscrow's WATCHER_ROLE."""
    configure_logging()
    if interval <= 0:
        raise UserError("--interval must be a positive number of seconds")
    watcher = Watcher(_account(keystore), marketplace_url=marketplace, gateway_url=gateway,
                      domain=domain)  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"watching as {watcher.account.address}; Ctrl-C stops", highlight=False)
    try:
        while not stop.is_set():
            try:
                watcher.run_once()
            except httpx.HTTPError as exc:
                console.print(f"[yellow]marketplace unreachable ({exc}); retrying[/]")
            stop.wait(interval)
    finally:
        watcher.close()
