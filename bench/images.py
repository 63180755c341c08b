"""Images benchmark: a renter's image pushed and pulled through the storage nodes, beside
``docker save`` / ``docker load`` of the same image on local disk.

Run from the repository root (needs the Docker engine and dcloud/busybox:1)::

    .venv/bin/python -m bench.images            # a 100 MB image, best of 3
    .venv/bin/python -m bench.images --quick    # a 100 MB image, once (CI)

The image is ``dcloud/busybox:1`` plus one layer holding 100 MB of random bytes, built in
the local engine as a renter would. The base's layers are in the engine already, so every
side moves the one new layer: the baseline saves the image to a file and loads it back
after removing it (``docker_load_MBps``: the layer's bytes over the load's time); ours
pushes it (export, encrypt, erasure-code k=4 of n=8, upload to 8 storage-node processes on
loopback: ``push_MBps``), removes it from the engine, and pulls it as a provider agent does
(``ImagePuller.ensure`` with the source a renter's push would carry: post grants, fetch the
shards in parallel, decode, decrypt, hash to the layer's diff_id, inspect the tarball,
``docker load``, check the id: ``cold_pull_MBps``). ``ratio`` is cold pull over local
load (target >= 0.5). ``warm_ms``: the same call once the image is held (target: nothing
worth measuring next to a container start).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
from eth_account import Account
from eth_utils import keccak

from agents.devnet.localchain import docker_engine
from agents.image.images import Images
from agents.image.source import image_source
from agents.provider.images.pull import ImagePuller
from bench.report import print_table, write_results
from bench.storage import LocalNetwork
from protocol import keywrap

BASE = "dcloud/busybox:1"
TAG = "bench/image:1"
NODES = 8
KEYS = ["row", "mb", "push_MBps", "cold_pull_MBps", "docker_save_MBps", "docker_load_MBps",
        "ratio", "warm_ms", "fetch_s", "load_s", "nodes"]  # fmt: skip


def build(client: docker.DockerClient, size: int) -> str:
    """`TAG` = `BASE` + one layer of `size` random bytes; its image id."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f"FROM {BASE}\nCOPY blob.bin /blob.bin\n".encode()
        for name, data in (("Dockerfile", dockerfile), ("blob.bin", _random(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=TAG, rm=True)
    return str(image.id)


def _random(size: int) -> bytes:
    return os.urandom(size)


def layer_bytes(client: docker.DockerClient) -> int:
    """Bytes of the image's own layer (the one every side moves)."""
    history = client.images.get(TAG).history()
    return int(max(h["Size"] for h in history))


def _remove(client: docker.DockerClient, image_id: str) -> None:
    client.images.remove(image_id, force=True)


def baseline(client: docker.DockerClient, folder: Path, image_id: str) -> tuple[float, float]:
    """Seconds to `docker save` the image to a file and to `docker load` it back."""
    path = folder / "image.tar"
    start = time.perf_counter()
    with open(path, "wb") as fh:
        for chunk in client.images.get(TAG).save(chunk_size=2**20, named=True):
            fh.write(chunk)
    saved = time.perf_counter() - start
    _remove(client, image_id)
    start = time.perf_counter()
    with open(path, "rb") as fh:
        client.images.load(fh)
    loaded = time.perf_counter() - start
    path.unlink()
    return saved, loaded


def run(size: int, repeat: int) -> dict[str, Any]:
    docker_engine("start", holder=os.getpid())  # started by PID if none runs
    try:
        return _run(size, repeat)
    finally:
        docker_engine("stop", holder=os.getpid())


def _run(size: int, repeat: int) -> dict[str, Any]:
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=600)
    folder = Path(tempfile.mkdtemp(prefix="dcloud-bench-images-"))
    renter = Account.from_key(keccak(text="bench-images-renter"))
    provider = Account.from_key(keccak(text="bench-images-provider"))
    public = keywrap.public_key_of(bytes(provider.key))
    net = LocalNetwork(folder, NODES, quota=4 * size)
    try:
        image_id = build(client, size)
        moved = layer_bytes(client)
        saves, loads, pushes, pulls, warms, fetches, loads_in_pull = [], [], [], [], [], [], []
        with Images(
            home=folder / "renter", account=renter, marketplace=net.url, docker_client=client
        ) as images:
            for i in range(repeat):
                s, ld = baseline(client, folder, image_id)
                saves.append(s)
                loads.append(ld)
                if i == 0:
                    pushed = images.push(TAG)
                    pushes.append(pushed.seconds)
                record = pushed.record
                source = image_source(images.store, record, provider.address, public)
                _remove(client, image_id)
                puller = ImagePuller(
                    client=client,
                    account=provider,
                    home=folder / f"provider-{i}",
                    max_image_bytes=4 * size,
                    quota_bytes=8 * size,
                )
                try:
                    start = time.perf_counter()
                    got = puller.ensure(record.ref, source)
                    pulls.append(time.perf_counter() - start)
                    assert got == image_id, f"pulled {got}, pushed {image_id}"
                    assert puller.last is not None and puller.last.fetched_bytes >= moved
                    fetches.append(puller.last.fetch_seconds)
                    loads_in_pull.append(puller.last.load_seconds)
                    start = time.perf_counter()
                    puller.ensure(record.ref, None)
                    warms.append(time.perf_counter() - start)
                finally:
                    puller.close()
                client.images.get(image_id).tag(TAG)
    finally:
        net.stop()
        with contextlib.suppress(docker.errors.DockerException):
            _remove(client, TAG)
        client.close()
        shutil.rmtree(folder, ignore_errors=True)
    mb = moved / 1e6
    pull, load = min(pulls), min(loads)
    return {
        "row": "image",
        "mb": round(mb, 1),
        "push_MBps": mb / min(pushes),
        "cold_pull_MBps": mb / pull,
        "docker_save_MBps": mb / min(saves),
        "docker_load_MBps": mb / load,
        "ratio": load / pull,
        "warm_ms": min(warms) * 1000,
        "fetch_s": min(fetches),
        "load_s": min(loads_in_pull),
        "nodes": NODES,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Image push and cold pull vs docker save/load")
    parser.add_argument("--quick", action="store_true", help="one round instead of three (CI)")
    args = parser.parse_args(argv)
    size = 100 * 10**6
    print(f"push and pull of a {size // 10**6} MB image through {NODES} local nodes ...")
    rows = [run(size, 1 if args.quick else 3)]
    rows = [{key: row.get(key) for key in KEYS} for row in rows]
    print_table(rows, title="Images: push and cold pull through the nodes vs docker save/load")
    write_results(
        "images",
        rows,
        title="Images (push and cold pull through the storage nodes vs docker save/load)",
        notes=(
            "dcloud/busybox:1 plus a 100 MB layer of random bytes; the base is in the engine, "
            "so every side moves that layer. push: export, encrypt, erasure-code k=4 n=8, "
            f"upload to {NODES} storage-node processes on loopback. cold pull: the provider "
            "agent's ImagePuller (grants, parallel shard fetch, decode, decrypt, diff_id hash, "
            "tarball inspection, docker load, id check) after removing the image. Baseline: "
            "docker save to a file and docker load of it. ratio = local load time / cold pull "
            "time (target >= 0.5). warm_ms: the same pull with the image held. Best of the "
            "rounds; everything shares the machine's 2 cores."
        ),
    )


if __name__ == "__main__":
    main()
