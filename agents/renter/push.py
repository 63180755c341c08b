"""Handing a funded job to its providers: the signed push of its spec and inputs, and,
when the spec names one of the renter's own images, what each provider needs to pull it.

A spec that names an image the renter pushed (``dcloud image push``) carries it pinned
to its digest (:func:`pin_image`). Before anything is paid, each chosen provider's public
key is read from its ``GET /v1/health`` and the image's source built for it
(:func:`image_sources`: layer keys wrapped to that key, grants for that provider only);
the push then carries it, and waits the longer while the provider pulls the image before
it accepts.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import httpx
from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, RefusedError
from agents.image.records import ImageStore
from agents.image.source import image_source, provider_key
from agents.market import MarketClient, Stamp, describe
from protocol import provider_api as api
from protocol.images import ImageSource, is_pinned
from protocol.schemas import JobSpec
from protocol.services import ServiceSpec
from protocol.signing import sign_request

logger = logging.getLogger(__name__)

PUSH_ATTEMPTS = 4
PUSH_TIMEOUT_S = 30.0
PULL_TIMEOUT_S = 600.0
"""A push with an image waits this long: the provider pulls the image before it accepts."""

S = TypeVar("S", JobSpec, ServiceSpec)


class Renter(Protocol):
    """What pushing needs of :class:`agents.renter.client.Renter`."""

    account: LocalAccount
    stamp: Stamp
    http: httpx.Client
    images: ImageStore
    market: MarketClient


def pin_image(images: ImageStore, spec: S) -> S:
    """`spec` naming its image pinned, with its size, when it is one the renter pushed
    (an offered image stays as it is).

    Raises:
        UserError: a pinned reference that is not one of the renter's images.
    """
    image, size = images.resolve(spec.image)
    if image == spec.image and size == spec.image_bytes:
        return spec
    return type(spec).model_validate(
        {**spec.model_dump(mode="json"), "image": image, "image_bytes": size}
    )


def image_sources(
    renter: Renter, image: str, providers: list[tuple[str, str]]
) -> dict[str, ImageSource]:
    """The pinned `image`'s source for each ``(provider, endpoint)``; none for an offered
    image.

    Raises:
        RefusedError: a provider is unreachable, publishes no key (too old to pull
            images) or a key that is not its address's.
        UserError: `image` is not one of the renter's images.
    """
    if not is_pinned(image):
        return {}
    record = renter.images.find(image)
    endpoints = node_endpoints(renter.market)

    def one(item: tuple[str, str]) -> ImageSource:
        provider, endpoint = item
        key = provider_key(renter.http, provider, endpoint)
        return image_source(renter.images, record, provider, key, endpoints=endpoints)

    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        sources = list(pool.map(one, providers))
    return {p: s for (p, _), s in zip(providers, sources, strict=True)}


def node_endpoints(market: MarketClient) -> dict[str, str]:
    """Every storage node's endpoint now (empty when the marketplace does not say)."""
    try:
        page = market.get("/v1/storage/nodes", limit=1000)
        return {str(n["address"]): str(n["endpoint"]) for n in page["items"]}
    except (AgentError, KeyError, TypeError) as exc:
        logger.warning("using the layers' recorded node endpoints: %s", exc)
        return {}


def push_job(
    renter: Renter,
    job_id: int,
    spec: JobSpec,
    inputs: dict[str, bytes],
    assignments: list[dict[str, Any]],
    *,
    sources: dict[str, ImageSource] | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Push the job to every assigned provider at once, each with its image source."""
    encoded = {p: base64.b64encode(d).decode() for p, d in inputs.items()}
    sources = sources or {}

    def one(assignment: dict[str, Any]) -> None:
        source = sources.get(assignment["provider"])
        body = api.JobPush(chain_job_id=job_id, spec=spec, inputs=encoded, image=source).model_dump(
            mode="json"
        )
        if source is not None and progress is not None:
            progress(f"provider {assignment['provider'][:10]}… is fetching the image")
        send(
            renter,
            assignment["endpoint"].rstrip("/") + "/v1/jobs",
            purpose=api.PUSH,
            body=body,
            who=f"provider {assignment['provider']}",
            what="the job",
            timeout_s=PULL_TIMEOUT_S if source is not None else PUSH_TIMEOUT_S,
        )

    with ThreadPoolExecutor(max_workers=max(1, len(assignments))) as pool:
        list(pool.map(one, assignments))


def send(
    renter: Renter,
    url: str,
    *,
    purpose: str,
    body: dict[str, Any],
    who: str,
    what: str,
    timeout_s: float,
) -> None:
    """POST `body` signed (anew each try: a signature counts once); a 503 (the provider's
    chain hiccuped) is retried after its Retry-After, and a kept-alive connection the
    provider closed as it was reused (no answer at all) at once: a push taken twice is
    taken once.

    Raises:
        RefusedError: unreachable, or refused (its reason).
    """
    for attempt in range(PUSH_ATTEMPTS):
        signed = sign_request(
            renter.account, purpose=purpose, payload=body, timestamp_ms=renter.stamp.next()
        )
        try:
            r = renter.http.post(url, json=signed, timeout=timeout_s)
        except httpx.RemoteProtocolError:
            if attempt < PUSH_ATTEMPTS - 1:
                continue
            raise RefusedError(f"{who} at {url} closed the connection without answering") from None
        except httpx.HTTPError as exc:
            raise RefusedError(
                f"{who} at {url} is unreachable ({exc.__class__.__name__})"
            ) from None
        if r.status_code != 503 or attempt == PUSH_ATTEMPTS - 1:
            break
        wait = r.headers.get("retry-after", "1")
        time.sleep(min(int(wait), 10) if wait.isdigit() else 1)
    if r.status_code >= 400:
        raise RefusedError(f"{who} refused {what}: {describe(r)}")
