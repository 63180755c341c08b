"""Uploads under way (shown in the file list while they run) and the names they store under."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import PurePosixPath

from pydantic import TypeAdapter, ValidationError

from agents.errors import UserError
from agents.storage.files.gateway.errors import NameTakenError
from agents.storage.files.gateway.models import UploadPublic
from agents.storage.files.manifest import ObjectName

logger = logging.getLogger(__name__)


class Uploads:
    """Names being stored now, with plaintext bytes stored so far (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now: dict[str, UploadPublic] = {}

    def begin(self, name: str, size: int, *, taken: Callable[[str], bool]) -> None:
        with self._lock:
            if name in self._now or taken(name):
                raise NameTakenError(
                    f"a file named {name!r} is stored already or being uploaded; delete it "
                    "first or upload under another name"
                )
            self._now[name] = UploadPublic(name=name, size=size, stored=0)

    def advance(self, name: str, stored: int) -> None:
        with self._lock:
            self._now[name].stored += stored

    def end(self, name: str) -> None:
        with self._lock:
            self._now.pop(name, None)

    def all(self) -> list[UploadPublic]:
        with self._lock:
            return [u.model_copy() for u in self._now.values()]


_NAME = TypeAdapter(ObjectName)


def upload_name(given: str | None, filename: str | None) -> str:
    """The name to store an upload under: `given`, else the upload's own file name."""
    name = (given or PurePosixPath((filename or "").replace("\\", "/")).name).strip()
    if not name:
        raise UserError("the upload has no file name; send the file with one or add a `name`")
    try:
        return _NAME.validate_python(name)
    except ValidationError:
        raise UserError(
            "a file name must be 1 to 255 characters without control characters"
        ) from None
