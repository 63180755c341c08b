"""What a provider is given to pull a renter's image: keys that open only with its key,
grants that name only it and only the image's shards; a key that is not the provider's
is refused."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import httpx
import pytest
from eth_account import Account

from agents.errors import RefusedError
from agents.image.images import Images
from agents.image.source import image_source, provider_key
from agents.storage.files import codec
from protocol import keywrap
from protocol.images import grant_context, verify_grant
from protocol.signing import SignatureError
from tests.agents.storage.network import Network, account
from tests.agents.test_image_push import network  # noqa: F401 - the module's network fixture
from tests.renter_images import build_image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pushed(
    tmp_path_factory: pytest.TempPathFactory,
    network: Network,  # noqa: F811
    docker_engine: docker.DockerClient,
    job_images: list[str],
) -> Iterator[Images]:
    """A renter that pushed itest/src-a:1 and itest/src-b:1 (sharing the base layers)."""
    build_image(docker_engine, "itest/src-a:1", {"a.txt": b"only in a" * 1000})
    build_image(docker_engine, "itest/src-b:1", {"b.txt": b"only in b"})
    with Images(
        home=tmp_path_factory.mktemp("source-renter"),
        account=account("image-source-renter"),
        marketplace=network.market.url,
        docker_client=docker_engine,
        k=2,
        n=4,
    ) as images:
        images.push("itest/src-a:1")
        images.push("itest/src-b:1")
        yield images


def _secret(acct: object) -> bytes:
    return bytes(acct.key)  # type: ignore[attr-defined]


def test_the_source_opens_only_with_the_providers_key(pushed: Images) -> None:
    provider, other = Account.create(), Account.create()
    record = pushed.store.find("itest/src-a:1")
    source = image_source(
        pushed.store, record, provider.address, keywrap.public_key_of(_secret(provider))
    )
    assert source.ref == record.ref
    assert [x.diff_id for x in source.layers] == [x.diff_id for x in record.layers]
    assert source.size == record.size
    for layer in source.layers:
        context = grant_context(layer.object_id, provider.address)
        key = keywrap.unwrap(layer.key, _secret(provider), context=context)
        assert key == pushed.store.layers.load_key(layer.object_id)
        with pytest.raises(keywrap.KeyWrapError):
            keywrap.unwrap(layer.key, _secret(other), context=context)
        with pytest.raises(keywrap.KeyWrapError):  # nor for another provider's context
            keywrap.unwrap(
                layer.key, _secret(provider), context=grant_context(layer.object_id, other.address)
            )

    # the last layer read back through its shards with the unwrapped key is the layer
    last = source.layers[-1]
    key = keywrap.unwrap(
        last.key, _secret(provider), context=grant_context(last.object_id, provider.address)
    )
    seg = last.segments[0]
    shards = {s.index: pushed.storage.nodes.get(s.endpoint, s.id) for s in seg.shards[: last.k]}
    cipher = codec.Coder(last.k, last.n).decode(shards)[: seg.cipher_size]
    plain = codec.decrypt_segment(key, object_id=last.object_id, index=0, cipher=cipher)
    assert codec.sha256_hex(plain) == last.diff_id.removeprefix("sha256:")


def test_grants_name_only_that_provider_and_only_the_images_shards(pushed: Images) -> None:
    provider, other = Account.create(), Account.create()
    a = pushed.store.find("itest/src-a:1")
    b = pushed.store.find("itest/src-b:1")
    source = image_source(
        pushed.store, a, provider.address, keywrap.public_key_of(_secret(provider))
    )
    manifests = {m.object_id: m for _, m in pushed.store.layers.entries()}
    wanted: dict[str, set[str]] = {}
    for layer in a.layers:
        for seg in manifests[layer.object_id].segments:  # type: ignore[union-attr]
            for s in seg.shards:
                wanted.setdefault(s.node, set()).add(s.id)
    granted = {}
    for signed in source.grants:
        grant = verify_grant(signed, node=signed.payload.node, grantee=provider.address)
        assert grant.owner == pushed.store.account.address
        assert grant.grantee == provider.address
        granted[grant.node] = set(grant.shards)
    assert granted == wanted
    b_only = {x.object_id for x in b.layers} - {x.object_id for x in a.layers}
    b_shards = {
        s.id
        for oid in b_only
        for seg in manifests[oid].segments  # type: ignore[union-attr]
        for s in seg.shards
    }
    assert b_shards and not b_shards & set().union(*granted.values())
    with pytest.raises(SignatureError, match=f"read, not {other.address}"):  # nor another
        verify_grant(source.grants[0], node=source.grants[0].payload.node, grantee=other.address)


def test_a_key_that_is_not_the_providers_is_refused(pushed: Images, network: Network) -> None:  # noqa: F811
    provider, impostor = Account.create(), Account.create()
    record = pushed.store.find("itest/src-a:1")
    with pytest.raises(RefusedError, match="the provider's key does not match its address"):
        image_source(
            pushed.store, record, provider.address, keywrap.public_key_of(_secret(impostor))
        )
    with pytest.raises(RefusedError, match="does not match its address"):
        image_source(pushed.store, record, provider.address, "0x04" + "00" * 64)

    # an agent whose health carries no public key (here a storage node's) is too old
    node = network.nodes[0]
    with httpx.Client() as http, pytest.raises(RefusedError, match="too old to pull images"):
        provider_key(http, node.address, node.endpoint)


def test_a_source_survives_the_wire(pushed: Images) -> None:
    provider = Account.create()
    record = pushed.store.find("itest/src-b:1")
    source = image_source(
        pushed.store, record, provider.address, keywrap.public_key_of(_secret(provider))
    )
    again = type(source).model_validate_json(source.model_dump_json())
    assert again == source and len(source.grants) >= 1


def test_shards_point_at_where_their_nodes_are_now(pushed: Images) -> None:
    provider = Account.create()
    record = pushed.store.find("itest/src-a:1")
    public = keywrap.public_key_of(_secret(provider))
    before = image_source(pushed.store, record, provider.address, public)
    moved_node = before.layers[0].segments[0].shards[0].node
    after = image_source(
        pushed.store, record, provider.address, public, endpoints={moved_node: "http://moved:1"}
    )
    for old, new in zip(before.layers, after.layers, strict=True):
        for seg_old, seg_new in zip(old.segments, new.segments, strict=True):
            for s_old, s_new in zip(seg_old.shards, seg_new.shards, strict=True):
                want = "http://moved:1" if s_old.node == moved_node else s_old.endpoint
                assert s_new.endpoint == want and s_new.id == s_old.id
