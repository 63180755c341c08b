"""S3 benchmark: boto3 through ``dcloud s3 serve`` beside the direct storage client.

Run from the repository root::

    .venv/bin/python -m bench.s3            # 256 MB
    .venv/bin/python -m bench.s3 --quick    # 64 MB (CI)

A marketplace and 8 storage-node processes on loopback (``bench.storage.LocalNetwork``),
k=5 of n=8 as in the storage bench, and ``dcloud s3 serve`` as its own process for the
same renter. In one run, on the same file of random bytes:

- ``put``: boto3's ``upload_file`` (its transfer manager: 8 MiB parts, 10 threads, each
  part streamed through the gateway into the storage client) against
  ``StorageClient.put`` of the same file (what ``dcloud file put`` runs): ``MBps``,
  ``direct_MBps`` and ``ratio_to_direct`` (target >= 0.8).
- ``get``: boto3's ``download_file`` (ranged GETs in parallel, each fetching only its
  segments) against ``StorageClient.get``; both files compared with the source.
- ``put-stream`` / ``get-stream``: one PutObject of the whole file (a single streamed
  body) and one GetObject streamed to a file, against the same direct figures.
- ``put-4KiB`` / ``get-4KiB``: one-at-a-time PutObject / GetObject of 4 KiB objects
  through boto3 (each a stored, erasure-coded object), in operations per second, beside
  ``put_bytes`` / ``get_bytes`` of the direct client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from eth_account import Account
from eth_utils import keccak

from agents.devnet.procs import free_port
from agents.s3.app import keyring
from agents.storage.files.client import StorageClient
from bench.report import print_table, write_results
from bench.storage import (
    IO_K,
    IO_N,
    NODES,
    PASSWORD,
    ROOT,
    LocalNetwork,
    _die_with_parent,
    _same,
    _write_random,
)

SMALL = 4096
KEYS = ["op", "size_MB", "MBps", "direct_MBps", "ops_per_s", "direct_ops_per_s", "ratio_to_direct"]
PART = 8 * 2**20


class Server:
    """`dcloud s3 serve` for the renter in `home`."""

    def __init__(self, home: Path, market: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DCLOUD_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
        args = [f"--home={home}", f"--marketplace={market}", f"--port={self.port}"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agents",
                "s3",
                "serve",
                *args,
                "--k",
                str(IO_K),
                "--n",
                str(IO_N),
            ],
            env=env,
            stdout=open(home / "s3.log", "ab"),  # noqa: SIM115 - lives as long as the process
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        key = keyring(home).create("bench")
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                self.client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one_round(
    direct: StorageClient,
    s3: Any,
    src: Path,
    out: Path,
    transfer: TransferConfig,
    keep: Callable[[str, float], None],
    *,
    tag: str,
) -> None:
    """Each side once on the same file: put, put as one stream, get, get as one stream."""
    keep("direct_put", _timed(lambda: direct.put(src, name=f"d{tag}", k=IO_K, n=IO_N)))
    keep("s3_put", _timed(lambda: s3.upload_file(str(src), "bench", f"u{tag}", Config=transfer)))
    with open(src, "rb") as fh:
        keep("s3_put_stream", _timed(lambda: s3.put_object(Bucket="bench", Key=f"p{tag}", Body=fh)))
    keep("direct_get", _timed(lambda: direct.get(f"d{tag}", out, overwrite=True)))
    assert _same(src, out), "the direct get returned other bytes"
    keep("s3_get", _timed(lambda: s3.download_file("bench", f"u{tag}", str(out), Config=transfer)))
    assert _same(src, out), "the S3 get returned other bytes"
    with open(out, "wb") as fh:
        keep("s3_get_stream", _timed(lambda: s3.download_fileobj("bench", f"p{tag}", fh)))
    assert _same(src, out), "the S3 streamed get returned other bytes"
    direct.rm(f"d{tag}")
    s3.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": f"u{tag}"}, {"Key": f"p{tag}"}]})


def run(size: int, small_ops: int, repeat: int) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="dcloud-bench-s3-"))
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(seconds, best.get(name, float("inf")))

    try:
        src, out = folder / "data.bin", folder / "out.bin"
        _write_random(src, size)
        net = LocalNetwork(folder, NODES, quota=8 * size)
        home = folder / "renter"
        home.mkdir()
        renter = Account.from_key(keccak(text="bench-s3-renter"))
        keystore = Account.encrypt(renter.key, PASSWORD, kdf="scrypt", iterations=2**10)
        (home / "key.json").write_text(json.dumps(keystore))
        server = None
        try:
            server = Server(home, net.url)
            s3 = server.client
            s3.create_bucket(Bucket="bench")
            transfer = TransferConfig(
                multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=10
            )
            with StorageClient(home=folder / "direct", account=renter, marketplace=net.url) as c:
                for i in range(repeat):  # alternating sides, best of each: the machine is shared
                    one_round(c, s3, src, out, transfer, keep, tag=str(i))
                blob = os.urandom(SMALL)
                names = [f"small/{i:05d}" for i in range(small_ops)]
                few = names[: max(1, small_ops // 4)]  # the direct client finds names by a scan
                keep(
                    "direct_small_put",
                    _timed(lambda: [c.put_bytes(blob, name=n, k=IO_K, n=IO_N) for n in names]),
                )
                keep(
                    "s3_small_put",
                    _timed(
                        lambda: [s3.put_object(Bucket="bench", Key=n, Body=blob) for n in names]
                    ),
                )
                keep("direct_small_get", _timed(lambda: [c.get_bytes(n) for n in few]))
                keep(
                    "s3_small_get",
                    _timed(
                        lambda: [s3.get_object(Bucket="bench", Key=n)["Body"].read() for n in names]
                    ),
                )
        finally:
            if server is not None:
                server.stop()
            net.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    mb = size / 1e6

    def row(op: str, ours: str, theirs: str) -> dict[str, Any]:
        return {
            "op": op,
            "size_MB": mb,
            "MBps": mb / best[ours],
            "direct_MBps": mb / best[theirs],
            "ratio_to_direct": best[theirs] / best[ours],
        }

    small_put, direct_small_put = (
        small_ops / best["s3_small_put"],
        small_ops / best["direct_small_put"],
    )
    small_get, direct_small_get = (
        small_ops / best["s3_small_get"],
        len(few) / best["direct_small_get"],
    )
    return [
        row("put", "s3_put", "direct_put"),
        row("get", "s3_get", "direct_get"),
        row("put-stream", "s3_put_stream", "direct_put"),
        row("get-stream", "s3_get_stream", "direct_get"),
        {"op": "put-4KiB", "ops_per_s": small_put, "direct_ops_per_s": direct_small_put,
         "ratio_to_direct": small_put / direct_small_put},
        {"op": "get-4KiB", "ops_per_s": small_get, "direct_ops_per_s": direct_small_get,
         "ratio_to_direct": small_get / direct_small_get},
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="S3 gateway throughput beside the direct client")
    parser.add_argument("--quick", action="store_true", help="64 MB, once (CI)")
    args = parser.parse_args(argv)
    size = (64 if args.quick else 256) * 10**6
    small_ops = 100 if args.quick else 300
    repeat = 1 if args.quick else 3
    print(
        f"S3: {size // 10**6} MB and {small_ops} x 4 KiB through {NODES} local nodes ...",
        flush=True,
    )
    rows = [{key: row.get(key) for key in KEYS} for row in run(size, small_ops, repeat)]
    print_table(rows, title="S3 gateway (boto3) vs the direct storage client")
    write_results(
        "s3",
        rows,
        title="S3 (boto3 through dcloud s3 serve vs the direct storage client)",
        notes=(
            f"a marketplace, {NODES} storage-node processes and dcloud s3 serve on loopback, "
            f"k={IO_K} n={IO_N}; best of {repeat} alternating runs per side. put: boto3 "
            "upload_file (8 MiB parts, 10 threads) vs StorageClient.put of the same file "
            "(what dcloud file put runs); get: boto3 download_file (parallel ranged GETs) vs "
            "StorageClient.get; put-stream / get-stream: one PutObject of the whole file and "
            "one streamed GetObject; every read compared byte for byte. 4 KiB rows: one "
            "request at a time, each object stored erasure-coded; the direct client finds a "
            "name by scanning its records, so its get reads a quarter of the objects. "
            "Everything shares the machine's 2 cores (with whatever else runs on it)."
        ),
    )


if __name__ == "__main__":
    main()
