"""Whether a provider takes a spec's image: one it offers, or a renter's pinned image it
holds or can pull from the push's source."""

from __future__ import annotations

from collections.abc import Callable

from agents.errors import RefusedError
from agents.provider.images.pull import ImagePuller
from protocol.images import ImageSource, is_pinned


def check_image(
    image: str,
    source: ImageSource | None,
    *,
    offered: list[str],
    has_image: Callable[[str], bool],
    puller: ImagePuller | None,
) -> None:
    """Refuse an image this provider cannot run (cheap: nothing is fetched here).

    Raises:
        RefusedError: an offered-image name it does not offer or hold; a pinned image
            when it takes no renters' images, or one it neither holds nor was sent.
    """
    if not is_pinned(image):
        if not has_image(image) or image not in offered:
            names = ", ".join(offered) or "none"
            raise RefusedError(f"this provider does not offer image {image!r}; it offers: {names}")
        return
    if puller is None:
        raise RefusedError(
            f"this provider does not run renters' own images ({image}); pick one it offers"
        )
    if source is None and not puller.cached(image):
        raise RefusedError(
            f"this provider does not hold the image {image}; push the image with the job or "
            "service (its source names where its layers are stored and grants this provider "
            "to read them)"
        )


def ensure_image(puller: ImagePuller | None, image: str, source: ImageSource | None) -> None:
    """Pull a pinned image when the engine does not hold it (no-op for offered images).

    Raises:
        RefusedError, VerificationError, AgentError: as :meth:`ImagePuller.ensure`.
    """
    if puller is not None and is_pinned(image):
        puller.ensure(image, source)
