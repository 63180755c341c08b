"""A renter's own image in matching: a preference for providers that hold it, not a filter.

A job or service names a renter's image *pinned* by digest (``myapp:1@sha256:<hex>``,
:mod:`protocol.images`). Any provider can pull it from the storage network, so every
provider that fits is a candidate; one that already holds it (its heartbeat lists
``sha256:<hex>`` after the images it offers) starts at once, and one that does not is
charged the pull in its score. An image providers *offer* (``dcloud/python:3.11``) cannot
be pulled, so it stays a filter.

How a pull becomes score. The matching score (:mod:`marketplace.matching.records`) is in
augmented km, ``sqrt(chord**2 + (w * level)**2)``, and everything else that makes a
provider worse is added to it in km too (a reputation of 0 adds 20 km). A pull is a
delay before the job starts and a load on the provider's network and disk, both
proportional to the time it takes, so it is charged the same way:

    seconds = image_bytes / (DCLOUD_IMAGE_PULL_MB_PER_S * 10**6)
    pull_km = seconds * DCLOUD_IMAGE_PULL_KM_PER_S

added to the score of every provider without the image (never to one that holds it).
Being additive, it compares with energy the same at every level: at equal distance a
pull of ``P`` km costs ``P / w`` levels (``w`` = 2000 km per level by default, one level
step being worth ``w`` of augmented km at any level). Against distance it is compressed
by the energy term like the reputation penalty: far from cheap power, a km of real
distance moves the score by only ``d / s`` km.

The default rate, 74 km per second of pull, is anchored at the ends of the score's own
scale: the largest image the protocol carries (``MAX_IMAGE_BYTES``, 8 GiB) takes 172 s at
the default 50 MB/s and so weighs 12 700 km, about the longest distance the score knows
(the Earth's diameter, 12 742 km) and just under the lexicographic weight (12 800 km per
level, :data:`~marketplace.matching.records.LEXICOGRAPHIC_ENERGY_WEIGHT_KM`, with which
any lower level beats any distance: it still does at equal distance). In between:

- 100 MB, 2 s, 148 km: a warm cache wins only among providers about as good otherwise;
- 1 GB, 20 s, 1 480 km: three quarters of a level; a warm cache wins unless another
  provider is a level cheaper or much nearer;
- 8 GiB: a warm cache anywhere beats a cold one next door at the same level.

A spec without ``image_bytes`` is assumed to be :data:`DEFAULT_IMAGE_BYTES` (1 GiB, about
``python:3.11``): an unknown size is treated as a large image, never as a free pull.

The pull rate is an estimate for the whole network, not a measurement per provider: 50
MB/s is the cold-pull target (half of a local ``docker load``); ``bench/images.py``
measures a cold pull of a 100 MB image (fetch from the storage nodes, checks, ``docker
load``) at a few tens of MB/s on a small shared machine. Set it to what providers see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from marketplace.matching.records import Provider
from marketplace.settings import Settings
from protocol.images import ImageRefError, is_pinned, split_pinned

DEFAULT_IMAGE_BYTES = 2**30
"""The size assumed for a renter's image whose spec gives no ``image_bytes``."""

MB = 10**6

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImagePull:
    """What a provider without a renter's image must fetch before it starts.

    Attributes:
        digest: ``sha256:<hex>``, as providers list the renter's images they hold.
        bytes: The image's size (the spec's, else :data:`DEFAULT_IMAGE_BYTES`).
        seconds: Estimated pull time at ``DCLOUD_IMAGE_PULL_MB_PER_S``.
        km: What the pull adds to such a provider's score.
        size_assumed: True when the spec gave no size.
    """

    digest: str
    bytes: int
    seconds: float
    km: float
    size_assumed: bool


def is_renter_image(entry: str) -> bool:
    """Whether an entry of a provider's images list is a renter's image it holds."""
    return _DIGEST.match(entry) is not None


def pinned_digest(image: str) -> str | None:
    """The digest of a well-formed pinned reference, else None (an offered image)."""
    if not is_pinned(image):
        return None
    try:
        return split_pinned(image)[1]
    except ImageRefError:
        return None


def pull_of(image: str, image_bytes: int | None, settings: Settings) -> ImagePull | None:
    """The pull a provider without ``image`` is charged, or None for an offered image."""
    digest = pinned_digest(image)
    if digest is None:
        return None
    size = DEFAULT_IMAGE_BYTES if image_bytes is None else image_bytes
    seconds = size / (settings.image_pull_mb_per_s * MB)
    return ImagePull(
        digest=digest,
        bytes=size,
        seconds=seconds,
        km=seconds * settings.image_pull_km_per_s,
        size_assumed=image_bytes is None,
    )


def pullers(
    pull: ImagePull | None, providers: Mapping[str, Provider], chosen: Iterable[str]
) -> list[str]:
    """Which of the ``chosen`` providers must pull the image (in the given order)."""
    if pull is None:
        return []
    return [p for p in chosen if p not in providers or pull.digest not in providers[p].images]
