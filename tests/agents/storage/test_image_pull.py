"""A provider pulls a renter's image from real storage nodes into the real engine.

The renter's side is played here with the storage SDK: each layer ``docker save`` wrote
is stored as an object, its key wrapped to the provider, and a read grant signed per
node (:func:`push_source`). Then the provider's :class:`ImagePuller` checks, fetches and
loads it; every refusal leaves the engine without the image.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, RefusedError, VerificationError
from agents.image.images import Images
from agents.image.source import image_source
from agents.provider.images.load import TAG_REPO, local_tag
from agents.provider.images.pull import ImagePuller
from agents.provider.images.source import engine_image
from agents.provider.images.tarcheck import LayerRefusedError
from agents.provider.runtime import DockerRuntime, RunLimits
from agents.storage.files.client import StorageClient
from protocol.images import (
    ImageSource,
    LayerSource,
    ReadGrant,
    grant_context,
    pin,
    sign_grant,
)
from protocol.keywrap import public_key_of, wrap
from tests.agents.storage.conftest import make_client
from tests.agents.storage.network import Network, account
from tests.renter_images import build_image

pytestmark = pytest.mark.integration

PROVIDER = account("image-pull-provider")
RENTER = account("image-pull-renter")


# ------------------------------------------------------------------ the renter's side


def saved_layers(client: docker.DockerClient, tag: str) -> tuple[bytes, list[bytes]]:
    """The config and the layer tarballs of a local image, as ``docker save`` writes them."""
    raw = b"".join(client.images.get(tag).save(named=True))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None
            return member.read()

        manifest = json.loads(read("manifest.json"))[0]
        return read(manifest["Config"]), [read(layer) for layer in manifest["Layers"]]


def push_source(
    storage: StorageClient,
    ref: str,
    config: bytes,
    layers: list[bytes],
    *,
    provider: LocalAccount = PROVIDER,
    public: str | None = None,
    diff_ids: list[str] | None = None,
    k: int = 4,
    n: int = 6,
    segment_bytes: int = 256 * 1024,
) -> ImageSource:
    """Store each layer as an object and build the source a push would carry."""
    renter = storage.account
    public = public or public_key_of(bytes(provider.key))  # given: the agent's /v1/health
    diff_ids = diff_ids or ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    sources: list[LayerSource] = []
    by_node: dict[str, list[str]] = {}
    for diff_id, layer in zip(diff_ids, layers, strict=True):
        name = f"layer-{diff_id[7:19]}-{os.urandom(4).hex()}"
        m = storage.put_bytes(layer, name=name, k=k, n=n, segment_bytes=segment_bytes)
        key = storage.store.load_key(m.object_id)
        sources.append(
            LayerSource(
                diff_id=diff_id,
                size=m.size,
                object_id=m.object_id,
                k=m.k,
                n=m.n,
                segment_bytes=m.segment_bytes,
                backend=m.backend,
                cipher=m.cipher,
                segments=m.segments,
                key=wrap(key, public, context=grant_context(m.object_id, provider.address)),
            )
        )
        for seg in m.segments:
            for shard in seg.shards:
                by_node.setdefault(shard.node, []).append(shard.id)
    expires = time.time_ns() // 1_000_000 + 3600_000
    grants = [
        sign_grant(
            renter,
            ReadGrant(
                owner=renter.address,
                grantee=provider.address,
                node=node,
                shards=shards,
                expires_ms=expires,
            ),
        )
        for node, shards in by_node.items()
    ]
    return ImageSource(
        ref=ref, config=base64.b64encode(config).decode(), layers=sources, grants=grants
    )


def crafted_config(diff_ids: list[str]) -> bytes:
    """A minimal image config over `diff_ids` (for layers made by hand)."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()


