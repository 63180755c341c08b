"""Storage benchmark: the erasure codec beside a memory copy, put/get beside a disk copy.

Run from the repository root::

    .venv/bin/python -m bench.storage            # 256 MB through 8 node processes
    .venv/bin/python -m bench.storage --quick    # 32 MB (CI)

Rows:

- ``codec``: pyeclib ``isa_l_rs_vand`` through ``agents.storage.codec.Coder`` on one
  core, k=8 n=12 and k=10 n=30, 4 MiB segments of random bytes. ``encode_MBps`` is
  segment bytes encoded per second; ``decode_MBps`` decodes from the last k shards (all
  the parity there is, so real decoding work, not the copy of the data shards);
  ``memcpy_MBps`` copies the same segment in memory (the baseline). Best of several runs.
- ``segment-size``: encode at k=8 n=12 for 1-16 MiB segments: how the segment size was
  chosen (4 MiB: fast while shards stay few per byte).
- ``io``: a marketplace and 8 storage-node processes on loopback (``python -m agents node
  run``); the client puts then gets a file of random bytes (encrypt, encode, sign, upload,
  fsync on the nodes; fetch, verify, decode, decrypt, write), then gets it again with
  n-k nodes killed. ``disk_copy_MBps`` copies the same file on local disk with fsync (the
  baseline). k=5, n=8: 8 nodes can hold 8 distinct shards, and 3 may die.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_utils import keccak

from agents.storage.files import codec
from agents.storage.files.client import StorageClient
from agents.storage.node.run import init_node
from bench.report import print_table, write_results

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-storage"
IO_K, IO_N, NODES = 5, 8, 8
PLACES = [(52.5, 13.4), (48.9, 2.4), (40.4, -3.7), (51.5, -0.1), (40.7, -74.0),
          (35.7, 139.7), (-33.9, 151.2), (1.35, 103.8)]  # fmt: skip


_PRCTL = ctypes.CDLL(None).prctl  # looked up here: the child only calls it


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies."""
    _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def codec_row(k: int, n: int, segment: int, repeat: int) -> dict[str, Any]:
    data = os.urandom(segment)
    coder = codec.Coder(k, n)
    shards = coder.encode(data)
    tail = {i: shards[i] for i in range(n - k, n)}
    assert coder.decode(tail) == data
    enc = _best(lambda: coder.encode(data), repeat)
    dec = _best(lambda: coder.decode(tail), repeat)
    cpy = _best(lambda: bytes(bytearray(data)), repeat)
    return {
        "row": "codec",
        "k": k,
        "n": n,
        "segment_MiB": segment / 2**20,
        "encode_MBps": segment / enc / 1e6,
        "decode_MBps": segment / dec / 1e6,
        "memcpy_MBps": segment / cpy / 1e6,
        "encode_vs_memcpy": cpy / enc,
    }


# ---------------------------------------------------------------------- processes


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


class LocalNetwork:
    """A marketplace and storage nodes as processes in a temporary folder."""

    def __init__(self, folder: Path, nodes: int, quota: int) -> None:
        env = {**os.environ, "DCLOUD_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
        port = _port()
        self.url = f"http://127.0.0.1:{port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        log = open(folder / "processes.log", "ab")  # noqa: SIM115 - lives as long as they do
        self.market = subprocess.Popen(
            [sys.executable, "-m", "marketplace"],
            cwd=folder,
            env={**env, "DCLOUD_DATABASE_URL": f"sqlite:///{folder / 'm.db'}",
                 "DCLOUD_PORT": str(port), "DCLOUD_HEARTBEAT_INTERVAL_S": "1"},
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        self.endpoints: list[str] = []
        for i in range(nodes):
            home = folder / f"node{i}"
            acct = Account.from_key(keccak(text=f"bench-node-{i}"))
            home.mkdir()
            # a cheap keystore: the bench measures storage, not scrypt
            (home / "key.json").write_text(
                json.dumps(Account.encrypt(acct.key, PASSWORD, kdf="scrypt", iterations=2**10))
            )
            cfg = init_node(home, password=PASSWORD, quota_bytes=quota, lat=PLACES[i][0],
                            lon=PLACES[i][1], marketplace=self.url, heartbeat_s=1.0)  # fmt: skip
            self.endpoints.append(cfg.endpoint)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "agents", "node", "run", "--home", str(home)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            )
        _wait(f"{self.url}/healthz", self.market)
        for endpoint, proc in zip(self.endpoints, self.procs, strict=True):
            _wait(f"{endpoint}/v1/health", proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = httpx.get(f"{self.url}/v1/storage/nodes", params={"online": True}).json()
            if items["total"] == nodes:
                return
            time.sleep(0.1)
        raise RuntimeError("storage nodes did not register")

    def kill(self, endpoint: str) -> None:
        proc = self.procs[self.endpoints.index(endpoint)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in [*self.procs, self.market]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.procs, self.market]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * 2**20))
            fh.write(chunk)
            left -= len(chunk)


