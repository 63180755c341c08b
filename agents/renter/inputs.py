"""A job's input files: the spec's entries (name, size, sha256) and the bytes sent."""

from __future__ import annotations

import hashlib
from pathlib import Path

from agents.errors import UserError
from protocol.schemas import InputFile


def input_files(paths: list[Path]) -> tuple[list[InputFile], dict[str, bytes]]:
    """Spec entries and contents for local files (sent under /input by their names)."""
    specs, data = [], {}
    for p in paths:
        try:
            content = p.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read input {p} ({exc.strerror})") from None
        specs.append(
            InputFile(path=p.name, size=len(content), sha256=hashlib.sha256(content).hexdigest())
        )
        data[p.name] = content
    return specs, data
