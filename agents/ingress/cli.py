"""``dcloud gateway run``: the ingress gateway for services, in the foreground.

It starts nginx (its own folder in ``--home``), follows the marketplace's routes every
``--interval`` seconds and applies each change with a graceful reload; Ctrl-C (or
SIGTERM) stops nginx by PID.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agents import config
from agents.errors import UserError
from agents.ingress.controller import Controller
from agents.ingress.nginx import Nginx
from protocol.logs import configure_logging

DEFAULT_PORT = 8780
DEFAULT_MARKETPLACE = "http://127.0.0.1:8700"

app = typer.Typer(no_args_is_help=True, help="Route service names to where they run now.")
console = Console()
logger = logging.getLogger(__name__)


@app.command()
def run(
    marketplace: Annotated[
        str, typer.Option(envvar="DCLOUD_MARKETPLACE_URL", help="marketplace URL")
    ] = DEFAULT_MARKETPLACE,
    port: Annotated[int, typer.Option(help="port to listen on")] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(help="address to listen on (default: this machine only)")
    ] = "127.0.0.1",
    domain: Annotated[str, typer.Option(help="services answer at NAME.apps.DOMAIN")] = "localhost",
    interval: Annotated[float, typer.Option(help="seconds between route polls")] = 1.0,
    home: Annotated[
        Path | None, typer.Option("--home", help="the gateway's folder (nginx config, logs)")
    ] = None,
) -> None:
    """Serve NAME.apps.DOMAIN and /apps/NAME/ from the marketplace's routes until Ctrl-C."""
    configure_logging()
    if interval <= 0:
        raise UserError("--interval must be a positive number of seconds")
    folder = config.home("gateway", home)
    gateway = Nginx(folder, port=port, host=host, domain=domain)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    gateway.start()
    controller = Controller(gateway, marketplace, interval_s=interval)
    try:
        controller.poll_once()  # the first routes before we say we are up
        controller.start()
        console.print(
            f"gateway {gateway.url} (nginx pid {gateway.pid}): NAME.{'apps.' + domain}:{port} "
            f"or {gateway.url}/apps/NAME/ · {len(controller.routes)} routes from "
            f"{marketplace} · logs in {folder} · Ctrl-C stops it",
            highlight=False,
            soft_wrap=True,
        )
        while not stop.wait(0.5):
            if not gateway.alive():
                log = gateway.tail()
                raise UserError(f"nginx (pid {gateway.pid}) exited; its log ends:\n{log}")
    finally:
        controller.stop()
        gateway.stop()
        console.print("gateway stopped")
