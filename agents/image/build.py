"""Build a small image from a local base and a few files, with no registry and no
Dockerfile on disk: what a renter's ``docker build`` of ``FROM base`` + ``COPY`` does.
The devnet's demo and the tests use it to make a renter's own image to push."""

from __future__ import annotations

import io
import json
import tarfile
import time

import docker

BASE = "dcloud/busybox:1"


def build_image(
    client: docker.DockerClient,
    tag: str,
    files: dict[str, bytes],
    *,
    base: str = BASE,
    cmd: list[str] | None = None,
    user: str | None = None,
) -> str:
    """Build `tag` = `base` + `files` (path -> bytes, made executable); its image id."""
    lines = [f"FROM {base}"]
    if user is not None:
        lines.append(f"USER {user}")
    lines += [f"COPY {name} /{name}" for name in files]
    if cmd is not None:
        lines.append("CMD " + json.dumps(cmd))
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in {"Dockerfile": "\n".join(lines).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return str(image.id)
