"""Check a pushed image's source against the digest the spec pins, before fetching a byte.

The spec names ``name@sha256:<digest>`` and the funded spec hash covers it. The push's
:class:`protocol.images.ImageSource` must name that very reference; its config must hash
to the digest (so the config is the one the renter pinned); the config's
``rootfs.diff_ids`` must be the source's layers, in order (so every layer is pinned too:
a layer is accepted later only when its bytes hash to its diff_id); and the sizes must
add up and fit this provider's limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from agents.errors import RefusedError, VerificationError
from agents.storage.files.codec import TAG_BYTES
from protocol.images import (
    MAX_CONFIG_BYTES,
    MAX_LAYERS,
    ImageRefError,
    ImageSource,
    is_pinned,
    split_pinned,
)
from protocol.storage import SegmentRef


@dataclass(frozen=True)
class CheckedImage:
    """A source whose config and layer list are the pinned ones."""

    ref: str
    digest: str
    config: bytes
    diff_ids: list[str]
    size: int
    source: ImageSource


def pinned_digest(ref: str) -> str:
    """The digest of a pinned reference.

    Raises:
        RefusedError: not ``name[:tag]@sha256:<64 hex>``.
    """
    try:
        return split_pinned(ref)[1]
    except ImageRefError as exc:
        raise RefusedError(str(exc)) from None


def engine_image(ref: str) -> str:
    """What the engine runs for a spec's image: a pinned image by its id (its digest),
    an offered one by its name."""
    return pinned_digest(ref) if is_pinned(ref) else ref


def check_source(source: ImageSource, ref: str, *, max_bytes: int) -> CheckedImage:
    """The source's config and layers, checked against the pinned `ref`.

    Raises:
        VerificationError: the source names another image, its config does not hash to
            the pinned digest, or its layers are not the config's.
        RefusedError: the image is larger than `max_bytes` or has too many layers.
    """
    digest = pinned_digest(ref)
    if source.ref != ref:
        raise VerificationError(
            f"the push's image source is for {source.ref}, not the spec's {ref}; "
            "push the image the spec names"
        )
    try:
        config = base64.b64decode(source.config, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the image source's config is not base64") from None
    if len(config) > MAX_CONFIG_BYTES:
        raise VerificationError(f"the image's config has over {MAX_CONFIG_BYTES} bytes")
    got = "sha256:" + hashlib.sha256(config).hexdigest()
    if got != digest:
        raise VerificationError(
            f"the image's config hashes to {got}, not the pinned {digest}: this is not the "
            "image the spec names; nothing was fetched"
        )
    diff_ids = _diff_ids(config)
    if len(diff_ids) > MAX_LAYERS:
        raise RefusedError(f"the image has {len(diff_ids)} layers; at most {MAX_LAYERS}")
    listed = [layer.diff_id for layer in source.layers]
    if listed != diff_ids:
        raise VerificationError(
            "the image source's layers are not the ones its config lists (in order); "
            "push the image again"
        )
    for layer in source.layers:
        _check_layout(layer.diff_id, layer.size, layer.segment_bytes, layer.segments)
    if source.size > max_bytes:
        raise RefusedError(
            f"the image has {source.size / 2**20:.1f} MB of layers; this provider pulls "
            f"images of at most {max_bytes / 2**20:.0f} MB: make the image smaller or pick "
            "another provider"
        )
    return CheckedImage(
        ref=ref, digest=digest, config=config, diff_ids=diff_ids, size=source.size, source=source
    )


def _diff_ids(config: bytes) -> list[str]:
    try:
        body = json.loads(config)
        rootfs = body["rootfs"]
        ids = rootfs["diff_ids"]
        if rootfs.get("type") != "layers" or not isinstance(ids, list):
            raise TypeError("rootfs is not of type layers")
        if not all(isinstance(i, str) for i in ids):
            raise TypeError("a diff_id is not a string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"the image's config is not an image config ({exc})") from None
    return list(ids)


def _check_layout(diff_id: str, size: int, segment_bytes: int, segments: list[SegmentRef]) -> None:
    """The layer's segments must be 0..n-1 in order, add up to its size, and each hold at
    most a segment of plaintext, so the fetch can never be asked for more bytes."""
    total = 0
    for i, seg in enumerate(segments):
        ok_index = seg.index == i and seg.plain_size <= segment_bytes
        if not ok_index or seg.cipher_size != seg.plain_size + TAG_BYTES:
            raise VerificationError(f"layer {diff_id}'s segment {i} does not fit its layout")
        for shard in seg.shards:
            if urlsplit(shard.endpoint).scheme not in ("http", "https"):
                raise VerificationError(f"layer {diff_id} names a node at {shard.endpoint!r}")
        total += seg.plain_size
    if total != size or not segments:
        raise VerificationError(
            f"layer {diff_id}'s segments hold {total} bytes, not its size {size}"
        )
