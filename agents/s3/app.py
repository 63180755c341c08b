"""The S3 front door put together for one renter: keys, index, blobs, operations, server.

Everything lives in ``<renter home>/s3/``: ``keys.json`` (access keys), ``index.db``
(buckets, objects, uploads), and the storage client's ``objects/`` and ``keyring/`` for
the blobs. A background thread deletes blobs whose deletion failed earlier (nodes away);
at start it also deletes blobs of uploads a crash cut short.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount

from agents.errors import AgentError
from agents.s3.blobs import BlobClient, Blobs
from agents.s3.index import Index
from agents.s3.keys import KeyRing
from agents.s3.multipart import Multipart
from agents.s3.routes import Routes
from agents.s3.server import S3App
from agents.s3.service import Service
from agents.s3.sigv4 import Verifier

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8791


def s3_folder(renter_home: Path) -> Path:
    return renter_home / "s3"


def keyring(renter_home: Path) -> KeyRing:
    return KeyRing(s3_folder(renter_home) / "keys.json")


@dataclass
class Gateway:
    """The app and what it holds open; `close` when the server stops."""

    app: S3App
    service: Service
    client: BlobClient
    index: Index
    stop: threading.Event

    def close(self) -> None:
        self.stop.set()
        self.client.close()
        self.index.close()


def build(
    *,
    renter_home: Path,
    account: LocalAccount,
    marketplace: str | None,
    k: int = 8,
    n: int = 12,
    domain: str = "localhost",
    sweep_every_s: float = 60.0,
) -> Gateway:
    folder = s3_folder(renter_home)
    folder.mkdir(parents=True, exist_ok=True)
    index = Index(folder / "index.db")
    client = BlobClient(home=folder, account=account, marketplace=marketplace)
    blobs = Blobs(client, index, k=k, n=n)
    service = Service(index, blobs)
    routes = Routes(service, Multipart(service))
    app = S3App(verifier=Verifier(keyring(renter_home)), handle=routes, domain=domain)
    stop = threading.Event()

    def sweep() -> None:
        first = True
        while not stop.is_set():
            try:
                left = blobs.sweep(with_pending=first)
                if left:
                    logger.warning("s3 sweep: %d blobs wait for their nodes", left)
            except AgentError as exc:
                logger.warning("s3 sweep failed: %s", exc)
            first = False
            stop.wait(sweep_every_s)

    threading.Thread(target=sweep, name="s3-sweep", daemon=True).start()
    return Gateway(app=app, service=service, client=client, index=index, stop=stop)
