"""The renter's image records: which images it pushed and which stored objects hold their
layers.

They live in the renter's folder, beside its other records::

    images/records/<name:tag, quoted>.json   one pushed image (:class:`ImageRecord`)
    images/objects/<object_id>.json          a layer's manifest (where its shards are)
    images/keyring/<object_id>.key           a layer's key, wrapped under the account

The layers are storage objects like a ``dcloud file put`` (the same manifest and keyring
code, :class:`~agents.storage.files.manifest.RenterStore`) but in their own folder, named
``image-layer/sha256:<diff_id hex>``: one object per distinct layer, shared by every image
that has it, kept while a record names it and removed with the last one. They stay out of
``dcloud file ls`` and ``file rm``, which would otherwise offer to delete a layer that
images still need.

A record carries an HMAC under a key derived from the account (as manifests do), so a
record edited outside dcloud is refused; writes are atomic (temporary file, fsync,
rename) and a push or rm holds the folder's lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agents.errors import UserError, VerificationError
from agents.storage.files.manifest import RenterStore, atomic_write
from protocol.images import MAX_IMAGE_BYTES, Digest, ImageRefError, pin, split_pinned

FOLDER = "images"
LAYER_PREFIX = "image-layer/"

ObjectId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


def layer_name(diff_id: str) -> str:
    """The storage object's name of a layer: ``image-layer/sha256:<hex>``."""
    return LAYER_PREFIX + diff_id


def normalize(ref: str) -> str:
    """``name:tag`` (``:latest`` when no tag is given), checked as a pinnable name.

    Raises:
        UserError: not a name a spec can carry (lower-case, ``[a-z0-9._/-]``, a tag of
            ``[A-Za-z0-9_.-]``).
    """
    name = ref.strip()
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    try:
        pin(name, "sha256:" + "0" * 64)
    except ImageRefError:
        raise UserError(
            f"{ref!r} is not an image name dcloud can carry: write NAME:TAG in lower case "
            "(letters, digits, . _ / -), e.g. myapp:1"
        ) from None
    return name


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LayerRecord(_Record):
    diff_id: Digest
    object_id: ObjectId
    size: int = Field(ge=0, le=MAX_IMAGE_BYTES)


class ImageRecord(_Record):
    """One pushed image: what a spec names and what a provider is granted."""

    version: Literal[1] = 1
    name: str = Field(description="name:tag, as pushed")
    digest: Digest = Field(description="sha256 of the config: the image id")
    config: str = Field(description="the config JSON, as the engine wrote it")
    layers: list[LayerRecord]
    pushed_at: float
    mac: str = ""

    @property
    def size(self) -> int:
        """The layers' bytes (what a provider downloads): a spec's ``image_bytes``."""
        return sum(layer.size for layer in self.layers)

    @property
    def ref(self) -> str:
        """The pinned reference a spec names: ``name:tag@sha256:<hex>``."""
        return pin(self.name, self.digest)


def _derive(account: LocalAccount, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(
        bytes(account.key)
    )


class ImageStore:
    """The image records and layer objects of one renter account in its folder `home`."""

    def __init__(self, home: Path, account: LocalAccount) -> None:
        self.home = home
        self.root = home / FOLDER
        self.records = self.root / "records"
        self.account = account
        self.layers = RenterStore(self.root, account)
        self._mac_key = _derive(account, "dcloud/images/record-mac/v1")

    # -------------------------------------------------------------- records

    def _path(self, name: str) -> Path:
        return self.records / f"{quote(name, safe='')}.json"

    def mac(self, record: ImageRecord) -> str:
        body = record.model_dump(mode="json", exclude={"mac"})
        text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._mac_key, text, hashlib.sha256).hexdigest()

    def save(self, record: ImageRecord) -> None:
        """Write the record (replacing the tag's previous one) atomically, with its MAC."""
        record.mac = self.mac(record)
        atomic_write(self._path(record.name), record.model_dump_json(indent=1).encode())

    def forget(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def _load(self, path: Path) -> ImageRecord:
        try:
            record = ImageRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise VerificationError(
                f"image record {path} is unreadable or malformed ({exc.__class__.__name__}); "
                "delete it and push the image again"
            ) from None
        if not hmac.compare_digest(record.mac, self.mac(record)):
            raise VerificationError(
                f"image record {path} was changed outside dcloud or made by another account; "
                "delete it and push the image again"
            )
        return record

    def all(self) -> list[ImageRecord]:
        """Every pushed image, by name.

        Raises:
            VerificationError: a record is damaged (the message says which).
        """
        paths = sorted(self.records.glob("*.json")) if self.records.is_dir() else []
        return sorted((self._load(p) for p in paths), key=lambda r: r.name)

    def get(self, name: str) -> ImageRecord | None:
        """The record of `name` (``name:tag``; ``:latest`` when no tag), or None."""
        path = self._path(normalize(name))
        return self._load(path) if path.exists() else None

    def find(self, ref: str) -> ImageRecord:
        """The record `ref` names: ``name:tag`` or a pinned ``name:tag@sha256:<hex>``.

        Raises:
            UserError: no such pushed image (or pushed with another digest since).
        """
        if "@" in ref:
            try:
                name, digest = split_pinned(ref)
            except ImageRefError as exc:
                raise UserError(str(exc)) from None
            record = self.get(name)
            if record is None or record.digest != digest:
                raise UserError(
                    f"{ref} is not an image you pushed (or its tag now names another digest); "
                    "`dcloud image ls` lists yours, `dcloud image push NAME:TAG` adds one"
                )
            return record
        record = self.get(ref)
        if record is None:
            raise UserError(
                f"no pushed image named {normalize(ref)}; push it with "
                f"`dcloud image push {normalize(ref)}` (`dcloud image ls` lists yours)"
            )
        return record

    def resolve(self, image: str) -> tuple[str, int | None]:
        """What a spec names for `image`, and its ``image_bytes``.

        An image this renter pushed becomes its pinned reference and its layers' size; a
        pinned reference must be one it pushed; any other name is an image providers
        offer and stays as it is (size None).

        Raises:
            UserError: a pinned reference that is not one of this renter's images.
        """
        if "@" in image:
            pinned = self.find(image)
            return pinned.ref, pinned.size
        record: ImageRecord | None
        try:
            record = self.get(image)
        except UserError:
            record = None  # not a name one can push: an offered image, as before
        if record is None:
            return image, None
        return record.ref, record.size

    # -------------------------------------------------------------- lock

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the images folder's lock: one push or rm at a time, across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
