"""Health of stored objects, and repair: rebuilding lost shards onto other nodes.

A shard is **healthy** when its node answers, still has it, and the bytes on disk hash to
the sha256 in the manifest (the node re-hashes them on request; ``deep`` downloads every
shard and hashes it here instead, trusting no node).

:func:`repair_object` rebuilds the shards of every segment whose healthy count is below
``threshold`` (default n: any loss is repaired). For such a segment it fetches k intact
shards, rebuilds the missing ones with the erasure code (no decryption: a repairer never
needs the object's key), checks that each rebuilt shard has exactly the sha256 the
manifest recorded, stores it on a node the marketplace picks among those not holding the
segment, and only then points the manifest at it (written atomically after each segment).
The replaced shard is deleted from its old node when that node answers, and remembered in
the manifest's ``retired`` list otherwise, to be deleted by a later repair or rm. A
long-running repairer calls :func:`repair_all` in a loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from agents.errors import AgentError, UserError, VerificationError
from agents.storage.files import codec
from agents.storage.files.client import StorageClient
from agents.storage.files.fetch import NodeStats, fetch_shard, fetch_shards
from agents.storage.files.manifest import Manifest, RetiredShard
from agents.storage.files.transport import NodeError, ShardMissing
from protocol.storage import SegmentRef, ShardRef

logger = logging.getLogger(__name__)

HEALTHY = "healthy"
CONDEMNED = "failed an audit"


@dataclass
class SegmentHealth:
    index: int
    healthy: list[int]
    problems: dict[int, str] = field(default_factory=dict)


@dataclass
class ObjectHealth:
    name: str
    k: int
    n: int
    segments: list[SegmentHealth]

    @property
    def min_healthy(self) -> int:
        return min((len(s.healthy) for s in self.segments), default=self.n)

    @property
    def readable(self) -> bool:
        return self.min_healthy >= self.k


@dataclass
class RepairResult:
    name: str
    segments_checked: int
    segments_repaired: int = 0
    shards_rebuilt: int = 0
    failures: list[str] = field(default_factory=list)
    health_after: int = 0


def check_shard(
    client: StorageClient, shard: ShardRef, endpoint: str, stats: NodeStats, *, deep: bool
) -> str:
    """``"healthy"`` or what is wrong with one shard."""
    if deep:
        data = fetch_shard(client.nodes, shard, endpoint, stats)
        return HEALTHY if data is not None else "unreachable, missing or corrupt"
    try:
        info = client.nodes.meta(endpoint, shard.id, verify=True)
    except ShardMissing:
        stats.failed(shard.node, f"lost shard {shard.id}")
        return "missing"
    except NodeError as exc:
        stats.failed(shard.node, str(exc))
        return "unreachable"
    if info.size != shard.size or info.sha256 != shard.sha256:
        stats.corrupt(shard.node, f"shard {shard.id} has the wrong hash on disk")
        return "corrupt"
    stats.ok(shard.node, 0.0)
    return HEALTHY


def object_health(
    client: StorageClient,
    manifest: Manifest,
    *,
    deep: bool = False,
    stats: NodeStats | None = None,
    endpoints: dict[str, str] | None = None,
    condemned: Collection[str] = frozenset(),
) -> ObjectHealth:
    """How many healthy shards each segment of the object has.

    Shards whose id is in `condemned` (their node failed an audit for them) count as
    unhealthy whatever their node says.
    """
    stats = stats or NodeStats()
    endpoints = client.endpoints() if endpoints is None else endpoints
    shards = [(seg.index, s) for seg in manifest.segments for s in seg.shards]

    def check(item: tuple[int, ShardRef]) -> str:
        shard = item[1]
        if shard.id in condemned:
            return CONDEMNED
        return check_shard(
            client, shard, endpoints.get(shard.node, shard.endpoint), stats, deep=deep
        )

    with ThreadPoolExecutor(client.concurrency) as pool:
        verdicts = list(pool.map(check, shards))
    segments = {seg.index: SegmentHealth(seg.index, []) for seg in manifest.segments}
    for (index, shard), verdict in zip(shards, verdicts, strict=True):
        if verdict == HEALTHY:
            segments[index].healthy.append(shard.index)
        else:
            segments[index].problems[shard.index] = verdict
    return ObjectHealth(manifest.name, manifest.k, manifest.n, list(segments.values()))


def health(
    client: StorageClient, name: str | None = None, *, deep: bool = False
) -> list[ObjectHealth]:
    """Health of one object, or of every object this renter stored."""
    manifests = [client.store.find(name)] if name else _all(client)
    stats = NodeStats()
    endpoints = client.endpoints()
    try:
        return [
            object_health(client, m, deep=deep, stats=stats, endpoints=endpoints) for m in manifests
        ]
    finally:
        client.send_reports(stats)


def repair_all(
    client: StorageClient,
    *,
    threshold: int | None = None,
    deep: bool = False,
    condemned: Collection[str] = frozenset(),
) -> list[RepairResult]:
    """Repair every object below the threshold; one object's failure does not stop the rest.

    `condemned`: shard ids to rebuild elsewhere whatever their nodes say (for example
    the shards of deals slashed on chain for a failed audit).
    """
    results = []
    for manifest in _all(client):
        try:
            results.append(
                repair_object(
                    client, manifest.name, threshold=threshold, deep=deep, condemned=condemned
                )
            )
        except AgentError as exc:
            logger.warning("repair of %s failed: %s", manifest.name, exc)
            results.append(RepairResult(manifest.name, len(manifest.segments), failures=[str(exc)]))
    return results


def repair_object(
    client: StorageClient,
    name: str,
    *,
    threshold: int | None = None,
    deep: bool = False,
    condemned: Collection[str] = frozenset(),
) -> RepairResult:
    """Rebuild the lost shards of the object's segments that fell below `threshold`."""
    manifest = client.store.find(name)
    with client.store.locked(manifest.object_id):
        manifest = client.store.find(name)  # re-read under the lock
        threshold = manifest.n if threshold is None else threshold
        if not 1 <= threshold <= manifest.n:
            raise UserError(f"the threshold must be between 1 and n={manifest.n}")
        stats = NodeStats()
        endpoints = client.endpoints()
        try:
            result = _repair_locked(client, manifest, threshold, deep, stats, endpoints, condemned)
        finally:
            client.send_reports(stats)
        return result


