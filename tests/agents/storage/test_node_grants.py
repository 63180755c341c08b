"""Read grants on a real storage node process: a renter lets a provider read some shards."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from agents.storage.files.transport import NodeClient, NodeRefused
from agents.storage.node.grants import GrantBook, GrantBookFullError
from agents.storage.wire import shard_headers
from protocol.images import GRANT, ReadGrant, SignedGrant, sign_grant
from protocol.signing import sign_request
from tests.agents.storage.network import Node, account

pytestmark = pytest.mark.integration

OWNER, PROVIDER, EVE = account("grant-owner"), account("grant-provider"), account("grant-eve")


def sid(label: str) -> str:
    return hashlib.sha256(f"grants/{label}".encode()).hexdigest()[:32]


def _ms(seconds: float = 0.0) -> int:
    return time.time_ns() // 1_000_000 + int(seconds * 1000)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = Node(
        tmp_path_factory.mktemp("grant-node"),
        name="grant-node",
        market=None,
        quota=10**7,
        place=(47.0, 8.0),
    )
    node.start()
    node.wait_ready()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, NodeClient]]:
    made = {"owner": NodeClient(OWNER), "provider": NodeClient(PROVIDER), "eve": NodeClient(EVE)}
    yield made
    for c in made.values():
        c.close()


def grant(at: Node, shards: list[str], *, seconds: float = 600, **over: str) -> SignedGrant:
    fields = {"owner": OWNER.address, "grantee": PROVIDER.address, "node": at.address}
    fields.update(over)
    body = ReadGrant(shards=shards, expires_ms=_ms(seconds), **fields)  # type: ignore[arg-type]
    signer = EVE if fields["owner"] == EVE.address else OWNER
    return sign_grant(signer, body)


def test_a_grantee_reads_exactly_the_granted_shards_until_they_expire(node, clients):
    owner, provider = clients["owner"], clients["provider"]
    owner.put(node.endpoint, sid("a"), b"layer shard a")
    owner.put(node.endpoint, sid("b"), b"layer shard b")
    with pytest.raises(NodeRefused) as err:
        provider.get(node.endpoint, sid("a"))
    assert err.value.status == 403
    provider.post_grant(node.endpoint, grant(node, [sid("a")]))
    provider.post_grant(node.endpoint, grant(node, [sid("a")]))  # a retried post is fine
    assert provider.get(node.endpoint, sid("a")) == b"layer shard a"
    with pytest.raises(NodeRefused) as err:  # the same owner's other shard: not granted
        provider.get(node.endpoint, sid("b"))
    assert err.value.status == 403
    assert owner.get(node.endpoint, sid("b")) == b"layer shard b"  # the owner keeps access

    provider.post_grant(node.endpoint, grant(node, [sid("b")], seconds=1.0))
    assert provider.get(node.endpoint, sid("b")) == b"layer shard b"
    time.sleep(1.2)
    with pytest.raises(NodeRefused) as err:
        provider.get(node.endpoint, sid("b"))
    assert err.value.status == 403


def test_a_grantee_never_gets_meta_proofs_or_deletion(node, clients):
    owner, provider = clients["owner"], clients["provider"]
    owner.put(node.endpoint, sid("c"), b"shard c" * 100)
    provider.post_grant(node.endpoint, grant(node, [sid("c")]))
    for call in (
        lambda: provider.meta(node.endpoint, sid("c")),
        lambda: provider.proof(node.endpoint, sid("c"), 0),
        lambda: provider.delete(node.endpoint, sid("c")),
    ):
        with pytest.raises(NodeRefused) as err:
            call()
        assert err.value.status == 403
    assert owner.get(node.endpoint, sid("c")) == b"shard c" * 100
    assert owner.delete(node.endpoint, sid("c")) is True


def test_grants_not_from_the_owner_for_this_node_and_poster_are_refused(node, clients):
    owner, provider, eve = clients["owner"], clients["provider"], clients["eve"]
    owner.put(node.endpoint, sid("d"), b"shard d")

    # Eve grants the owner's shard: a valid grant of hers, which gives nothing of his
    provider.post_grant(node.endpoint, grant(node, [sid("d")], owner=EVE.address))
    with pytest.raises(NodeRefused) as err:
        provider.get(node.endpoint, sid("d"))
    assert err.value.status == 403

    # a grant naming the owner but signed by Eve
    body = ReadGrant(
        owner=OWNER.address,
        grantee=PROVIDER.address,
        node=node.address,
        shards=[sid("d")],
        expires_ms=_ms(600),
    )
    forged = SignedGrant.model_validate(
        {**sign_request(EVE, purpose=GRANT, payload=body.model_dump(mode="json"))}
    )
    forged = forged.model_copy(update={"signer": OWNER.address})
    refused = {
        "signed by someone else": (provider, forged),
        "for another node": (provider, grant(node, [sid("d")], node=EVE.address)),
        "posted by another signer": (eve, grant(node, [sid("d")])),
        "expired": (provider, grant(node, [sid("d")], seconds=-1)),
    }
    for why, (poster, signed) in refused.items():
        with pytest.raises(NodeRefused) as err:
            poster.post_grant(node.endpoint, signed)
        assert err.value.status == 401, why
    with pytest.raises(NodeRefused) as err:
        provider.get(node.endpoint, sid("d"))
    assert err.value.status == 403


def test_a_malformed_grant_is_422_and_an_unsigned_post_401(node):
    path = "/v1/grants"
    answer = httpx.post(
        node.endpoint + path,
        content=b'{"payload": {}}',
        headers={**shard_headers(PROVIDER, "POST", path), "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert "signed grant" in answer.json()["detail"]
    assert httpx.post(node.endpoint + path, content=b"{}").status_code == 401


def test_the_grant_book_is_bounded_and_drops_expired_grants():
    book = GrantBook(max_grants=2, max_entries=3, max_per_grantee=3)
    now = _ms()

    def g(shards: list[str], expires: int, grantee: str = PROVIDER.address) -> ReadGrant:
        return ReadGrant(
            owner=OWNER.address,
            grantee=grantee,
            node=EVE.address,
            shards=shards,
            expires_ms=expires,
        )

    book.add(g([sid("1"), sid("2")], now + 1000), now_ms=now)
    with pytest.raises(GrantBookFullError):
        book.add(g([sid("3"), sid("4")], now + 5000), now_ms=now)
    assert book.allows(sid("1"), owner=OWNER.address, reader=PROVIDER.address, now_ms=now)
    assert not book.allows(sid("1"), owner=EVE.address, reader=PROVIDER.address, now_ms=now)
    later = now + 2000  # the first grant expired: room again
    book.add(g([sid("3"), sid("4")], now + 5000), now_ms=later)
    assert book.size == (1, 2)
    assert not book.allows(sid("1"), owner=OWNER.address, reader=PROVIDER.address, now_ms=later)
    assert book.allows(sid("4"), owner=OWNER.address, reader=PROVIDER.address, now_ms=later)