def layer_tar(members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info in members:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def storage(tmp_path: Path, network: Network) -> Iterator[StorageClient]:
    with make_client(tmp_path / "renter", network, name="image-pull-renter") as c:
        yield c


@pytest.fixture
def engine(docker_engine: docker.DockerClient, job_images: list[str]) -> docker.DockerClient:
    return docker_engine


@pytest.fixture
def made(engine: docker.DockerClient) -> Iterator[list[str]]:
    """Image ids and tags a test made; removed after it."""
    ids: list[str] = []
    yield ids
    for image in ids:
        with contextlib.suppress(docker.errors.NotFound):
            engine.images.remove(image, force=True)


def new_puller(home: Path, engine: docker.DockerClient, **over: int) -> ImagePuller:
    return ImagePuller(
        client=engine,
        account=PROVIDER,
        home=home,
        max_image_bytes=over.get("max_image_bytes", 256 * 2**20),
        quota_bytes=over.get("quota_bytes", 1024 * 2**20),
    )


def renter_image(
    engine: docker.DockerClient, made: list[str], label: str, *, size: int = 4096, **kw
) -> tuple[str, str]:
    """Build a unique image (random file of `size` bytes) and return (tag, digest)."""
    tag = f"itest-pull/{label}-{os.urandom(3).hex()}:1"
    files = {"blob.bin": os.urandom(size), **kw.pop("files", {})}
    digest = build_image(engine, tag, files, **kw)
    made += [digest, tag]
    return tag, digest


def absent(engine: docker.DockerClient, digest: str) -> bool:
    """The image is not in the engine, under its id or the agent's tag for it."""
    tags = {t for i in engine.images.list(name=TAG_REPO) for t in i.tags}
    try:
        engine.images.get(digest)
    except docker.errors.ImageNotFound:
        return local_tag(digest) not in tags
    return False


def forget(engine: docker.DockerClient, tag: str) -> None:
    """The renter built it here; the provider must not find it: untag and remove it."""
    engine.images.remove(tag, force=True)


# ------------------------------------------------------------------ tests


def test_a_cold_pull_loads_the_pinned_image_and_a_second_is_a_cache_hit(
    tmp_path, engine, storage, made
):
    tag, digest = renter_image(engine, made, "cold", size=600_000)
    config, layers = saved_layers(engine, tag)
    ref = pin(tag.split(":")[0] + ":1", digest)
    source = push_source(storage, ref, config, layers)
    forget(engine, tag)
    assert absent(engine, digest)
    puller = new_puller(tmp_path / "provider", engine)
    try:
        assert puller.ensure(ref, source) == digest
        assert engine.images.get(digest).id == digest
        report = puller.last
        assert report is not None and not report.cached
        assert (report.layers, report.fetched_layers) == (len(layers), 1)  # the base is held
        assert report.fetched_bytes == len(layers[-1])
        assert puller.held()[0] == digest
        assert puller.ensure(ref, None) == digest  # cached: no source needed, nothing fetched
        assert puller.last is not None and puller.last.cached
        assert not list((tmp_path / "provider" / "image-cache").iterdir())  # staging emptied
    finally:
        puller.close()


def test_an_image_without_its_source_and_not_held_is_refused(tmp_path, engine, made):
    puller = new_puller(tmp_path / "provider", engine)
    ref = pin("itest-pull/missing:1", "sha256:" + "ab" * 32)
    with pytest.raises(RefusedError, match="push the image with the job"):
        puller.ensure(ref, None)
    puller.close()


def test_a_tampered_layer_is_refused_and_nothing_is_loaded(tmp_path, engine, storage, made):
    tag, digest = renter_image(engine, made, "tampered")
    config, layers = saved_layers(engine, tag)
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    evil = [*layers[:-1], layers[-1].replace(b"blob.bin", b"blob.bad")]
    source = push_source(
        storage, pin("itest-pull/tampered:1", digest), config, evil, diff_ids=diff_ids
    )
    forget(engine, tag)
    puller = new_puller(tmp_path / "provider", engine)
    with pytest.raises(VerificationError, match="not the layer the image's config pins"):
        puller.ensure(source.ref, source)
    assert absent(engine, digest)
    puller.close()


def test_a_source_that_is_not_the_pinned_image_is_refused(tmp_path, engine, storage, made):
    tag, digest = renter_image(engine, made, "wrong-digest")
    config, layers = saved_layers(engine, tag)
    other = "sha256:" + hashlib.sha256(b"another image").hexdigest()
    source = push_source(storage, pin("itest-pull/wrong:1", other), config, layers)
    forget(engine, tag)
    puller = new_puller(tmp_path / "provider", engine)
    with pytest.raises(VerificationError, match="not the pinned"):
        puller.ensure(source.ref, source)
    with pytest.raises(VerificationError, match="not the spec's"):
        puller.ensure(pin("itest-pull/right:1", digest), source)
    assert absent(engine, digest) and absent(engine, other)
    puller.close()


def test_an_image_over_the_providers_limit_is_refused_before_fetching(
    tmp_path, engine, storage, made
):
    tag, digest = renter_image(engine, made, "big", size=300_000)
    config, layers = saved_layers(engine, tag)
    source = push_source(storage, pin("itest-pull/big:1", digest), config, layers)
    forget(engine, tag)
    puller = new_puller(tmp_path / "provider", engine, max_image_bytes=100_000)
    with pytest.raises(RefusedError, match="pulls images of at most"):
        puller.ensure(source.ref, source)
    assert absent(engine, digest)
    puller.close()


@pytest.mark.parametrize(
    "label, members, why",
    [
        (
            "dotdot",
            [member("../escape")],
            "has a member ../escape outside its root",
        ),
        (
            "symlink",
            [member("a", tarfile.SYMTYPE, "../../.."), member("a/x")],
            "has a member a that is a symlink to ../../.., outside its root",
        ),
        ("device", [member("dev/mem", tarfile.CHRTYPE)], "that is a device node"),
    ],
)
def test_a_malicious_layer_tarball_is_refused_and_nothing_is_loaded(
    tmp_path, engine, storage, label, members, why
):
    evil = layer_tar(members, {m.name: b"pwned\n" for m in members if m.isreg()})
    base = engine.images.get("dcloud/busybox:1").attrs["RootFS"]["Layers"]
    diff_ids = [*base, "sha256:" + hashlib.sha256(evil).hexdigest()]
    config = crafted_config(diff_ids)
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    _, base_layers = saved_layers(engine, "dcloud/busybox:1")
    source = push_source(
        storage, pin(f"itest-pull/{label}:1", digest), config, [*base_layers, evil]
    )
    puller = new_puller(tmp_path / "provider", engine)
    with pytest.raises(LayerRefusedError, match=re.escape(why)) as err:
        puller.ensure(source.ref, source)
    assert "nothing was loaded" in str(err.value)
    assert absent(engine, digest)
    puller.close()


def test_lru_eviction_under_a_small_quota_keeps_images_in_use(tmp_path, engine, storage, made):
    pushed = []
    for label in ("lru-a", "lru-b", "lru-c", "lru-d"):
        tag, digest = renter_image(engine, made, label, size=200_000)
        config, layers = saved_layers(engine, tag)
        pushed.append(
            (digest, push_source(storage, pin(f"itest-pull/{label}:1", digest), config, layers))
        )
        forget(engine, tag)
    (a, src_a), (b, src_b), (c, src_c), (d, src_d) = pushed
    puller = new_puller(tmp_path / "provider", engine, quota_bytes=450_000)
    containers = []
    try:
        puller.ensure(src_a.ref, src_a)
        containers.append(engine.containers.create(a, ["true"]))  # a is in use (not running)
        puller.ensure(src_b.ref, src_b)
        puller.ensure(src_c.ref, src_c)  # no room for three: b goes, a is in use
        assert puller.last is not None and puller.last.evicted == (b,)
        assert absent(engine, b) and not absent(engine, a) and not absent(engine, c)
        containers.append(engine.containers.create(c, ["true"]))
        with pytest.raises(RefusedError, match="cannot fit now"):
            puller.ensure(src_d.ref, src_d)  # a and c are in use: d cannot fit
        assert absent(engine, d) and not absent(engine, a) and not absent(engine, c)
        assert set(puller.held()) == {a, c}
    finally:
        for container in containers:
            container.remove(force=True)
        puller.close()


PROBE = b"""#!/bin/sh
echo "uid $(id -u) gid $(id -g)"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status
echo "suid $(/s/busybox id -u)"
touch /root-was-writable 2>/dev/null && echo "root writable" || echo "root read-only"
grep ' /data-vol ' /proc/mounts | cut -d' ' -f1,3
"""


def test_a_pulled_image_that_says_user_root_still_runs_hardened(tmp_path, engine, storage, made):
    tag = f"itest-pull/root-{os.urandom(3).hex()}:1"
    dockerfile = (
        "FROM dcloud/busybox:1\nUSER root\nVOLUME /data-vol\nCOPY probe.sh /probe.sh\n"
        'RUN mkdir /s && cp /bin/busybox /s/busybox && chmod 4755 /s/busybox\nCMD ["/probe.sh"]\n'
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), "probe.sh": PROBE}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = engine.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    digest = str(image.id)
    made += [digest, tag]
    config, layers = saved_layers(engine, tag)
    ref = pin("itest-pull/root:1", digest)
    source = push_source(storage, ref, config, layers)
    forget(engine, tag)
    puller = new_puller(tmp_path / "provider", engine)
    runtime = DockerRuntime(work_root=tmp_path / "work", agent_id=f"itest-pull-{os.getpid()}")
    try:
        assert puller.ensure(ref, source) == digest
        result = runtime.run(
            "root-image",
            image=engine_image(ref),
            command=["/probe.sh"],
            env={},
            inputs={},
            limits=RunLimits(cpu=0.5, memory_mb=64, disk_mb=0, time_limit_s=30),
        )
    finally:
        runtime.cleanup("root-image")
        puller.close()
    out = result.logs.decode()
    assert result.exit_code == 0, out
    assert "uid 65534 gid 65534" in out
    assert "suid 65534" in out  # a setuid-root binary gains nothing
    assert "NoNewPrivs:\t1" in out
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert f"{cap}:\t0000000000000000" in out, out
    assert "root read-only" in out
    assert "tmpfs tmpfs" in out  # its VOLUME is a small tmpfs, not a volume on the host


