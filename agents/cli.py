"""dcloud: rent compute, services and storage; lend machines and disk; run a local devnet.

Every error an agent raises on purpose (:class:`~agents.errors.AgentError`) is printed as
one plain line that says what to do, with exit status 1; only a bug shows a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from agents.errors import AgentError
from protocol.errors import ProtocolError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])


def _mount() -> None:
    from agents.devnet.cli import app as devnet
    from agents.image.cli import app as image
    from agents.ingress.cli import app as gateway
    from agents.provider.cli import app as provider
    from agents.renter.cli import app as job
    from agents.s3.cli import app as s3
    from agents.service.cli import app as service
    from agents.storage.files.cli import file_app
    from agents.storage.node.cli import node_app
    from agents.token.cli import app as token
    from agents.watch.cli import app as watch

    app.add_typer(provider, name="provider", help="Lend a machine: run renters' jobs in Docker.")
    app.add_typer(job, name="job", help="Rent compute: submit jobs and fetch their results.")
    app.add_typer(
        service, name="service", help="Host a service at a stable name, paid by the second."
    )
    app.add_typer(image, name="image", help="Your own container images: push, list, remove.")
    app.add_typer(node_app, name="node", help="Lend disk space: store erasure-coded shards.")
    app.add_typer(file_app, name="file", help="Store files: encrypted, erasure-coded, spread.")
    app.add_typer(devnet, name="devnet", help="A whole local network with a demo.")
    app.add_typer(gateway, name="gateway", help="Route service names to where they run now.")
    app.add_typer(watch, name="watch", help="Watch services and co-sign their down time.")
    app.add_typer(token, name="token", help="Your tokens: balance, buy, faucet, send, withdraw.")
    app.add_typer(s3, name="s3", help="An S3 endpoint over your storage, with access keys.")


def main() -> None:
    _mount()
    try:
        app(standalone_mode=False)
    except (AgentError, ProtocolError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
