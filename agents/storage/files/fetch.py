"""Reading a segment back: the first k intact shards from the fastest nodes, in parallel.

Shards are read the way BitTorrent reads pieces, from many peers at once, whichever
answer: for each segment the reader asks the k best-ranked nodes at once, checks every
shard against its sha256 from the manifest, and as soon as one fails (down, missing, or
corrupt) asks the next node. It stops at k good shards. When the
segment is slow (no shard back within a few times the usual shard latency) it also asks
``hedge`` more nodes and takes whichever k come back first, so one straggler does not
hold the segment up (a hedged request, sent only when needed, so it costs little).
Every outcome is recorded in a :class:`NodeStats`, which ranks nodes for the next
segment (nodes that failed last, then by measured latency, then data shards before
parity, since decoding data shards is a copy) and becomes the report the marketplace
turns into reputation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field

from agents.errors import AgentError, VerificationError
from agents.storage.files.codec import Coder, decrypt_segment, sha256_hex
from agents.storage.files.transport import NodeClient, NodeError
from protocol.storage import NodeReport, SegmentRef, ShardRef

logger = logging.getLogger(__name__)

HEDGE_FIRST_S = 0.5  # before any shard latency is known
HEDGE_MIN_S = 0.05
HEDGE_FACTOR = 4.0  # times the typical shard latency


class NotEnoughShardsError(AgentError):
    """Fewer than k intact shards of a segment could be fetched."""


@dataclass
class _Seen:
    ok: int = 0
    failed: int = 0
    corrupt: int = 0
    seconds: float = 0.0
    ewma_s: float | None = None
    problems: list[str] = field(default_factory=list)


class NodeStats:
    """What one operation saw of each node (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, _Seen] = {}
        self._typical_s: float | None = None

    def hedge_after_s(self) -> float:
        """How long a segment may wait for its shards before more nodes are asked."""
        with self._lock:
            typical = self._typical_s
        return HEDGE_FIRST_S if typical is None else max(HEDGE_MIN_S, HEDGE_FACTOR * typical)

    def ok(self, node: str, seconds: float) -> None:
        with self._lock:
            self._typical_s = (
                seconds if self._typical_s is None else 0.9 * self._typical_s + 0.1 * seconds
            )
            seen = self._nodes.setdefault(node, _Seen())
            seen.ok += 1
            seen.seconds += seconds
            seen.ewma_s = seconds if seen.ewma_s is None else 0.7 * seen.ewma_s + 0.3 * seconds

    def failed(self, node: str, why: str) -> None:
        with self._lock:
            seen = self._nodes.setdefault(node, _Seen())
            seen.failed += 1
            seen.problems.append(why)

    def corrupt(self, node: str, why: str) -> None:
        with self._lock:
            seen = self._nodes.setdefault(node, _Seen())
            seen.corrupt += 1
            seen.problems.append(why)

    def rank(self, node: str) -> tuple[int, float]:
        """Smaller is better: nodes that failed or lied last, then the slower ones."""
        with self._lock:
            seen = self._nodes.get(node)
            if seen is None:
                return (0, 0.0)
            return (seen.failed + 3 * seen.corrupt, seen.ewma_s or 0.0)

    def snapshot(self) -> dict[str, _Seen]:
        with self._lock:
            return {
                k: _Seen(v.ok, v.failed, v.corrupt, v.seconds, v.ewma_s, list(v.problems))
                for k, v in self._nodes.items()
            }

    def corrupt_nodes(self) -> list[str]:
        return sorted(n for n, s in self.snapshot().items() if s.corrupt)

    def failed_nodes(self) -> list[str]:
        return sorted(n for n, s in self.snapshot().items() if s.failed)

    def reports(self) -> list[NodeReport]:
        return [
            NodeReport(
                node=node,
                ok=s.ok,
                failed=s.failed,
                corrupt=s.corrupt,
                latency_ms=round(1000 * s.seconds / s.ok, 3) if s.ok else None,
            )
            for node, s in sorted(self.snapshot().items())
        ]


def fetch_shard(
    nodes: NodeClient, shard: ShardRef, endpoint: str, stats: NodeStats
) -> bytes | None:
    """One shard, checked against its hash; None (recorded in `stats`) when it fails."""
    start = time.perf_counter()
    try:
        data = nodes.get(endpoint, shard.id)
    except NodeError as exc:
        stats.failed(shard.node, str(exc))
        logger.info("shard %s from %s failed: %s", shard.id, shard.node, exc)
        return None
    elapsed = time.perf_counter() - start
    if len(data) != shard.size or sha256_hex(data) != shard.sha256:
        stats.corrupt(shard.node, f"shard {shard.id} came back with the wrong hash")
        logger.warning("node %s served shard %s with the wrong hash", shard.node, shard.id)
        return None
    stats.ok(shard.node, elapsed)
    return data


