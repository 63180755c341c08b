"""Access keys for the S3 front door: created, listed and revoked by the renter.

A key is an access key id and a secret (as AWS's are), a name the renter chose, and the
buckets it may use (``*``: all of them). Keys live in ``<renter home>/s3/keys.json``,
readable by the owner only; the server re-reads the file when it changes, so a key made
or revoked with ``dcloud s3 keys`` counts at once. The secret is shown only when the key
is made.
"""

from __future__ import annotations

import fnmatch
import json
import os
import secrets
import string
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents.errors import NotFoundError, UserError
from agents.storage.files.manifest import atomic_write

ALL_BUCKETS = "*"
_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret: str
    name: str
    buckets: list[str] = field(default_factory=lambda: [ALL_BUCKETS])
    created_at: float = 0.0

    def allows(self, bucket: str) -> bool:
        """Whether this key may use `bucket` (its patterns: names, ``*``, or ``photos-*``)."""
        return any(fnmatch.fnmatchcase(bucket, pattern) for pattern in self.buckets)


class KeyRing:
    """The renter's S3 access keys in one JSON file (thread-safe; reloaded when changed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, AccessKey] = {}

    def _load(self) -> dict[str, AccessKey]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return self._keys
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                body = json.loads(self.path.read_text())
                keys = [AccessKey(**item) for item in body["keys"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UserError(
                    f"the S3 key file {self.path} is unreadable ({exc}); fix or remove it and "
                    "make keys again with `dcloud s3 keys create`"
                ) from None
            self._stamp, self._keys = stamp, {k.access_key_id: k for k in keys}
        return self._keys

    def _save(self, keys: dict[str, AccessKey]) -> None:
        body = {"version": 1, "keys": [asdict(k) for k in keys.values()]}
        atomic_write(self.path, json.dumps(body, indent=1).encode(), mode=0o600)
        self._stamp = None

    def get(self, access_key_id: str) -> AccessKey | None:
        with self._lock:
            return self._load().get(access_key_id)

    def all(self) -> list[AccessKey]:
        with self._lock:
            return sorted(self._load().values(), key=lambda k: (k.created_at, k.name))

    def create(self, name: str, *, buckets: list[str] | None = None) -> AccessKey:
        """A new key called `name` for `buckets` (default: all)."""
        if not name or len(name) > 64 or not name.isprintable():
            raise UserError("name the key with 1 to 64 printable characters, like `backup`")
        patterns = buckets or [ALL_BUCKETS]
        for pattern in patterns:
            if not pattern or "/" in pattern:
                raise UserError(f"{pattern!r} is not a bucket name or pattern (like photos-*)")
        with self._lock:
            keys = dict(self._load())
            if any(k.name == name for k in keys.values()):
                raise UserError(f"a key named {name!r} exists; remove it first or pick another")
            key = AccessKey(
                access_key_id="DC" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18)),
                secret=secrets.token_urlsafe(30),
                name=name,
                buckets=patterns,
                created_at=time.time(),
            )
            keys[key.access_key_id] = key
            self._save(keys)
        return key

    def remove(self, name_or_id: str) -> AccessKey:
        """Revoke the key with this name or access key id."""
        with self._lock:
            keys = dict(self._load())
            found = [k for k in keys.values() if name_or_id in (k.name, k.access_key_id)]
            if not found:
                raise NotFoundError(f"no S3 key {name_or_id!r}; `dcloud s3 keys ls` lists them")
            del keys[found[0].access_key_id]
            self._save(keys)
        return found[0]
