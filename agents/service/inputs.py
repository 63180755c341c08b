"""A service's input files: single files by their names, folders recursively with paths
relative to the folder (``--input site/`` puts ``site/css/a.css`` at
``/input/css/a.css``)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from agents.errors import UserError
from protocol.schemas import MAX_INPUT_BYTES, InputFile

MAX_FILES = 256  # ServiceSpec.inputs' limit
_PATH = re.compile(r"^[\w.-]+(/[\w.-]+)*$")  # protocol.schemas.InputPath


def collect_inputs(paths: list[Path]) -> tuple[list[InputFile], dict[str, bytes]]:
    """Spec entries and contents for files and folders, in path order.

    Raises:
        UserError: a path that cannot be read, a name the spec cannot carry (only
            letters, digits, ``_``, ``.`` and ``-`` in each part), two files at one path,
            or more files or bytes than a service may take.
    """
    data: dict[str, bytes] = {}
    for given in paths:
        for rel, file in _files(given):
            if not _PATH.match(rel) or any(p in (".", "..") for p in rel.split("/")):
                raise UserError(
                    f"cannot send {file}: input paths may use only letters, digits, '_', '.' "
                    "and '-' in each part; rename it"
                )
            if rel in data:
                raise UserError(f"two inputs would both be /input/{rel}; give only one of them")
            try:
                data[rel] = file.read_bytes()
            except OSError as exc:
                raise UserError(f"cannot read input {file} ({exc.strerror})") from None
    if len(data) > MAX_FILES:
        raise UserError(f"{len(data)} input files; a service takes at most {MAX_FILES}")
    total = sum(len(d) for d in data.values())
    if total > MAX_INPUT_BYTES:
        raise UserError(
            f"the inputs total {total} bytes; a service takes at most {MAX_INPUT_BYTES} "
            f"({MAX_INPUT_BYTES // 2**20} MiB)"
        )
    specs = [
        InputFile(path=rel, size=len(d), sha256=hashlib.sha256(d).hexdigest())
        for rel, d in sorted(data.items())
    ]
    return specs, dict(sorted(data.items()))


def _files(given: Path) -> list[tuple[str, Path]]:
    """(path under /input, file) for a file or every file below a folder."""
    if given.is_dir():
        found = sorted(p for p in given.rglob("*") if p.is_file())
        if not found:
            raise UserError(f"the folder {given} holds no files")
        return [(p.relative_to(given).as_posix(), p) for p in found]
    if given.is_file():
        return [(given.name, given)]
    raise UserError(f"no file or folder {given}")
