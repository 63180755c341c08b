"""What the ``dcloud node`` and ``dcloud file`` commands share.

Sizes are written like ``10MB``, ``1.5GB`` (powers of 1000) or ``4MiB`` (powers of 1024).
The keystore password comes from ``$DCLOUD_PASSWORD``, or a prompt on a terminal.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from agents import keys
from agents.errors import UserError

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str) -> int:
    """'10MB' -> 10_000_000, '4MiB' -> 4_194_304, '512' -> 512."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if m is None or unit not in _UNITS:
        raise UserError(f"{text!r} is not a size; write it like 10MB, 1.5GB or 4MiB")
    return int(float(m.group(1)) * _UNITS[unit])


def fmt_size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def ask_password(*, confirm: bool) -> str:
    password = os.environ.get(keys.PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise UserError(f"set {keys.PASSWORD_ENV}: there is no terminal to ask for the password")
    return str(typer.prompt("keystore password", hide_input=True, confirmation_prompt=confirm))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


Home = Annotated[Path | None, typer.Option("--home", help="the folder of keys and records")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="log what happens")]
