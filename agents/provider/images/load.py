"""Load a checked image into the engine, and tell which of its layers the engine holds.

The provider writes the archive ``docker load`` reads itself, from the verified config
alone (no archive metadata from the renter): the legacy format Docker 20.10 reads,
``manifest.json`` (the config's file, a local tag of the agent's choosing, the layers in
order), the config and the layer tarballs, streamed to the engine. The engine computes
the image id (the config's sha256) and checks every layer's diff_id itself; the agent
checks the id it reports against the pinned digest and removes the image otherwise.

Docker's loader skips a layer whose chain (the layer and every layer under it) the
engine already holds, without opening its file; :func:`held_prefix` finds how many
leading layers of an image are held that way, so they are neither fetched nor sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors

from agents.errors import AgentError, VerificationError
from agents.provider.services.engine import engine

logger = logging.getLogger(__name__)

TAG_REPO = "dcloud-pulled"
LOAD_TIMEOUT_S = 1800  # loading a large image registers every layer before answering
_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE


def local_tag(digest: str) -> str:
    """The tag a pulled image gets here: ``dcloud-pulled/<12 hex>:<the other 52 hex>``."""
    hex_ = digest.removeprefix("sha256:")
    return f"{TAG_REPO}/{hex_[:12]}:{hex_[12:]}"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain id of each layer with the layers under it (as the engine computes them)."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


_CHAINS: dict[str, list[str]] = {}  # image id -> its chain ids (an id never changes them)
_CHAINS_MAX = 4096


def held_chains(client: Any) -> set[str]:
    """Chain ids of every layer stack the engine's images hold (one list, and an inspect
    of each image not seen before)."""
    held: set[str] = set()
    with engine("list images"):
        ids = [str(i) for i in client.api.images(all=True, quiet=True)]
        for image_id in ids:
            chains = _CHAINS.get(image_id)
            if chains is None:
                try:
                    attrs = client.api.inspect_image(image_id)
                except docker.errors.NotFound:
                    continue  # removed meanwhile
                chains = chain_ids(list(attrs.get("RootFS", {}).get("Layers") or []))
                if len(_CHAINS) >= _CHAINS_MAX:
                    _CHAINS.clear()
                _CHAINS[image_id] = chains
            held.update(chains)
    return held


def held_prefix(client: Any, diff_ids: list[str]) -> int:
    """How many leading layers of an image the engine holds already (0: none)."""
    held = held_chains(client)
    count = 0
    for i, chain in enumerate(chain_ids(diff_ids)):
        if chain in held:
            count = i + 1
    return count


def load_image(
    client: Any, *, digest: str, config: bytes, diff_ids: list[str], layers: dict[str, Path]
) -> str:
    """Load the image into the engine; returns its id (== `digest`).

    `layers` maps diff_id to its checked tarball; layers missing from it must be held by
    the engine already (:func:`held_prefix`).

    Raises:
        VerificationError: the engine made an image of another id (it is removed).
        AgentError: the engine refused the archive.
    """
    tag = local_tag(digest)
    hex_ = digest.removeprefix("sha256:")
    manifest = [
        {
            "Config": f"{hex_}.json",
            "RepoTags": [tag],
            "Layers": [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids],
        }
    ]
    members: list[tuple[str, bytes | Path]] = [
        ("manifest.json", json.dumps(manifest).encode()),
        (f"{hex_}.json", config),
    ]
    for d in dict.fromkeys(diff_ids):  # a layer that repeats is sent once
        if d in layers:
            members.append((f"{d.removeprefix('sha256:')}/layer.tar", layers[d]))
    api = client.api
    try:
        response = api._post(
            api._url("/images/load"),
            data=_archive(members),
            params={"quiet": "1"},
            stream=True,
            timeout=LOAD_TIMEOUT_S,
        )
        api._raise_for_status(response)
        for chunk in api._stream_helper(response, decode=True):
            if "error" in chunk:
                raise AgentError(f"the Docker engine refused the image: {chunk['error']}")
    except docker.errors.DockerException as exc:
        raise AgentError(f"the Docker engine refused the image: {exc}") from None
    with engine("look up the loaded image"):
        loaded = client.images.get(tag)
    if str(loaded.id) != digest:
        with engine("remove a wrong image"), contextlib.suppress(docker.errors.NotFound):
            client.images.remove(str(loaded.id), force=True)
        raise VerificationError(
            f"the engine loaded the image as {loaded.id}, not the pinned {digest}; it was removed"
        )
    return digest


def _archive(members: list[tuple[str, bytes | Path]]) -> Iterator[bytes]:
    """A tar stream of `members` (name, bytes or a file), written as it is read."""
    for name, body in members:
        size = len(body) if isinstance(body, bytes) else body.stat().st_size
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        yield info.tobuf(format=tarfile.USTAR_FORMAT)
        if isinstance(body, bytes):
            yield body
        else:
            with open(body, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk
        if size % _BLOCK:
            yield b"\0" * (_BLOCK - size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)
