"""Real processes for storage tests: a marketplace and storage nodes on loopback ports.

Keystores are written with a small scrypt cost so a dozen nodes start quickly; the
code under test reads them like any other keystore.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.devnet.procs import free_port
from agents.storage.node.run import init_node

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "storage-test-password"
READY_TIMEOUT_S = 120.0

# Places in different bundled price regions, so placement can spread shards.
PLACES = [
    (52.52, 13.40),
    (48.86, 2.35),
    (40.42, -3.70),
    (51.51, -0.13),
    (59.33, 18.07),
    (41.90, 12.50),
    (40.71, -74.01),
    (34.05, -118.24),
    (35.68, 139.69),
    (-33.87, 151.21),
    (1.35, 103.82),
    (-23.55, -46.63),
    (19.43, -99.13),
    (28.61, 77.21),
]


_PRCTL = ctypes.CDLL(None).prctl  # looked up here: the child only calls it


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies."""
    _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def account(name: str) -> LocalAccount:
    return Account.from_key(keccak(text=name))


def write_keystore(path: Path, acct: LocalAccount) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(acct.key, PASSWORD, kdf="scrypt", iterations=2**10)))


def env() -> dict[str, str]:
    return {**os.environ, "DCLOUD_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {proc.returncode} before answering; see its log"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer at {url} within {READY_TIMEOUT_S} s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Marketplace:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.log = open(folder / "marketplace.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "marketplace"],
            cwd=folder,
            env={
                **env(),
                "DCLOUD_DATABASE_URL": f"sqlite:///{folder / 'market.db'}",
                "DCLOUD_PORT": str(self.port),
                "DCLOUD_HEARTBEAT_INTERVAL_S": "1",
                "DCLOUD_OFFLINE_AFTER_S": "4",
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self) -> None:
        _wait_http(f"{self.url}/healthz", self.proc, "marketplace")

    def nodes(self) -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(
            f"{self.url}/v1/storage/nodes", params={"limit": 1000}
        ).json()["items"]
        return items

    def node(self, address: str) -> dict[str, object]:
        body: dict[str, object] = httpx.get(f"{self.url}/v1/storage/nodes/{address}").json()
        return body

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


class Node:
    """One storage node process in its own folder."""

    def __init__(
        self, home: Path, *, name: str, market: str | None, quota: int, place: tuple[float, float]
    ) -> None:
        self.home = home
        self.account = account(name)
        self.address = self.account.address
        write_keystore(home / "key.json", self.account)
        self.config = init_node(
            home,
            password=PASSWORD,
            quota_bytes=quota,
            lat=place[0],
            lon=place[1],
            marketplace=market,
            heartbeat_s=1.0,
        )
        self.endpoint = self.config.endpoint
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "node.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents", "node", "run", "--home", str(self.home)],
                env=env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self) -> None:
        assert self.proc is not None
        _wait_http(f"{self.endpoint}/v1/health", self.proc, f"node {self.home.name}")

    def kill(self) -> None:
        """SIGKILL: the node vanishes without a goodbye."""
        if self.proc is not None:
            _stop(self.proc, signal.SIGKILL)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, int]:
        body: dict[str, int] = httpx.get(f"{self.endpoint}/v1/health", timeout=5).json()
        return body

    def shard_files(self) -> list[Path]:
        return sorted(p for p in (self.home / "shards").glob("??/*") if p.suffix != ".json")


class Network:
    """A marketplace and storage nodes; nodes that a test stops are restarted by `down`."""

    def __init__(self, folder: Path, *, nodes: int, quota: int = 200 * 10**6) -> None:
        self.market = Marketplace(folder / "marketplace")
        self.nodes = [
            Node(
                folder / f"node{i:02d}",
                name=f"storage-node-{i}",
                market=self.market.url,
                quota=quota,
                place=PLACES[i % len(PLACES)],
            )
            for i in range(nodes)
        ]
        try:
            for node in self.nodes:  # nodes retry their registration until the market answers
                node.start()
            self.market.wait_ready()
            for node in self.nodes:
                node.wait_ready()
            self.wait_online()
        except BaseException:
            self.stop()
            raise

    def by_address(self, address: str) -> Node:
        return next(n for n in self.nodes if n.address == address)

    def wait_online(self) -> None:
        """Until the marketplace lists every running node online and no stopped one."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        want = {n.address for n in self.nodes if n.running}
        while time.monotonic() < deadline:
            online = {str(n["address"]) for n in self.market.nodes() if n["online"]}
            if online == want:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the marketplace did not see nodes {sorted(want)} online")

    @contextlib.contextmanager
    def down(self, nodes: list[Node], *, kill: bool = True) -> Iterator[None]:
        """Nodes stopped (SIGKILL by default) for the block; restarted after it."""
        try:
            for node in nodes:
                node.kill() if kill else node.stop()
            yield
        finally:
            for node in nodes:
                if not node.running:
                    node.start()
            for node in nodes:
                node.wait_ready()
            self.wait_online()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.market.stop()
