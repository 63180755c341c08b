"""The engine's export, read as it streams and checked as a provider will check it: the
config hashes to the image id, each layer to the config's diff_id in order; anything else
is refused before a byte is stored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import docker
import pytest

from agents.errors import UserError, VerificationError
from agents.image.export import check, export, read_export

pytestmark = pytest.mark.integration

BASE = "dcloud/busybox:1"


def test_an_export_checks_out_and_names_the_layers_in_order(
    tmp_path: Path, docker_engine: docker.DockerClient, job_images: list[str]
) -> None:
    image = docker_engine.images.get(BASE)
    seen: list[int] = []
    with export(image, spool_in=tmp_path, progress=seen.append) as exported:
        assert exported.digest == image.id
        assert [x.diff_id for x in exported.layers] == image.attrs["RootFS"]["Layers"]
        assert sum(seen) >= exported.size > 0
        spooled = [x.blob.path for x in exported.layers if x.blob.path is not None]
        assert all(p is not None and p.exists() for p in spooled)
    assert list(tmp_path.iterdir()) == []  # the spool goes with the block


def test_a_wrong_digest_a_tampered_layer_and_too_many_bytes_are_refused(
    tmp_path: Path, docker_engine: docker.DockerClient, job_images: list[str]
) -> None:
    image = docker_engine.images.get(BASE)
    blobs, links = read_export(image.save(), tmp_path, None, 10**9)
    check(blobs, links, image.id, 10**9)  # as exported: fine

    with pytest.raises(VerificationError, match="not the image id"):
        check(blobs, links, "sha256:" + "0" * 64, 10**9)
    layer = next(name for name in blobs if name.endswith("layer.tar"))
    tampered = {**blobs, layer: dataclasses.replace(blobs[layer], sha256="sha256:" + "1" * 64)}
    with pytest.raises(VerificationError, match="not the config's"):
        check(tampered, links, image.id, 10**9)
    with pytest.raises(UserError, match="more than dcloud carries"):
        check(blobs, links, image.id, 1000)
    with pytest.raises(UserError, match="more than dcloud carries"):
        read_export(image.save(), tmp_path, None, 1000)  # refused while streaming, too
