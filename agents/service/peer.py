"""Talking to the provider that runs a service: the signed push of its spec and inputs,
its view of the service, and its logs (a whole read, or a stream)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx

from agents.errors import NotFoundError, RefusedError
from agents.market import describe
from agents.renter.client import Renter
from agents.renter.push import PULL_TIMEOUT_S, send
from protocol import provider_api as api
from protocol.images import ImageSource
from protocol.keywrap import WrappedKey
from protocol.services import ServiceSpec
from protocol.signing import sign_request

PUSH_TIMEOUT_S = 120.0  # the provider accepts on chain before it answers


def push(
    renter: Renter,
    record: dict[str, Any],
    spec: ServiceSpec,
    inputs: dict[str, bytes],
    *,
    image: ImageSource | None = None,
    snapshot_key: WrappedKey | None = None,
) -> None:
    """POST the signed :class:`~protocol.provider_api.ServicePush` (with the source of the
    renter's own image, when the spec names one); a 503 (the provider's chain hiccuped) is
    retried after its Retry-After. With an image the provider pulls it before it accepts,
    so the push waits up to :data:`agents.renter.push.PULL_TIMEOUT_S`.

    Raises:
        RefusedError: the provider is unreachable or refused (its reason).
    """
    body = api.ServicePush(
        lease_id=record["lease_id"],
        spec=spec,
        inputs={p: base64.b64encode(d).decode() for p, d in inputs.items()},
        image=image,
        snapshot_key=snapshot_key,
    ).model_dump(mode="json")
    send(
        renter,
        record["endpoint"].rstrip("/") + "/v1/services",
        purpose=api.SERVICE_PUSH,
        body=body,
        who=f"provider {record['provider']}",
        what=spec.name,
        timeout_s=PULL_TIMEOUT_S if image is not None else PUSH_TIMEOUT_S,
    )


def view(renter: Renter, record: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's ``ProviderService``; None while it does not know the lease.

    Raises:
        RefusedError: unreachable, or it refused the read.
    """
    try:
        r = renter.provider_get(record["endpoint"], f"/v1/services/{record['lease_id']}")
    except NotFoundError:
        return None
    return dict(r.json())


def logs(renter: Renter, record: dict[str, Any], *, follow: bool) -> Iterator[str]:
    """The service's log text; `follow` streams it as it is written."""
    path = f"/v1/services/{record['lease_id']}/logs"
    if not follow:
        yield renter.provider_get(record["endpoint"], path).text
        return
    ts = renter.stamp.next()
    signed = sign_request(
        renter.account,
        purpose=api.FETCH,
        payload={"method": "GET", "path": path},  # the path signed, not the query
        timestamp_ms=ts,
    )
    headers = {
        api.SIGNER_HEADER: renter.address,
        api.TIMESTAMP_HEADER: str(ts),
        api.SIGNATURE_HEADER: signed["signature"],
    }
    url = record["endpoint"].rstrip("/") + path
    timeout = httpx.Timeout(10.0, read=None)
    try:
        with httpx.stream(
            "GET", url, params={"follow": "true"}, headers=headers, timeout=timeout
        ) as r:
            if r.status_code >= 400:
                r.read()
                raise RefusedError(f"provider at {record['endpoint']} refused: {describe(r)}")
            yield from r.iter_text()
    except httpx.HTTPError as exc:
        raise RefusedError(
            f"provider at {record['endpoint']} is unreachable ({exc.__class__.__name__})"
        ) from None
