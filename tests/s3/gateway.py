"""`dcloud s3 serve` as a process over real storage nodes, and the clients tests use on it."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.agents.storage.network import ROOT, _stop, account, env, free_port, write_keystore

RENTER = "s3-renter"
K, N = 3, 5
REGION = "us-east-1"


def dcloud(*args: str, home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agents", *args, "--home", str(home)],
        env=env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def make_key(home: Path, name: str, *buckets: str) -> tuple[str, str]:
    """`dcloud s3 keys create`: (access key id, secret)."""
    args = ["s3", "keys", "create", name] + [f"--bucket={b}" for b in buckets]
    out = dcloud(*args, home=home)
    key_id = re.search(r"access key id:\s+(\S+)", out)
    secret = re.search(r"secret access key:\s+(\S+)", out)
    assert key_id and secret, out
    return key_id.group(1), secret.group(1)


class Gateway:
    """`dcloud s3 serve` for the renter in `home`, on a free loopback port."""

    def __init__(self, home: Path, *, market: str, tls: tuple[Path, Path] | None = None) -> None:
        if not (home / "key.json").exists():
            write_keystore(home / "key.json", account(RENTER))
        self.home = home
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        args = [f"--home={home}", f"--marketplace={market}", f"--port={self.port}"]
        args += ["--k", str(K), "--n", str(N)]
        if tls:
            args += [f"--tls-cert={tls[0]}", f"--tls-key={tls[1]}"]
        self.log = home / f"s3-{self.port}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents", "s3", "serve", *args],
                env=env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # Any answer means it listens; an unsigned request gets S3's AccessDenied (403).
        _wait_http_any(self.url, self.proc, verify=str(tls[0]) if tls else None)

    def client(self, key: tuple[str, str], **config: Any) -> Any:
        return s3_client(self.url, key, **config)

    def stop(self) -> None:
        _stop(self.proc)


def s3_client(
    endpoint: str, key: tuple[str, str], *, verify: str | None = None, **config: Any
) -> Any:
    """boto3's S3 client as a user makes it: path-style, SigV4 everywhere (presigned URLs
    too: boto3 presigns SigV2 otherwise), unless `config` says otherwise."""
    settings: dict[str, Any] = {
        "s3": {"addressing_style": "path"},
        "signature_version": "s3v4",
        "retries": {"max_attempts": 2, "mode": "standard"},
    }
    settings.update(config)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name=REGION,
        verify=verify,
        config=Config(**{k: v for k, v in settings.items() if v is not None}),
    )


def _wait_http_any(url: str, proc: subprocess.Popen[bytes], verify: str | None) -> None:
    import contextlib
    import time

    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dcloud s3 serve exited with {proc.returncode}; see its log")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(
                url, timeout=1, verify=ssl.create_default_context(cafile=verify) if verify else True
            )
            return
        time.sleep(0.05)
    raise RuntimeError(f"dcloud s3 serve did not answer at {url}")
