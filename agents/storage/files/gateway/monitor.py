"""The last known health of every stored object, re-checked on a background thread."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from agents.errors import AgentError
from agents.storage.files.client import StorageClient
from agents.storage.files.fetch import NodeStats
from agents.storage.files.manifest import Manifest
from agents.storage.files.repair import ObjectHealth, SegmentHealth, object_health

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checked:
    health: ObjectHealth
    at: float
    """When the check started."""


class HealthMonitor:
    """The last known health of every object, re-checked every `every_s` s on a thread."""

    def __init__(self, client: StorageClient, *, every_s: float) -> None:
        self.client = client
        self.every_s = every_s
        self._lock = threading.Lock()
        self._known: dict[str, Checked] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def get(self, object_id: str) -> Checked | None:
        with self._lock:
            return self._known.get(object_id)

    def record(self, object_id: str, checked: Checked) -> None:
        """Keep `checked` unless a check that started later is known already."""
        with self._lock:
            known = self._known.get(object_id)
            if known is None or known.at <= checked.at:
                self._known[object_id] = checked

    def forget(self, object_id: str) -> None:
        with self._lock:
            self._known.pop(object_id, None)

    def check(self, manifest: Manifest, *, deep: bool = False) -> Checked:
        """Check every shard of the object now (and report what was seen of the nodes)."""
        started = time.time()
        stats = NodeStats()
        try:
            health = object_health(self.client, manifest, deep=deep, stats=stats)
        finally:
            self.client.send_reports(stats)
        checked = Checked(health, started)
        self.record(manifest.object_id, checked)
        return checked

    def stored(self, manifest: Manifest) -> None:
        """A put just stored every shard: all n are healthy."""
        segments = [SegmentHealth(s.index, [r.index for r in s.shards]) for s in manifest.segments]
        health = ObjectHealth(manifest.name, manifest.k, manifest.n, segments)
        self.record(manifest.object_id, Checked(health, time.time()))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            manifests = [m for _, m in self.client.store.entries() if isinstance(m, Manifest)]
            for manifest in manifests:
                if self._stop.is_set():
                    return
                try:
                    self.check(manifest)
                except AgentError as exc:
                    logger.warning("health check of %s failed: %s", manifest.name, exc)
                except Exception:  # the monitor outlives a bug in one check; it is logged
                    logger.exception("health check of %s failed", manifest.name)
            ids = {m.object_id for m in manifests}
            with self._lock:  # forget what another process deleted (not what is newer)
                self._known = {k: v for k, v in self._known.items() if k in ids or v.at >= started}
            self._stop.wait(self.every_s)