def _repair_locked(
    client: StorageClient,
    manifest: Manifest,
    threshold: int,
    deep: bool,
    stats: NodeStats,
    endpoints: dict[str, str],
    condemned: Collection[str],
) -> RepairResult:
    report = object_health(
        client, manifest, deep=deep, stats=stats, endpoints=endpoints, condemned=condemned
    )
    result = RepairResult(manifest.name, len(manifest.segments))
    _retire(client, manifest, [], endpoints)  # clear what earlier repairs left behind
    coder = codec.Coder(manifest.k, manifest.n)
    for seg_health in report.segments:
        if len(seg_health.healthy) >= threshold:
            continue
        segment = manifest.segments[seg_health.index]
        try:
            rebuilt = _repair_segment(
                client, manifest, segment, seg_health, coder, stats, endpoints
            )
        except AgentError as exc:
            result.failures.append(f"segment {segment.index}: {exc}")
            logger.warning("segment %d of %s not repaired: %s", segment.index, manifest.name, exc)
            continue
        result.segments_repaired += 1
        result.shards_rebuilt += rebuilt
    after = object_health(client, manifest, deep=False, stats=NodeStats(), endpoints=endpoints)
    result.health_after = after.min_healthy
    return result


def _repair_segment(
    client: StorageClient,
    manifest: Manifest,
    segment: SegmentRef,
    seg_health: SegmentHealth,
    coder: codec.Coder,
    stats: NodeStats,
    endpoints: dict[str, str],
) -> int:
    healthy = set(seg_health.healthy)
    sources = SegmentRef(
        index=segment.index,
        plain_size=segment.plain_size,
        cipher_size=segment.cipher_size,
        sha256=segment.sha256,
        shards=[s for s in segment.shards if s.index in healthy],
    )
    with ThreadPoolExecutor(client.concurrency) as pool:
        good = fetch_shards(
            sources,
            k=manifest.k,
            pool=pool,
            fetch=lambda s: fetch_shard(client.nodes, s, endpoints.get(s.node, s.endpoint), stats),
            rank=lambda s: stats.rank(s.node),
            hedge=0,
        )
    missing = sorted(seg_health.problems)
    rebuilt = coder.rebuild(good, missing)
    by_index = {s.index: s for s in segment.shards}
    for index, data in rebuilt.items():
        if codec.sha256_hex(data) != by_index[index].sha256:
            raise VerificationError(
                f"shard {index} rebuilt to other bytes than were stored; the erasure-code "
                "library differs from the one that stored it, so the segment is left as is"
            )
    exclude = {s.node for s in segment.shards}
    lock = threading.Lock()
    replaced: list[ShardRef] = []
    for index, data in rebuilt.items():
        old = by_index[index]
        new = client.store_shard(data, index=index, exclude=exclude, lock=lock, sha256=old.sha256)
        segment.shards = [new if s.index == index else s for s in segment.shards]
        replaced.append(old)
    client.store.save(manifest)  # the new shards are stored: point the manifest at them
    _retire(client, manifest, replaced, endpoints)
    logger.info("segment %d of %s: rebuilt shards %s", segment.index, manifest.name, missing)
    return len(rebuilt)


def _retire(
    client: StorageClient,
    manifest: Manifest,
    replaced: list[ShardRef],
    endpoints: dict[str, str],
) -> None:
    """Delete replaced shards from their old nodes; remember the ones that do not answer."""
    pending = [RetiredShard(id=s.id, node=s.node, endpoint=s.endpoint) for s in replaced]
    pending += manifest.retired
    keep: list[RetiredShard] = []
    for old in pending:
        try:
            client.nodes.delete(endpoints.get(old.node, old.endpoint), old.id)
        except ShardMissing:
            pass
        except NodeError:
            keep.append(old)
    if keep != manifest.retired:
        manifest.retired = keep
        client.store.save(manifest)


def _all(client: StorageClient) -> list[Manifest]:
    return [m for _, m in client.store.entries() if isinstance(m, Manifest)]
