"""`Images.push`, `ls` and `rm` against the real Docker engine and real storage nodes:
layers are stored once and shared, records replaced by a rebuilt tag, layers removed with
the last image that uses them, clear refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agents.errors import RefusedError, UserError
from agents.image.images import Images, PushProgress
from agents.image.records import layer_name
from tests.agents.storage.network import Network, account
from tests.renter_images import build_image

pytestmark = pytest.mark.integration

NODES = 5


_SHARED: list[Network] = []


@pytest.fixture(scope="module")
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Network:
    """Five storage nodes and their marketplace, started once for every image-push module
    of the session (each imports this fixture) and stopped at its end."""
    if not _SHARED:
        net = Network(tmp_path_factory.mktemp("image-network"), nodes=NODES)
        request.config.add_cleanup(net.stop)
        _SHARED.append(net)
    return _SHARED[0]


@pytest.fixture
def images(
    tmp_path: Path, network: Network, docker_engine: docker.DockerClient, job_images: list[str]
) -> Iterator[Images]:
    with Images(
        home=tmp_path / "renter",
        account=account(f"image-renter-{tmp_path.name}"),
        marketplace=network.market.url,
        docker_client=docker_engine,
        k=2,
        n=4,
    ) as i:
        yield i


def _shards_on_nodes(network: Network) -> int:
    return sum(len(node.shard_files()) for node in network.nodes)


class Recorder(PushProgress):
    def __init__(self) -> None:
        self.stages: dict[str, int] = {}
        self.done = 0

    def stage(self, label: str, total: int) -> None:
        self.stages[label] = total

    def advance(self, n: int) -> None:
        self.done += n


def test_push_stores_each_layer_once_and_a_second_image_only_its_new_layer(
    images: Images, network: Network, docker_engine: docker.DockerClient
) -> None:
    digest = build_image(docker_engine, "itest/push-a:1", {"a.sh": b"#!/bin/sh\necho a\n"})
    before = _shards_on_nodes(network)
    progress = Recorder()
    first = images.push("itest/push-a:1", progress=progress)
    base = docker_engine.images.get("dcloud/busybox:1").attrs["RootFS"]["Layers"]
    assert first.record.digest == digest
    assert first.record.ref == f"itest/push-a:1@{digest}"
    assert [x.diff_id for x in first.record.layers] == (
        docker_engine.images.get(digest).attrs["RootFS"]["Layers"]
    )
    assert len(first.stored) == len(set(x.diff_id for x in first.record.layers))
    assert not first.shared
    assert set(progress.stages) == {"exporting", "storing"}
    assert progress.stages["storing"] == first.record.size
    assert _shards_on_nodes(network) - before == 4 * len(first.stored)  # one segment each

    build_image(docker_engine, "itest/push-b:1", {"b.sh": b"#!/bin/sh\necho b\n"})
    second = images.push("itest/push-b:1")
    assert {x.diff_id for x in second.shared} == set(base)
    assert len(second.stored) == 1
    assert second.stored[0].diff_id not in base
    names = [o.name for o in images.storage.ls()]
    assert names == sorted(
        layer_name(d) for d in {*base, *(x.diff_id for x in first.stored), second.stored[0].diff_id}
    )

    quiet = Recorder()
    again = images.push("itest/push-a:1", progress=quiet)  # nothing new: every layer shared
    assert not again.stored and again.replaced is None
    assert quiet.stages == {}  # known and whole: not even exported
    docker_engine.images.get(digest).tag("itest/push-a", "alias")
    alias = images.push("itest/push-a:alias")
    assert alias.record.digest == digest and alias.record.layers == first.record.layers
    assert not alias.stored
    assert [r.name for r in images.ls()] == [
        "itest/push-a:1",
        "itest/push-a:alias",
        "itest/push-b:1",
    ]


def test_rm_keeps_layers_another_image_uses_and_deletes_the_rest(
    images: Images, network: Network, docker_engine: docker.DockerClient
) -> None:
    build_image(docker_engine, "itest/rm-a:1", {"a.txt": b"a"})
    build_image(docker_engine, "itest/rm-b:1", {"b.txt": b"b"})
    a = images.push("itest/rm-a:1")
    b = images.push("itest/rm-b:1")
    own_a = {x.diff_id for x in a.record.layers} - {x.diff_id for x in b.record.layers}
    assert len(own_a) == 1
    before = _shards_on_nodes(network)

    with pytest.raises(UserError, match="no pushed image named itest/rm-a:latest"):
        images.rm("itest/rm-a")
    removed = images.rm("itest/rm-a:1")
    assert removed.deleted == sorted(own_a)
    assert removed.kept == len(set(x.diff_id for x in a.record.layers)) - 1
    assert _shards_on_nodes(network) == before - 4
    assert [r.name for r in images.ls()] == ["itest/rm-b:1"]
    assert images.storage.store.exists(layer_name(b.stored[0].diff_id))

    images.rm(f"itest/rm-b:1@{b.record.digest}")  # a pinned reference names it too
    assert images.ls() == [] and images.storage.ls() == []
    assert _shards_on_nodes(network) == before - 4 - 4 * len(
        set(x.diff_id for x in b.record.layers)
    )


def test_a_rebuilt_tag_replaces_its_record_and_drops_the_layer_nobody_uses(
    images: Images, docker_engine: docker.DockerClient
) -> None:
    old = build_image(docker_engine, "itest/rebuilt:1", {"v.txt": b"version 1"})
    first = images.push("itest/rebuilt:1")
    new = build_image(docker_engine, "itest/rebuilt:1", {"v.txt": b"version 2"})
    second = images.push("itest/rebuilt:1")
    assert second.replaced == old and second.record.digest == new
    assert second.removed == [first.stored[-1].diff_id]  # version 1's own layer
    assert [r.digest for r in images.ls()] == [new]
    assert images.store.resolve("itest/rebuilt:1") == (
        f"itest/rebuilt:1@{new}",
        second.record.size,
    )
    with pytest.raises(UserError, match="not an image you pushed"):
        images.store.resolve(f"itest/rebuilt:1@{old}")
    assert images.store.resolve("dcloud/busybox:1") == ("dcloud/busybox:1", None)


def test_refusals_say_what_to_do(
    images: Images, docker_engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UserError, match="no image itest/never-built:1 in your Docker engine"):
        images.push("itest/never-built:1")
    with pytest.raises(UserError, match="not an image name dcloud can carry"):
        images.push("Not/Lower:1")
    build_image(docker_engine, "itest/big:1", {"blob.bin": b"x" * 300_000})
    with pytest.raises(UserError, match="dcloud carries images of at most 1 MB"):
        images.push("itest/big:1", max_bytes=10**6)
    assert images.ls() == [] and images.storage.ls() == []
    images.n = NODES + 3  # more shards per segment than there are nodes
    with pytest.raises(RefusedError) as refused:
        images.push("itest/big:1")
    assert images.ls() == [] and images.storage.ls() == []  # nothing left behind
    assert "node" in str(refused.value), refused.value

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with (
        Images(home=images.store.home, account=images.store.account, marketplace=None) as no_engine,
        pytest.raises(UserError, match="no Docker engine at unix:///nonexistent/docker"),
    ):
        no_engine.push("itest/big:1")
