"""``dcloud file serve``: the renter gateway (:mod:`~agents.storage.files.gateway`) on loopback.

It serves one renter's files (the keystore in ``--home``, its password from
``$DCLOUD_PASSWORD``) to the dashboard's storage page. Pages from the marketplace's own
origin (which serves the dashboard) are allowed; ``--allow-origin`` adds others.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console

from agents.errors import UserError
from agents.storage.files.gateway import DEFAULT_PORT, create_gateway
from agents.storage.files.renter import open_client
from agents.storage.market import DEFAULT_MARKETPLACE

console = Console()
logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """'http://127.0.0.1:8700/dashboard' -> 'http://127.0.0.1:8700'."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"{url!r} is not a web origin; write it like http://127.0.0.1:8700")
    return f"{parts.scheme}://{parts.netloc}".lower()


def loopback_aliases(origin: str) -> set[str]:
    """The origin, and the same with 127.0.0.1 and localhost swapped."""
    parts = urlsplit(origin)
    port = f":{parts.port}" if parts.port else ""
    if parts.hostname in ("127.0.0.1", "localhost"):
        return {f"{parts.scheme}://{name}{port}" for name in ("127.0.0.1", "localhost")}
    return {origin}


def allowed_origins(*, marketplace: str | None, extra: list[str], host: str, port: int) -> set[str]:
    """The dashboard's origin (the marketplace's), the gateway's own, and `extra`."""
    origins = loopback_aliases(f"http://{host}:{port}")
    if marketplace:
        origins |= loopback_aliases(origin_of(marketplace))
    for url in extra:
        origins |= loopback_aliases(origin_of(url))
    return origins


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is a gateway running there "
                "already? Pick another with --port"
            ) from None


def serve(
    home: Annotated[Path | None, typer.Option("--home", help="the renter's folder")] = None,
    marketplace: Annotated[
        str, typer.Option(envvar="DCLOUD_MARKETPLACE_URL", help="marketplace URL")
    ] = DEFAULT_MARKETPLACE,
    host: Annotated[
        str | None,
        typer.Option(help="address to listen on (default 127.0.0.1: this machine only)"),
    ] = None,
    port: Annotated[
        int, typer.Option(envvar="DCLOUD_GATEWAY_PORT", help="port to listen on")
    ] = DEFAULT_PORT,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(help="another dashboard origin allowed to use the gateway (repeatable)"),
    ] = None,
    k: Annotated[int, typer.Option("--k", help="shards needed to read a segment")] = 8,
    n: Annotated[int, typer.Option("--n", help="shards stored per segment")] = 12,
    health_every: Annotated[
        float, typer.Option(help="seconds between background health checks")
    ] = 60.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every request")] = False,
) -> None:
    """Serve this renter's files to the dashboard's storage page (keys stay here)."""
    import uvicorn

    from agents.storage.files import codec

    bind = host or "127.0.0.1"  # only an explicit --host (no variable) binds beyond loopback
    codec.check_kn(k, n)
    if health_every <= 0:
        raise UserError("--health-every must be a positive number of seconds")
    origins = allowed_origins(
        marketplace=marketplace, extra=allow_origin or [], host=bind, port=port
    )
    check_port(bind, port)
    with open_client(home, marketplace, verbose) as client:
        app = create_gateway(
            client,
            origins=origins,
            loopback_only=is_loopback(bind),
            k=k,
            n=n,
            health_every_s=health_every,
        )
        if not is_loopback(bind):
            console.print(
                f"[bold yellow]warning:[/] listening on {bind}: anyone who reaches it can read, "
                "store and delete this renter's files",
                highlight=False,
            )
        console.print(
            f"renter gateway for {client.account.address} at http://{bind}:{port} (files of "
            f"{client.home}); the dashboard's storage page uses it. Allowed pages: "
            f"{', '.join(sorted(origins))}",
            highlight=False,
        )
        uvicorn.run(
            app,
            host=bind,
            port=port,
            log_level="info" if verbose else "warning",
            access_log=verbose,
        )
