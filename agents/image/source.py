"""What one provider is given to pull one of the renter's images, and nothing more.

For a pushed image and a provider (its address, as the marketplace named it, and the
public key its agent publishes at ``GET /v1/health``), :func:`image_source` builds the
:class:`~protocol.images.ImageSource` a job or service push carries: for each layer the
object's layout from its manifest and its key, wrapped to that provider's key for that
object (``protocol.keywrap``); and one :class:`~protocol.images.ReadGrant` per storage
node holding any of the image's shards, naming exactly those shards and that provider,
signed by the renter and valid for an hour. The renter's other objects are not named
anywhere, and a key wrapped for one provider does not open for another.
"""

from __future__ import annotations

import base64
import re
import time
from collections import defaultdict

import httpx

from agents.errors import RefusedError, UserError
from agents.image.records import ImageRecord, ImageStore
from protocol import keywrap
from protocol.images import ImageSource, LayerSource, ReadGrant, grant_context, sign_grant
from protocol.storage import SegmentRef

GRANT_TTL_S = 3600
HEALTH_TIMEOUT_S = 10.0
_PUBLIC_KEY = re.compile(r"^0x04[0-9a-f]{128}$")


def image_source(
    images: ImageStore,
    record: ImageRecord,
    provider_address: str,
    public_key: str,
    *,
    ttl_s: int = GRANT_TTL_S,
    endpoints: dict[str, str] | None = None,
) -> ImageSource:
    """Everything `provider_address` needs to fetch, check and load `record`'s image.

    `endpoints` (node address -> its endpoint now, from the marketplace) replaces the
    endpoints the layers' manifests recorded at upload, for nodes that moved since.

    Raises:
        RefusedError: `public_key` does not hash to `provider_address`.
        UserError: a layer's manifest or key is missing from the renter's folder.
    """
    try:
        owner_of_key = keywrap.address_of(public_key)
    except keywrap.KeyWrapError:
        owner_of_key = ""
    if owner_of_key.lower() != provider_address.lower():
        raise RefusedError(
            f"the provider's key does not match its address {provider_address} (it hashes to "
            f"{owner_of_key or 'nothing'}); its image was not shared with it"
        )
    layers: list[LayerSource] = []
    on_node: dict[str, set[str]] = defaultdict(set)
    manifests = {m.object_id: m for _, m in images.layers.entries() if not isinstance(m, Exception)}
    for layer in record.layers:
        m = manifests.get(layer.object_id)
        if m is None:
            raise UserError(
                f"layer {layer.diff_id} of {record.name} is not in your folder any more; push "
                f"the image again (`dcloud image push {record.name}`)"
            )
        key = images.layers.load_key(m.object_id)
        layers.append(
            LayerSource(
                diff_id=layer.diff_id,
                size=m.size,
                object_id=m.object_id,
                k=m.k,
                n=m.n,
                segment_bytes=m.segment_bytes,
                backend=m.backend,
                cipher=m.cipher,
                segments=_moved(m.segments, endpoints or {}),
                key=keywrap.wrap(
                    key, public_key, context=grant_context(m.object_id, provider_address)
                ),
            )
        )
        for seg in m.segments:
            for shard in seg.shards:
                on_node[shard.node].add(shard.id)
    expires_ms = (int(time.time()) + ttl_s) * 1000
    grants = [
        sign_grant(
            images.account,
            ReadGrant(
                owner=images.account.address,
                grantee=provider_address,
                node=node,
                shards=sorted(shards),
                expires_ms=expires_ms,
            ),
        )
        for node, shards in sorted(on_node.items())
    ]
    return ImageSource(
        ref=record.ref,
        config=base64.b64encode(record.config.encode()).decode(),
        layers=layers,
        grants=grants,
    )


def provider_key(http: httpx.Client, provider: str, endpoint: str) -> str:
    """The public key `provider`'s agent publishes at ``GET /v1/health``.

    Raises:
        RefusedError: unreachable, or its agent publishes no key (too old to pull images).
    """
    url = endpoint.rstrip("/") + "/v1/health"
    try:
        r = http.get(url, timeout=HEALTH_TIMEOUT_S)
        r.raise_for_status()
        key = r.json().get("public_key")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise RefusedError(
            f"provider {provider} at {endpoint} did not say its public key "
            f"({exc.__class__.__name__}); try again later"
        ) from None
    if not isinstance(key, str) or not _PUBLIC_KEY.match(key):
        raise RefusedError(
            f"provider {provider} runs an agent too old to pull images (its /v1/health has no "
            "public key); use an image it holds, or try again when it is updated"
        )
    return key


def _moved(segments: list[SegmentRef], endpoints: dict[str, str]) -> list[SegmentRef]:
    """`segments` with each shard's endpoint as the marketplace knows it now."""
    return [
        seg.model_copy(
            update={
                "shards": [
                    s.model_copy(update={"endpoint": endpoints.get(s.node, s.endpoint)})
                    for s in seg.shards
                ]
            }
        )
        for seg in segments
    ]