def test_an_image_pushed_with_the_renters_image_sdk_is_pulled(tmp_path, engine, network, made):
    tag, digest = renter_image(engine, made, "sdk", size=300_000)
    with Images(
        home=tmp_path / "renter",
        account=RENTER,
        marketplace=network.market.url,
        docker_client=engine,
        k=4,
        n=6,
    ) as images:
        pushed = images.push(tag)
        public = public_key_of(bytes(PROVIDER.key))
        source = image_source(images.store, pushed.record, PROVIDER.address, public)
        second = account("image-pull-second-provider")
        theirs = image_source(
            images.store, pushed.record, second.address, public_key_of(bytes(second.key))
        )
    forget(engine, tag)
    puller = new_puller(tmp_path / "provider", engine)
    try:
        assert puller.ensure(source.ref, source) == digest
        assert engine.images.get(digest).id == digest
    finally:
        puller.close()

    # a second provider pulls the same image from the shards, with its own source only
    engine.images.remove(digest, force=True)
    other = ImagePuller(
        client=engine,
        account=second,
        home=tmp_path / "second",
        max_image_bytes=256 * 2**20,
        quota_bytes=1024 * 2**20,
    )
    try:
        with pytest.raises(VerificationError, match="does not open"):
            other.ensure(source.ref, source)  # the first provider's keys are not its own
        assert not _present(engine, digest)
        assert other.ensure(theirs.ref, theirs) == digest
        assert other.last is not None and other.last.fetched_bytes > 0 and not other.last.cached
    finally:
        other.close()