def fetch_shards(
    segment: SegmentRef,
    *,
    k: int,
    pool: Executor,
    fetch: Callable[[ShardRef], bytes | None],
    rank: Callable[[ShardRef], tuple[int, float]],
    hedge: int = 1,
    hedge_after_s: float = 0.25,
) -> dict[int, bytes]:
    """At least k intact shards of `segment` (index -> bytes), best-ranked nodes first.

    Raises:
        NotEnoughShardsError: every node was tried and fewer than k shards came back intact.
    """
    order = sorted(segment.shards, key=lambda s: (*rank(s), s.index))
    pending = iter(order)
    inflight: dict[Future[bytes | None], ShardRef] = {}
    good: dict[int, bytes] = {}

    def launch() -> None:
        shard = next(pending, None)
        if shard is not None:
            inflight[pool.submit(fetch, shard)] = shard

    for _ in range(min(len(order), k)):
        launch()
    while len(good) < k and inflight:
        patience = hedge_after_s if hedge else None
        done, _ = wait(inflight, timeout=patience, return_when=FIRST_COMPLETED)
        if not done:  # a straggler: ask more nodes, take the first k that answer
            for _ in range(hedge):
                launch()
            hedge = 0
            continue
        for future in done:
            shard = inflight.pop(future)
            data = future.result()
            if data is None:
                launch()
            else:
                good[shard.index] = data
    for future in inflight:
        future.cancel()  # hedged requests no longer needed; running ones finish on their own
    if len(good) < k:
        raise NotEnoughShardsError(
            f"segment {segment.index}: only {len(good)} intact shards could be fetched and "
            f"{k} are needed (the others' nodes are down, lost them, or served corrupt bytes); "
            "nothing was written. Try again when more nodes are online"
        )
    return good


def decode_segment(segment: SegmentRef, shards: Mapping[int, bytes], coder: Coder) -> bytes:
    """The segment's ciphertext from k verified shards.

    Its integrity is then proven by the GCM tag when it is decrypted (which binds the
    object, the segment's index and size), so it is not hashed again here.
    """
    cipher = coder.decode(shards)
    if len(cipher) != segment.cipher_size:
        raise VerificationError(
            f"segment {segment.index} decodes to {len(cipher)} bytes, not the "
            f"{segment.cipher_size} recorded; the manifest's shard list does not fit it"
        )
    return cipher


def read_segments(
    nodes: NodeClient,
    segments: Sequence[SegmentRef],
    *,
    object_id: str,
    key: bytes,
    coder: Coder,
    stats: NodeStats,
    shard_pool: Executor,
    seg_pool: Executor,
    window: int,
    hedge: int = 1,
    endpoint_of: Callable[[ShardRef], str] = lambda shard: shard.endpoint,
) -> Iterator[bytes]:
    """An object's plaintext segments in order, `window` segments fetched (first k intact
    shards from the best-ranked nodes), decoded and decrypted ahead on `seg_pool`.

    Each segment's GCM tag proves its bytes, its place and its size; the caller checks
    that the segments add up to the object's size.

    Raises:
        NotEnoughShardsError: a segment could not be rebuilt from its nodes.
        VerificationError: a segment does not decode to its size or does not decrypt.
    """

    def fetch(shard: ShardRef) -> bytes | None:
        return fetch_shard(nodes, shard, endpoint_of(shard), stats)

    def segment(seg: SegmentRef) -> bytes:
        shards = fetch_shards(
            seg,
            k=coder.k,
            pool=shard_pool,
            fetch=fetch,
            rank=lambda s: stats.rank(s.node),
            hedge=hedge,
            hedge_after_s=stats.hedge_after_s(),
        )
        cipher = decode_segment(seg, shards, coder)
        return decrypt_segment(key, object_id=object_id, index=seg.index, cipher=cipher)

    ahead: deque[Future[bytes]] = deque()
    todo = iter(segments)
    try:
        for seg in todo:
            ahead.append(seg_pool.submit(segment, seg))
            if len(ahead) >= window:
                break
        while ahead:
            plain = ahead.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                ahead.append(seg_pool.submit(segment, nxt))
            yield plain
    finally:
        for future in ahead:
            future.cancel()
