"""Exporting an image from the renter's own Docker engine, checked layer by layer.

The engine's export (``docker save``, streamed through the Docker SDK) is a tar holding
``manifest.json`` (which names the config and the layer tarballs in order), the config
``<hex>.json`` and one uncompressed tarball per layer (``<v1 id>/layer.tar`` in the
legacy format of Docker 20.10; ``blobs/sha256/<hex>`` in the OCI layout newer engines
write; a layer repeated in an image may be a link to the first copy). The export is
read once, as it streams: every file is hashed on the way, small ones kept in memory and
layers spooled to a temporary folder. Then the image is checked as a provider will check
it: the config's sha256 is the image id, and each layer's sha256 is the config's
``rootfs.diff_ids[i]``, in order. Nothing of the tar is extracted: its names are only
keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from agents.errors import UserError, VerificationError
from protocol.images import MAX_CONFIG_BYTES, MAX_IMAGE_BYTES, MAX_LAYERS

IN_MEMORY_BYTES = 256 * 2**10
CHUNK = 2**20

Progress = Callable[[int], None]


@dataclass
class Blob:
    """One file of the export: its sha256 and size, its bytes in memory or on disk."""

    sha256: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    def read(self) -> bytes:
        with self.open() as fh:
            return fh.read()


@dataclass
class Layer:
    diff_id: str
    blob: Blob

    @property
    def size(self) -> int:
        return self.blob.size


@dataclass
class Exported:
    """A checked export: the config as written and the layers in order."""

    digest: str
    config: bytes
    layers: list[Layer]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)


class _Stream(io.RawIOBase):
    """A readable file over the engine's chunks, counting what was read."""

    def __init__(self, chunks: Iterable[bytes], progress: Progress | None) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, out: Any) -> int:
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = chunk
            if self._progress is not None:
                self._progress(len(chunk))
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def read_export(
    chunks: Iterable[bytes], spool: Path, progress: Progress | None, max_bytes: int
) -> tuple[dict[str, Blob], dict[str, str]]:
    """Every regular file of the tar (hashed; kept or spooled) and every link's target."""
    blobs: dict[str, Blob] = {}
    links: dict[str, str] = {}
    total = 0
    raw = io.BufferedReader(_Stream(chunks, progress), buffer_size=CHUNK)
    with tarfile.open(fileobj=raw, mode="r|") as tar:
        for n, member in enumerate(tar):
            name = posixpath.normpath(member.name)
            if member.issym():
                links[name] = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), member.linkname)
                )
            elif member.islnk():
                links[name] = posixpath.normpath(member.linkname)
            elif member.isfile():
                total += member.size
                if total > max_bytes + MAX_CONFIG_BYTES:
                    raise UserError(_too_big(total, max_bytes))
                src = tar.extractfile(member)
                assert src is not None
                blobs[name] = _blob(src, member.size, spool / f"{n}.blob")
    return blobs, links


def _blob(src: IO[bytes], size: int, path: Path) -> Blob:
    h = hashlib.sha256()
    if size <= IN_MEMORY_BYTES:
        data = src.read()
        h.update(data)
        return Blob("sha256:" + h.hexdigest(), len(data), data=data)
    written = 0
    with open(path, "wb") as out:
        while chunk := src.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
            written += len(chunk)
    return Blob("sha256:" + h.hexdigest(), written, path=path)


def _resolve(name: str, blobs: dict[str, Blob], links: dict[str, str]) -> Blob:
    seen = 0
    name = posixpath.normpath(name)
    while name in links and seen < 8:
        name, seen = links[name], seen + 1
    blob = blobs.get(name)
    if blob is None:
        raise VerificationError(f"the engine's export names {name!r} but does not hold it")
    return blob


def _too_big(size: int, max_bytes: int) -> str:
    return (
        f"the image has more than {max_bytes / 1e6:.0f} MB of layers ({size / 1e6:.0f} MB read "
        "so far), more than dcloud carries; make it smaller (a slimmer base, fewer files)"
    )


def check(blobs: dict[str, Blob], links: dict[str, str], digest: str, max_bytes: int) -> Exported:
    """The image the export holds, checked against `digest` and the config's diff_ids.

    Raises:
        VerificationError: the export does not hold what it names, or a digest differs.
        UserError: too many layers, or too many bytes.
    """
    manifest = json.loads(_resolve("manifest.json", blobs, links).read())
    if not isinstance(manifest, list) or len(manifest) != 1:
        raise VerificationError("the engine's export should describe exactly one image")
    entry = manifest[0]
    config_blob = _resolve(entry["Config"], blobs, links)
    if config_blob.size > MAX_CONFIG_BYTES:
        raise UserError(
            f"the image's config has {config_blob.size} bytes; at most {MAX_CONFIG_BYTES}"
        )
    if config_blob.sha256 != digest:
        raise VerificationError(
            f"the engine exported a config hashing to {config_blob.sha256}, not the image id "
            f"{digest}; was the image rebuilt meanwhile? push again"
        )
    config = config_blob.read()
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    paths = entry["Layers"]
    if len(paths) != len(diff_ids):
        raise VerificationError(
            f"the export lists {len(paths)} layers, the config {len(diff_ids)}; push again"
        )
    if len(paths) > MAX_LAYERS:
        raise UserError(f"the image has {len(paths)} layers; dcloud carries at most {MAX_LAYERS}")
    layers = []
    for i, (path, diff_id) in enumerate(zip(paths, diff_ids, strict=True)):
        blob = _resolve(path, blobs, links)
        if blob.sha256 != diff_id:
            raise VerificationError(
                f"layer {i} of the export hashes to {blob.sha256}, not the config's {diff_id}; "
                "the engine's export is damaged (push again)"
            )
        layers.append(Layer(diff_id, blob))
    image = Exported(digest, config, layers)
    if image.size > max_bytes:
        raise UserError(_too_big(image.size, max_bytes))
    return image


@contextmanager
def export(
    image: Any,
    *,
    spool_in: Path,
    progress: Progress | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
) -> Iterator[Exported]:
    """Export `image` (a Docker SDK image) and check it; its spooled layers live as long
    as the block."""
    spool_in.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(prefix=".export-", dir=spool_in))
    try:
        blobs, links = read_export(image.save(chunk_size=CHUNK), spool, progress, max_bytes)
        yield check(blobs, links, str(image.id), max_bytes)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
