"""A storage node's set-up and life: ``init`` writes its folder, ``run`` serves and heartbeats.

The node's folder (``--home``, default ``~/.dcloud/node``)::

    key.json     its Ethereum keystore (password from $DCLOUD_PASSWORD or a prompt)
    node.json    its settings (:class:`NodeConfig`)
    shards/      the shards (:mod:`agents.storage.node.store`)
    run.json     while it runs: pid and endpoint
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn
from eth_account.signers.local import LocalAccount
from pydantic import ConfigDict, Field, ValidationError

from agents import keys
from agents.errors import AgentError, UserError
from agents.storage.market import NotRegisteredError, StorageMarket
from agents.storage.node.server import create_node_app
from agents.storage.node.store import ShardStore
from protocol.ratelimit import RateLimitSettings
from protocol.schemas import Location
from protocol.storage import StorageHeartbeat, StorageNodeRegistration

logger = logging.getLogger(__name__)

CONFIG = "node.json"
KEYSTORE = "key.json"
RUNTIME = "run.json"
MIN_QUOTA_BYTES = 10**6


class NodeConfig(RateLimitSettings):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    address: str
    quota_bytes: int = Field(ge=MIN_QUOTA_BYTES)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    region: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    endpoint: str
    marketplace: str | None = Field(default=None, description="None: no heartbeats")
    heartbeat_s: float = Field(default=10.0, gt=0)
    rpc_url: str | None = Field(default=None, description="chain for StorageEscrow audits")
    fsync: bool = True


def init_node(
    home: Path,
    *,
    password: str,
    quota_bytes: int,
    lat: float,
    lon: float,
    region: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    endpoint: str | None = None,
    marketplace: str | None = None,
    heartbeat_s: float = 10.0,
    rpc_url: str | None = None,
) -> NodeConfig:
    """Create the node's folder: a keystore (kept if one is there) and its settings.

    Raises:
        UserError: settings already exist, or a value is unusable.
    """
    if (home / CONFIG).exists():
        raise UserError(f"{home / CONFIG} already exists; edit it, or init another --home")
    if quota_bytes < MIN_QUOTA_BYTES:
        raise UserError(f"the quota must be at least {MIN_QUOTA_BYTES} bytes (1MB)")
    if endpoint is None and host in ("0.0.0.0", "::"):
        raise UserError(f"--host {host} needs --endpoint: the URL other machines reach it at")
    if (home / KEYSTORE).exists():
        address = keys.address_of(home / KEYSTORE)
    else:
        address = keys.create(home / KEYSTORE, password).address
    port = port or _free_port(host)
    config = NodeConfig(
        address=address,
        quota_bytes=quota_bytes,
        lat=lat,
        lon=lon,
        region=region,
        host=host,
        port=port,
        endpoint=(endpoint or f"http://{host}:{port}").rstrip("/"),
        marketplace=marketplace.rstrip("/") if marketplace else None,
        heartbeat_s=heartbeat_s,
        rpc_url=rpc_url,
    )
    _write_json(home / CONFIG, config.model_dump(mode="json"))
    (home / "shards").mkdir(parents=True, exist_ok=True)
    return config


def load_config(home: Path) -> NodeConfig:
    path = home / CONFIG
    try:
        return NodeConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"no storage node at {home}; create one with `dcloud node init`") from None
    except (OSError, ValidationError) as exc:
        raise UserError(f"cannot use {path} ({exc}); fix it or init again") from None


def open_store(home: Path, config: NodeConfig) -> ShardStore:
    return ShardStore(home / "shards", quota_bytes=config.quota_bytes, fsync=config.fsync)


class Heartbeats:
    """Registers the node with the marketplace, then reports its free space every interval."""

    def __init__(self, config: NodeConfig, account: LocalAccount, store: ShardStore) -> None:
        assert config.marketplace is not None
        self.config = config
        self.store = store
        self.market = StorageMarket(config.marketplace, account)
        self._registered = False

    def beat(self) -> None:
        """One registration or heartbeat; a refusal or an unreachable marketplace is logged."""
        try:
            if self._registered:
                try:
                    self.market.heartbeat(
                        StorageHeartbeat(
                            free_bytes=self.store.free_bytes, shards=self.store.shard_count
                        )
                    )
                    return
                except NotRegisteredError:
                    self._registered = False
            self.market.register(self._registration())
            self._registered = True
            logger.info("registered with the marketplace at %s", self.config.marketplace)
        except AgentError as exc:
            logger.warning("heartbeat failed: %s", exc)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.beat()
            stop.wait(self.config.heartbeat_s)
        self.market.close()

    def _registration(self) -> StorageNodeRegistration:
        return StorageNodeRegistration(
            endpoint=self.config.endpoint,
            location=Location(lat=self.config.lat, lon=self.config.lon),
            region=self.config.region,
            capacity_bytes=self.config.quota_bytes,
            free_bytes=min(self.config.quota_bytes, self.store.free_bytes),
            shards=self.store.shard_count,
        )


def start_audit_responder(
    config: NodeConfig,
    account: LocalAccount,
    store: ShardStore,
    stop: threading.Event,
    *,
    home: Path | None = None,
) -> threading.Thread | None:
    """Answer StorageEscrow audit challenges for this node's shards (when a chain is set).

    With ``rpc_url`` in node.json, a thread runs
    :class:`agents.storage.node.responder.NodeResponder` on the node's account: it
    accepts deals offered for shards held here (root and chunk count checked), answers
    each challenge with the chunk and its Merkle proof, and settles the node's completed
    epochs. On chain a shard id is the bytes32 left-padded
    form of the node's 16-byte hex id (``agents.storage.escrow.shard_key``). The contracts
    are the ones its marketplace follows, checked on the chain (``$DCLOUD_DEPLOYMENTS``
    pins a deployments file instead). Returns the
    thread (not started), or None when no chain is configured or it cannot be reached.
    """
    if config.rpc_url is None:
        return None
    from agents.errors import AgentError
    from agents.network import open_deployment
    from agents.storage.escrow import StorageChain, shard_name
    from agents.storage.node.responder import NodeResponder
    from protocol.deployments import ENV_PATH as DEPLOYMENTS_ENV
    from protocol.deployments import connect, load_for
    from protocol.errors import ProtocolError

    try:
        w3 = connect(config.rpc_url)
        pinned = os.environ.get(DEPLOYMENTS_ENV)
        if config.marketplace and home is not None:
            deployment = open_deployment(
                w3, marketplace_url=config.marketplace, deployments=pinned, cache_dir=home
            )
        else:
            deployment = load_for(w3)
        chain = StorageChain.connect(w3, deployment, account)
    except (ProtocolError, AgentError) as exc:
        logger.warning("audits are off: %s", exc)
        return None
    responder = NodeResponder(chain, lambda key: store.read(shard_name(key)))
    logger.info("answering storage audits on chain %s", w3.eth.chain_id)
    return threading.Thread(target=responder.run, args=(stop,), name="audits", daemon=True)


def run_node(home: Path, *, password: str | None = None) -> None:
    """Serve shards until interrupted (SIGINT/SIGTERM), heartbeating meanwhile."""
    config = load_config(home)
    account = keys.load(home / KEYSTORE, password)
    store = open_store(home, config)
    sock = _bind(config.host, config.port)
    app = create_node_app(
        store, address=account.address, endpoint=config.endpoint, limiter=config.rate_limiter()
    )
    stop = threading.Event()
    threads: list[threading.Thread] = []
    if config.marketplace:
        beats = Heartbeats(config, account, store)
        threads.append(
            threading.Thread(target=beats.run, args=(stop,), name="heartbeat", daemon=True)
        )
    else:
        logger.warning("no marketplace configured: the node is reachable only by its endpoint")
    responder = start_audit_responder(config, account, store, stop, home=home)
    if responder is not None:
        threads.append(responder)
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, timeout_keep_alive=30)
    )
    _write_json(
        home / RUNTIME, {"pid": os.getpid(), "endpoint": config.endpoint, "at": time.time()}
    )
    for thread in threads:
        if not thread.is_alive():
            thread.start()
    logger.info(
        "storage node %s serving %s (quota %d bytes, %d used)",
        account.address,
        config.endpoint,
        config.quota_bytes,
        store.used_bytes,
    )
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        (home / RUNTIME).unlink(missing_ok=True)
        sock.close()


def runtime(home: Path) -> dict[str, object] | None:
    """The running node's pid and endpoint, or None when it is not running."""
    try:
        info = json.loads((home / RUNTIME).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(info)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another node running "
            "there? change port in node.json"
        ) from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _write_json(path: Path, body: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)
