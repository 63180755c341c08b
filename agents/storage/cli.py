"""Placeholder until the storage commands are built."""

import typer

node_app = typer.Typer(no_args_is_help=True)
file_app = typer.Typer(no_args_is_help=True)