def test_the_cache_never_removes_an_image_it_did_not_pull(tmp_path, engine):
    puller = new_puller(tmp_path / "provider", engine, quota_bytes=1)
    operator = str(engine.images.get("dcloud/busybox:1").id)
    try:
        with pytest.raises(AgentError, match="was not pulled by this agent"):
            puller.cache.evict(operator)
        assert puller.cache.make_room(0) == []  # nothing of the operator's is counted
        assert puller.held() == [] and not absent(engine, operator)
    finally:
        puller.close()


def test_a_held_layer_that_repeats_above_a_new_one_is_fetched_for_that_place(
    tmp_path, engine, storage, made
):
    extra = layer_tar([member("hello.txt")], {"hello.txt": os.urandom(16).hex().encode()})
    _, base = saved_layers(engine, "dcloud/busybox:1")
    layers = [*base, extra, *base]  # the base's chain is held; base above extra is not
    config = crafted_config(["sha256:" + hashlib.sha256(x).hexdigest() for x in layers])
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    made.append(digest)
    source = push_source(storage, pin("itest-pull/repeat:1", digest), config, layers)
    puller = new_puller(tmp_path / "provider", engine)
    try:
        assert puller.ensure(source.ref, source) == digest
        assert puller.last is not None
        layers_fetched = (puller.last.layers, puller.last.fetched_layers)
        assert layers_fetched == (2 * len(base) + 1, len(base) + 1)  # the base once, above
    finally:
        puller.close()


def _present(engine: docker.DockerClient, image: str) -> bool:
    try:
        engine.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True
