"""The renter's image SDK: push an image from its own Docker engine, list, remove.

``push`` exports the image (:mod:`agents.image.export`, checked against its id and
diff_ids), stores each layer it does not hold yet as an encrypted, erasure-coded object
(``StorageClient.put_stream``: a fresh key kept in the renter's keyring, shards placed by
the marketplace), and records the image (:mod:`agents.image.records`). A layer already
stored for this renter (the same diff_id, its manifest and key in place and at least k
shards of every segment on their nodes) is shared, not stored again. Pushing a tag again
replaces its record; layers no image names any more are deleted from their nodes, here
and on ``rm``.

Example::

    with Images(home=Path("~/.dcloud/renter").expanduser(), account=account,
                marketplace="http://127.0.0.1:8700") as images:
        pushed = images.push("myapp:1")
        print(pushed.record.ref, pushed.stored, pushed.shared)
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, RefusedError, UserError
from agents.image.export import Exported, Layer, export
from agents.image.records import ImageRecord, ImageStore, LayerRecord, layer_name, normalize
from agents.storage.files.client import StorageClient
from agents.storage.files.manifest import Manifest
from agents.storage.files.transport import NodeError, ShardMissing
from protocol.images import MAX_IMAGE_BYTES, MAX_LAYERS

logger = logging.getLogger(__name__)

DOCKER_TIMEOUT_S = 600
K, N = 4, 8
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class PushProgress:
    """What a push reports: a stage with its byte total, then bytes as they pass.

    Stages: ``"exporting"`` (the engine's export, total about the image's size) and
    ``"storing"`` (the new layers' bytes). The CLI draws them as bars.
    """

    def stage(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


@dataclass
class Pushed:
    record: ImageRecord
    stored: list[LayerRecord] = field(default_factory=list)
    shared: list[LayerRecord] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # diff_ids of layers no image uses now
    replaced: str | None = None  # the tag's previous digest
    seconds: float = 0.0


@dataclass
class Removed:
    record: ImageRecord
    deleted: list[str]  # diff_ids of layers deleted with it
    kept: int  # layers still used by other images


def docker_client() -> docker.DockerClient:
    """The renter's own Docker engine (``DOCKER_HOST`` or the local socket).

    Raises:
        UserError: no engine answers.
    """
    host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    fix = "start Docker (or set DOCKER_HOST to your engine) and push again"
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        raise UserError(f"no Docker engine at {host} (no such socket); {fix}")
    client: docker.DockerClient | None = None
    try:
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        if client is not None:
            client.close()
        raise UserError(
            f"no Docker engine answers at {host} ({exc.__class__.__name__}); {fix}"
        ) from None
    return client


class Images:
    """One renter's pushed images, recorded in `home` (its folder), layers on the network
    `marketplace` places them on."""

    def __init__(
        self,
        *,
        home: Path,
        account: LocalAccount,
        marketplace: str | None,
        docker_client: docker.DockerClient | None = None,
        k: int = K,
        n: int = N,
    ) -> None:
        self.store = ImageStore(home, account)
        self.storage = StorageClient(home=self.store.root, account=account, marketplace=marketplace)
        self._docker = docker_client
        self._own_docker = docker_client is None
        self.k, self.n = k, n

    def close(self) -> None:
        self.storage.close()
        if self._docker is not None and self._own_docker:
            self._docker.close()

    def __enter__(self) -> Images:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def docker(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    # ------------------------------------------------------------------ push

    def push(
        self,
        ref: str,
        *,
        progress: PushProgress | None = None,
        max_bytes: int = MAX_IMAGE_BYTES,
    ) -> Pushed:
        """Store the local image `ref` (``name:tag``) on the network and record it.

        Raises:
            UserError: no Docker engine, no such image in it, more than
                :data:`~protocol.images.MAX_LAYERS` layers or `max_bytes` of them.
            VerificationError: the engine's export does not match the image's digests.
            RefusedError: the storage network could not take a layer (nothing is recorded,
                and the layers it had stored are deleted again).
        """
        start = time.perf_counter()
        progress = progress or PushProgress()
        name = normalize(ref)
        local = self._local(name, max_bytes)
        with self.store.locked():
            known = self._known(str(local.id))
            stored: list[LayerRecord] = []
            if known is not None:  # pushed before under any name, every layer still whole
                shared, layers, config = _distinct(known.layers), known.layers, known.config
            else:
                progress.stage("exporting", int(local.attrs.get("Size") or 0))
                try:
                    with export(
                        local,
                        spool_in=self.store.root,
                        progress=progress.advance,
                        max_bytes=max_bytes,
                    ) as image:
                        stored, shared, layers = self._store_layers(image, progress)
                except BaseException:
                    with contextlib.suppress(AgentError):
                        self._collect()  # the layers this push stored before it failed
                    raise
                config = image.config.decode()
            previous = self.store.get(name)
            self._relink(stored)
            record = ImageRecord(
                name=name,
                digest=str(local.id),
                config=config,
                layers=layers,
                pushed_at=time.time(),
            )
            self.store.save(record)
            removed = self._collect()
        return Pushed(
            record=record,
            stored=stored,
            shared=shared,
            removed=removed,
            replaced=previous.digest if previous and previous.digest != record.digest else None,
            seconds=time.perf_counter() - start,
        )

    def _known(self, digest: str) -> ImageRecord | None:
        """A record of this image (by any name) whose layers are all still intact: a push
        of it again needs no export."""
        for record in self.store.all():
            if record.digest == digest:
                whole = all(self._intact(x.diff_id) is not None for x in _distinct(record.layers))
                return record if whole else None
        return None

    def _local(self, name: str, max_bytes: int) -> Any:
        try:
            local = self.docker.images.get(name)
        except docker.errors.ImageNotFound:
            raise UserError(
                f"no image {name} in your Docker engine; build it first (`docker build -t "
                f"{name} .`); `docker images` lists what you have"
            ) from None
        except docker.errors.DockerException as exc:
            raise UserError(f"your Docker engine did not answer for {name} ({exc})") from None
        diff_ids = (local.attrs.get("RootFS") or {}).get("Layers") or []
        if len(diff_ids) > MAX_LAYERS:
            raise UserError(
                f"{name} has {len(diff_ids)} layers; dcloud carries at most {MAX_LAYERS} "
                "(squash some RUN steps)"
            )
        size = int(local.attrs.get("Size") or 0)
        if size > max_bytes:
            raise UserError(
                f"{name} is {size / 1e6:.0f} MB; dcloud carries images of at most "
                f"{max_bytes / 1e6:.0f} MB (a slimmer base or fewer files make it smaller)"
            )
        return local

    def _store_layers(
        self, image: Exported, progress: PushProgress
    ) -> tuple[list[LayerRecord], list[LayerRecord], list[LayerRecord]]:
        """Each distinct layer stored once: (newly stored, shared, the image's in order)."""
        distinct: dict[str, Layer] = {}
        for layer in image.layers:
            distinct.setdefault(layer.diff_id, layer)
        held = {d: m for d in distinct if (m := self._intact(d)) is not None}
        todo = [layer for d, layer in distinct.items() if d not in held]
        progress.stage("storing", sum(layer.size for layer in todo))
        stored: dict[str, LayerRecord] = {}
        for layer in todo:
            with layer.blob.open() as fh:
                m = self.storage.put_stream(
                    fh,
                    size=layer.size,
                    name=layer_name(layer.diff_id),
                    k=self.k,
                    n=self.n,
                    progress=progress.advance,
                )
            stored[layer.diff_id] = LayerRecord(
                diff_id=layer.diff_id, object_id=m.object_id, size=m.size
            )
        shared = {
            d: LayerRecord(diff_id=d, object_id=m.object_id, size=m.size) for d, m in held.items()
        }
        both = stored | shared
        return list(stored.values()), list(shared.values()), [both[x.diff_id] for x in image.layers]

    def _intact(self, diff_id: str) -> Manifest | None:
        """The stored layer with this diff_id, if its records are whole and every segment
        still has k shards on their nodes; a broken one is forgotten (to store anew)."""
        name = layer_name(diff_id)
        store = self.storage.store
        if not store.exists(name):
            return None
        try:
            manifest = store.find(name)
        except AgentError as exc:
            logger.warning("layer %s has a damaged manifest (%s); storing it again", diff_id, exc)
            for path, entry in store.entries():  # nothing else can read a damaged one
                if not isinstance(entry, Manifest):
                    path.unlink(missing_ok=True)
            return None
        try:
            store.load_key(manifest.object_id)
            whole = self._readable(manifest)
        except AgentError as exc:
            logger.warning("layer %s is stored but unusable (%s); storing it again", diff_id, exc)
            whole = False
        if not whole:
            logger.warning("layer %s cannot be read back; storing it again", diff_id)
            self.storage.rm(name, force=True)
        return manifest if whole else None

    def _readable(self, manifest: Manifest) -> bool:
        endpoints = self.storage.endpoints()

        def present(shard: Any) -> bool:
            endpoint = endpoints.get(shard.node, shard.endpoint)
            try:
                info = self.storage.nodes.meta(endpoint, shard.id)
            except (ShardMissing, NodeError):
                return False
            return bool(info.size == shard.size and info.sha256 == shard.sha256)

        shards = [s for seg in manifest.segments for s in seg.shards]
        with ThreadPoolExecutor(self.storage.concurrency) as pool:
            ok = dict(zip((s.id for s in shards), pool.map(present, shards), strict=True))
        return all(sum(ok[s.id] for s in seg.shards) >= manifest.k for seg in manifest.segments)

    def _relink(self, stored: list[LayerRecord]) -> None:
        """Point other images at a layer stored again (its old object was broken)."""
        fresh = {layer.diff_id: layer for layer in stored}
        for record in self.store.all():
            layers = [fresh.get(x.diff_id, x) for x in record.layers]
            if layers != record.layers:
                record.layers = layers
                self.store.save(record)

    # ------------------------------------------------------------------ ls, rm

    def ls(self) -> list[ImageRecord]:
        """Every image this renter pushed, by name."""
        return self.store.all()

    def rm(self, ref: str) -> Removed:
        """Forget the image `ref` names and delete the layers no other image uses.

        Raises:
            UserError: no such pushed image.
        """
        with self.store.locked():
            record = self.store.find(ref)
            self.store.forget(record.name)
            deleted = self._collect()
        used = {layer.diff_id for r in self.store.all() for layer in r.layers}
        kept = len({layer.diff_id for layer in record.layers} & used)
        return Removed(record=record, deleted=deleted, kept=kept)

    def _collect(self) -> list[str]:
        """Delete every layer object no record names (their diff_ids); a layer whose nodes
        do not answer stays, to be deleted by a later push or rm."""
        used = {layer.object_id for r in self.store.all() for layer in r.layers}
        gone = []
        for _, entry in self.storage.store.entries():
            if not isinstance(entry, Manifest) or entry.object_id in used:
                continue
            try:
                self.storage.rm(entry.name)
            except RefusedError as exc:
                logger.warning("kept layer %s for now: %s", entry.name, exc)
                continue
            gone.append(entry.name.removeprefix("image-layer/"))
        return gone


def _distinct(layers: list[LayerRecord]) -> list[LayerRecord]:
    return list({x.diff_id: x for x in layers}.values())