def _same(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(8 << 20), fb.read(8 << 20)
            if x != y:
                return False
            if not x:
                return True


def io_row(size: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="dcloud-bench-storage-"))
    try:
        src, copy = folder / "data.bin", folder / "copy.bin"
        _write_random(src, size)
        start = time.perf_counter()
        shutil.copyfile(src, copy)
        with open(copy, "rb+") as fh:
            os.fsync(fh.fileno())
        disk = time.perf_counter() - start
        copy.unlink()
        net = LocalNetwork(folder, NODES, quota=size)
        try:
            renter = Account.from_key(keccak(text="bench-renter"))
            with StorageClient(home=folder / "renter", account=renter, marketplace=net.url) as c:
                start = time.perf_counter()
                c.put(src, k=IO_K, n=IO_N)
                put = time.perf_counter() - start
                out = folder / "out.bin"
                get = c.get("data.bin", out).seconds
                assert _same(src, out), "get returned other bytes"
                out.unlink()
                manifest = c.store.find("data.bin")
                shards = manifest.segments[0].shards
                for shard in shards[: IO_N - IO_K]:  # the data shards the reader prefers
                    net.kill(shard.endpoint)
                degraded = c.get("data.bin", out).seconds
                assert _same(src, out), "degraded get returned other bytes"
        finally:
            net.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "row": "io",
        "k": IO_K,
        "n": IO_N,
        "nodes": NODES,
        "nodes_down": IO_N - IO_K,
        "size_MB": size / 1e6,
        "put_MBps": size / put / 1e6,
        "get_MBps": size / get / 1e6,
        "get_degraded_MBps": size / degraded / 1e6,
        "disk_copy_MBps": size / disk / 1e6,
    }


KEYS = ["row", "k", "n", "segment_MiB", "encode_MBps", "decode_MBps", "memcpy_MBps",
        "encode_vs_memcpy", "put_MBps", "get_MBps", "get_degraded_MBps", "disk_copy_MBps",
        "nodes", "nodes_down", "size_MB"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Storage codec and put/get throughput")
    parser.add_argument("--quick", action="store_true", help="32 MB through the nodes (CI)")
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else 15
    rows = [codec_row(k, n, codec.SEGMENT_BYTES, repeat) for k, n in ((8, 12), (10, 30))]
    for mib in (1, 2, 8, 16):
        row = codec_row(8, 12, mib * 2**20, repeat)
        row["row"] = "segment-size"
        rows.append(row)
    size = (32 if args.quick else 256) * 10**6
    print(f"put/get of {size // 10**6} MB through {NODES} local nodes ...", flush=True)
    rows.append(io_row(size))
    rows = [{key: row.get(key) for key in KEYS} for row in rows]
    print_table(rows, title="Storage: codec vs memory copy, put/get vs disk copy")
    write_results(
        "storage",
        rows,
        title="Storage (erasure codec vs memory copy; put/get through local nodes vs disk copy)",
        notes=(
            "codec rows: one core, 4 MiB segments (segment-size rows: k=8 n=12 at other "
            "sizes), best of several runs; decode from the last k shards (parity included). "
            "io row: a marketplace and 8 storage-node processes on loopback, "
            f"k={IO_K} n={IO_N}; put = encrypt + encode + signed uploads, fsynced on the nodes; "
            "get = parallel fetch of the first k intact shards per segment, hash checks, "
            "decode, decrypt, write; degraded get after killing n-k nodes (those holding the "
            "data shards the reader prefers). disk_copy_MBps: the same file copied with fsync. "
            "Everything shares the machine's 2 cores."
        ),
    )


if __name__ == "__main__":
    main()
