"""What a renter's image may not bring along when its container is made.

A ``VOLUME`` in an image's config makes the engine create an anonymous volume on the
host, writable even under a read-only root and outside every disk limit. For a pulled
image (run by its id) each declared volume is covered by a small tmpfs instead (charged
to the container's memory limit), so no volume is created. The user, capabilities,
no-new-privileges and the read-only root are the runtime's own and do not depend on the
image at all.
"""

from __future__ import annotations

import posixpath
from typing import Any

import docker.errors
import requests.exceptions

from agents.errors import AgentError

VOLUME_TMPFS_MB = 16


def volume_tmpfs(client: Any, image: str) -> dict[str, str]:
    """tmpfs mounts over the volumes a pulled image declares ({} for offered images)."""
    if not image.startswith("sha256:"):
        return {}
    try:
        config = client.api.inspect_image(image).get("Config") or {}
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise AgentError(f"the Docker engine failed to inspect a pulled image: {exc}") from exc
    paths = sorted((config.get("Volumes") or {}).keys())
    spec = f"rw,nosuid,nodev,size={VOLUME_TMPFS_MB}m,mode=1777"
    return {posixpath.normpath("/" + p): spec for p in paths if isinstance(p, str)}
