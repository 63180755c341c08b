"""Renters' own images for tests, built in the real engine with no registry.

``build_image`` builds ``FROM dcloud/busybox:1`` (or another local base) plus the given
files, as a renter would with ``docker build``, and returns the image's digest (its
config's sha256, which is also its image id on this engine).
"""

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
    """Build `tag` = `base` + `files` (path -> bytes, made executable); return its digest."""
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
