"""Snapshots of services' /data in the storage network, and their restore on failover.

For a lease whose spec asks for them (``snapshot_s``) and whose renter gave the snapshot
secret (wrapped to this provider's key, ``protocol.snapshots``), :meth:`Snapshots.take_due`
stores a tar of the service's /data every ``snapshot_s`` seconds as an object of the
snapshot account (the secret's), erasure-coded k=2 of n=4 on the marketplace's storage
nodes, then removes the older one. Where the newest is (:class:`SnapshotRef`: its
manifest and key file, both opened only with the secret) goes to the marketplace with
the heartbeats (:meth:`Snapshots.report`, from the heartbeat thread: one signer's requests
reach the marketplace in order). A failover hands it, with the secret wrapped anew, to
the next provider, which fetches and unpacks it into /data before the service starts
(:meth:`Snapshots.restore`).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, RefusedError
from agents.market import MarketClient
from agents.provider.lease_store import LIVE, LeaseRecord, LeaseStore
from agents.provider.workarea import WorkArea
from agents.storage.files.client import StorageClient
from protocol import keywrap, purposes
from protocol import snapshots as wire
from protocol.keywrap import WrappedKey
from protocol.snapshots import SnapshotRef

logger = logging.getLogger(__name__)


class Snapshots:
    """This provider's snapshots, one folder per lease under ``<home>/snapshots``."""

    def __init__(
        self,
        *,
        home: Path,
        account: LocalAccount,
        marketplace_url: str,
        leases: LeaseStore,
        data_area: Callable[[str], str | None],
    ) -> None:
        self.folder = home / "snapshots"
        self.account = account
        self.marketplace_url = marketplace_url
        self.leases = leases
        self.data_area = data_area  # key -> the service's data area folder (or None)
        self.pending: dict[int, tuple[str, SnapshotRef]] = {}
        self.taken: dict[int, float] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ secrets

    def accept_secret(self, lease_id: int, wrapped: WrappedKey | None) -> bytes | None:
        """Open the secret wrapped to this provider for `lease_id` and keep it (0600).

        Raises:
            RefusedError: it was wrapped for another key or another lease.
        """
        if wrapped is None:
            return None
        try:
            secret = keywrap.unwrap(
                wrapped, bytes(self.account.key), context=wire.context(lease_id)
            )
        except keywrap.KeyWrapError:
            raise RefusedError(
                f"the snapshot secret of lease {lease_id} was not wrapped to this provider "
                "for this lease"
            ) from None
        path = self._home(lease_id) / "secret"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secret)
        return secret

    def secret(self, lease_id: int) -> bytes | None:
        path = self._home(lease_id) / "secret"
        return path.read_bytes() if path.is_file() else None

    # ------------------------------------------------------------------ take

    def take_due(self) -> list[int]:
        """Snapshot every live lease whose interval passed; the leases snapshotted."""
        done = []
        now = time.time()
        for rec in self.leases.all(live=True):
            every = rec.spec.snapshot_s
            if rec.state != LIVE or not every or now - self.taken.get(rec.lease_id, 0) < every:
                continue
            secret = self.secret(rec.lease_id)
            if secret is None:
                continue
            self.taken[rec.lease_id] = now  # a failed one waits its interval too
            try:
                self.take(rec, secret)
            except AgentError as exc:
                logger.warning(
                    "snapshot failed; next interval",
                    extra={"lease": rec.lease_id, "error": str(exc)},
                )
                continue
            done.append(rec.lease_id)
        return done

    def take(self, rec: LeaseRecord, secret: bytes) -> SnapshotRef:
        """Store a tar of the lease's /data; the older snapshot is removed once it is in."""
        area = self.data_area(rec.key)
        if area is None:
            raise AgentError(f"lease {rec.lease_id} has no data area here")
        data = _tar(WorkArea(Path(area)).output)
        name = f"data-{time.time_ns()}"
        with self._client(rec.lease_id, secret) as client:
            manifest = client.put_bytes(data, name=name, k=wire.K, n=wire.N)
            store = client.store
            ref = SnapshotRef(
                name=name,
                object_id=manifest.object_id,
                manifest=(store.objects / f"{manifest.object_id}.json").read_text(),
                key=(store.keyring / f"{manifest.object_id}.key").read_text(),
                size=len(data),
                taken_at=time.time(),
            )
            for older in client.ls():
                if older.name != name:
                    client.rm(older.name, force=True)
        with self._lock:
            self.pending[rec.lease_id] = (rec.name, ref)
        logger.info("snapshot of /data stored", extra={"lease": rec.lease_id, "bytes": len(data)})
        return ref

    def report(self, market: MarketClient) -> None:
        """Tell the marketplace where each newest snapshot is (heartbeat thread)."""
        with self._lock:
            todo = dict(self.pending)
        for lease_id, (name, ref) in todo.items():
            try:
                market.post_signed(
                    f"/v1/services/{name}/snapshot",
                    purpose=purposes.SERVICE_SNAPSHOT,
                    payload={
                        "name": name,
                        "lease_id": lease_id,
                        "snapshot": ref.model_dump(mode="json"),
                    },
                )
            except AgentError as exc:
                logger.warning(
                    "snapshot not reported", extra={"lease": lease_id, "error": str(exc)}
                )
            with self._lock:
                if self.pending.get(lease_id, (None, None))[1] is ref:
                    del self.pending[lease_id]

    # ------------------------------------------------------------------ restore

    def restore(self, lease_id: int, secret: bytes, ref: SnapshotRef) -> bytes:
        """The tar of the snapshot `ref`, fetched from the nodes and checked.

        Raises:
            RefusedError: it cannot be read (too few nodes, not this secret's).
        """
        home = self._home(lease_id) / "restore"
        shutil.rmtree(home, ignore_errors=True)
        (home / "objects").mkdir(parents=True)
        (home / "keyring").mkdir()
        (home / "objects" / f"{ref.object_id}.json").write_text(ref.manifest)
        (home / "keyring" / f"{ref.object_id}.key").write_text(ref.key)
        try:
            client = StorageClient(
                home=home, account=Account.from_key(secret), marketplace=self.marketplace_url
            )
            with client:
                data = client.get_bytes(ref.name)
        except AgentError as exc:
            raise RefusedError(f"the snapshot of /data could not be read: {exc}") from None
        finally:
            shutil.rmtree(home, ignore_errors=True)
        logger.info("snapshot of /data fetched", extra={"lease": lease_id, "bytes": len(data)})
        return data

    def _client(self, lease_id: int, secret: bytes) -> StorageClient:
        return StorageClient(
            home=self._home(lease_id) / "store",
            account=Account.from_key(secret),
            marketplace=self.marketplace_url,
        )

    def _home(self, lease_id: int) -> Path:
        return self.folder / str(lease_id)


def _tar(folder: Path) -> bytes:
    """An uncompressed tar of `folder`'s contents (paths relative to it)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:") as tar:
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            tar.add(entry, arcname=entry.name)
    return out.getvalue()
