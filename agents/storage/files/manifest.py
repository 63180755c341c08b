"""The renter's records: manifests (where every shard is) and the keyring (object keys).

Both live in the renter's folder (``~/.dcloud/renter`` by default)::

    objects/<object_id>.json   the manifest: object -> segments -> shards -> nodes, hashes
    keyring/<object_id>.key    the object's AES key, wrapped (AES-GCM) under the account

Nothing secret is in a manifest. The object keys are wrapped under a key derived (HKDF)
from the renter's account key, so they are as safe as the keystore's password; and each
manifest carries an HMAC under another derived key, so a manifest edited outside dcloud
is refused rather than trusted. Writes are atomic (temporary file, fsync, rename): a
crash leaves the old manifest or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agents.errors import UserError, VerificationError
from protocol.schemas import Address
from protocol.storage import SegmentRef, Sha256Hex, ShardId

logger = logging.getLogger(__name__)

ObjectId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
ObjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetiredShard(_Record):
    """A shard replaced by repair whose node could not be told to delete it yet."""

    id: ShardId
    node: Address
    endpoint: str


class DealRef(_Record):
    """A StorageEscrow deal paying a node to keep one shard (see ``agents.storage.files.deals``)."""

    deal_id: int = Field(ge=1)
    chain_id: int
    shard: ShardId
    node: Address


class Manifest(_Record):
    version: Literal[1] = 1
    object_id: ObjectId
    name: ObjectName
    size: int = Field(ge=0)
    sha256: Sha256Hex = Field(description="of the plaintext")
    created_at: float
    owner: Address
    k: int
    n: int
    segment_bytes: int
    backend: str
    cipher: str
    segments: list[SegmentRef]
    retired: list[RetiredShard] = Field(default_factory=list)
    deals: list[DealRef] = Field(default_factory=list)
    mac: str = ""


def _derive(account: LocalAccount, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(
        bytes(account.key)
    )


class RenterStore:
    """Manifests and keyring of one renter account in one folder."""

    def __init__(self, home: Path, account: LocalAccount) -> None:
        self.home = home
        self.account = account
        self.objects = home / "objects"
        self.keyring = home / "keyring"
        self._mac_key = _derive(account, "dcloud/storage/manifest-mac/v1")
        self._wrap_key = _derive(account, "dcloud/storage/keyring/v1")

    # -------------------------------------------------------------- manifests

    def mac(self, manifest: Manifest) -> str:
        body = manifest.model_dump(mode="json", exclude={"mac"})
        if not body["deals"]:  # manifests from before deals keep their MAC
            del body["deals"]
        text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._mac_key, text, hashlib.sha256).hexdigest()

    def save(self, manifest: Manifest) -> None:
        """Write the manifest atomically, with its MAC."""
        manifest.mac = self.mac(manifest)
        atomic_write(
            self.objects / f"{manifest.object_id}.json",
            manifest.model_dump_json(indent=1).encode(),
        )

    def load(self, path: Path) -> Manifest:
        """Read and check one manifest.

        Raises:
            VerificationError: unreadable, malformed, or its MAC does not match.
        """
        try:
            manifest = Manifest.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise VerificationError(
                f"manifest {path} is unreadable or malformed ({_first_error(exc)}); restore it "
                "from a backup: its shards stay on the nodes"
            ) from None
        if not hmac.compare_digest(manifest.mac, self.mac(manifest)):
            raise VerificationError(
                f"manifest {path} was changed outside dcloud or made by another account (its "
                "MAC does not match); restore it from a backup: its shards stay on the nodes"
            )
        return manifest

    def entries(self) -> list[tuple[Path, Manifest | VerificationError]]:
        """Every manifest in the folder, or the error that makes it unusable."""
        out: list[tuple[Path, Manifest | VerificationError]] = []
        for path in sorted(self.objects.glob("*.json")) if self.objects.is_dir() else []:
            try:
                out.append((path, self.load(path)))
            except VerificationError as exc:
                out.append((path, exc))
        return out

    def find(self, name: str) -> Manifest:
        """The manifest of the object called `name`.

        Raises:
            UserError: no such object.
            VerificationError: its manifest is tampered with.
        """
        damaged: list[VerificationError] = []
        for path, entry in self.entries():
            if isinstance(entry, Manifest):
                if entry.name == name:
                    return entry
            elif _claimed_name(path) in (name, None):
                damaged.append(entry)
        if damaged:  # this name's manifest, or one whose name cannot be read any more
            raise damaged[0]
        raise UserError(f"no stored object named {name!r}; `dcloud file ls` lists them")

    def exists(self, name: str) -> bool:
        """Whether an object of this name is recorded (intact or not)."""
        for path, entry in self.entries():
            claimed = entry.name if isinstance(entry, Manifest) else _claimed_name(path)
            if claimed == name:
                return True
        return False

    def delete(self, manifest: Manifest) -> None:
        """Forget the object: manifest first, then its key."""
        (self.objects / f"{manifest.object_id}.json").unlink(missing_ok=True)
        (self.keyring / f"{manifest.object_id}.key").unlink(missing_ok=True)

    @contextmanager
    def locked(self, object_id: str) -> Iterator[None]:
        """Hold the object's lock (one repair or removal at a time, across processes)."""
        self.objects.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.objects / f".{object_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -------------------------------------------------------------- keyring

    def store_key(self, object_id: str, key: bytes) -> None:
        nonce = os.urandom(12)
        wrapped = AESGCM(self._wrap_key).encrypt(nonce, key, object_id.encode())
        body = {"version": 1, "object_id": object_id, "nonce": nonce.hex(), "key": wrapped.hex()}
        atomic_write(self.keyring / f"{object_id}.key", json.dumps(body).encode(), mode=0o600)

    def load_key(self, object_id: str) -> bytes:
        """The object's key.

        Raises:
            UserError: the keyring has no key for the object.
            VerificationError: the key file does not open with this account for this object.
        """
        path = self.keyring / f"{object_id}.key"
        try:
            body = json.loads(path.read_text())
            nonce, wrapped = bytes.fromhex(body["nonce"]), bytes.fromhex(body["key"])
        except FileNotFoundError:
            raise UserError(
                f"no key for object {object_id} at {path}: without it the object cannot be "
                "decrypted; restore the keyring folder from a backup"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VerificationError(f"key file {path} is unreadable ({exc})") from None
        try:
            return AESGCM(self._wrap_key).decrypt(nonce, wrapped, object_id.encode())
        except InvalidTag:
            raise VerificationError(
                f"wrong key: {path} does not open with this account for object {object_id} "
                "(it belongs to another object or account, or was altered); restore the "
                "right key file"
            ) from None


def _claimed_name(path: Path) -> str | None:
    try:
        name = json.loads(path.read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        return f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
    return str(exc)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
