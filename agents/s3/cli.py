"""``dcloud s3``: the S3 front door (``serve``) and its access keys (``keys``).

``serve`` opens the renter's storage (its keystore in ``--home``, the password from
``$DCLOUD_PASSWORD``) behind an S3 endpoint for the aws CLI, boto3 and any S3 client;
``keys create|ls|rm`` make, list and revoke the access keys those clients sign with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agents.s3.app import DEFAULT_PORT, build, keyring
from agents.storage.files.codec import check_kn
from agents.storage.files.gateway.cli import check_port, is_loopback
from agents.storage.files.renter import open_client, renter_home
from agents.storage.market import DEFAULT_MARKETPLACE

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
keys_app = typer.Typer(no_args_is_help=True, help="Access keys for S3 clients.")
app.add_typer(keys_app, name="keys")
console = Console()

Home = Annotated[Path | None, typer.Option("--home", help="the renter's folder")]


@app.command()
def serve(
    home: Home = None,
    marketplace: Annotated[
        str, typer.Option(envvar="DCLOUD_MARKETPLACE_URL", help="marketplace URL")
    ] = DEFAULT_MARKETPLACE,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="DCLOUD_S3_PORT", help="port to listen on")
    ] = DEFAULT_PORT,
    domain: Annotated[
        str,
        typer.Option(help="virtual-host-style names: <bucket>.<domain> (empty: path style only)"),
    ] = "localhost",
    k: Annotated[int, typer.Option("--k", help="shards needed to read a segment")] = 8,
    n: Annotated[int, typer.Option("--n", help="shards stored per segment")] = 12,
    tls_cert: Annotated[
        Path | None, typer.Option(help="serve HTTPS with this certificate (PEM)")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="the certificate's private key (PEM)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log more")] = False,
) -> None:
    """Serve this renter's storage as an S3 endpoint (keys and manifests stay here)."""
    import uvicorn

    check_kn(k, n)
    check_port(host, port)
    where = renter_home(home)
    with open_client(home, marketplace, verbose) as client:
        account = client.account
    logging.getLogger("agents.s3").setLevel(logging.INFO)
    gateway = build(
        renter_home=where, account=account, marketplace=marketplace, k=k, n=n, domain=domain
    )
    scheme = "https" if tls_cert else "http"
    if not is_loopback(host):
        console.print(
            f"[bold yellow]warning:[/] listening on {host}: keep the access keys secret",
            highlight=False,
        )
    console.print(
        f"S3 endpoint for {account.address} at {scheme}://{host}:{port} (k={k}, n={n}); "
        f"make a key with `dcloud s3 keys create NAME`",
        highlight=False,
    )
    try:
        uvicorn.run(
            gateway.app,
            host=host,
            port=port,
            log_level="info" if verbose else "warning",
            access_log=False,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
        )
    finally:
        gateway.close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="what the key is for, like `backup`")],
    bucket: Annotated[
        list[str] | None,
        typer.Option(
            "--bucket",
            "-b",
            help="a bucket (or pattern like photos-*) it may use; repeatable; default all",
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Make an access key; its secret is shown once."""
    key = keyring(renter_home(home)).create(name, buckets=bucket)
    console.print(f"access key id:     {key.access_key_id}", highlight=False)
    console.print(f"secret access key: {key.secret}", highlight=False)
    console.print(f"buckets:           {', '.join(key.buckets)}", highlight=False)


@keys_app.command("ls")
def keys_ls(home: Home = None) -> None:
    """List the access keys (without their secrets)."""
    keys = keyring(renter_home(home)).all()
    if not keys:
        console.print("no S3 keys; make one with `dcloud s3 keys create NAME`")
        return
    table = Table("name", "access key id", "buckets")
    for key in keys:
        table.add_row(key.name, key.access_key_id, ", ".join(key.buckets))
    console.print(table)


@keys_app.command("rm")
def keys_rm(
    key: Annotated[str, typer.Argument(help="the key's name or access key id")], home: Home = None
) -> None:
    """Revoke an access key: requests signed with it are refused from now on."""
    removed = keyring(renter_home(home)).remove(key)
    console.print(f"revoked {removed.name} ({removed.access_key_id})", highlight=False)
