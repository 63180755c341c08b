"""Where an agent keeps its files, and reading/writing its JSON config safely."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from agents.errors import UserError

M = TypeVar("M", bound=BaseModel)


def home(kind: str, given: Path | None) -> Path:
    """An agent's folder: `given`, else ``$DCLOUD_HOME/<kind>``, else ``~/.dcloud/<kind>``."""
    if given is not None:
        return given.expanduser()
    base = os.environ.get("DCLOUD_HOME")
    return (Path(base) if base else Path.home() / ".dcloud") / kind


def save(path: Path, model: BaseModel) -> None:
    """Write `model` as JSON atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(model.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)


def load(path: Path, cls: type[M], *, init_hint: str) -> M:
    """Read a config written by :func:`save`; a missing or bad file says how to fix it."""
    try:
        return cls.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"no config at {path}; create it with `{init_hint}`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path} ({exc}); fix it or run `{init_hint}` again") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: {where}: {first['msg']}; fix the file") from None
