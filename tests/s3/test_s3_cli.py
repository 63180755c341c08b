"""The aws CLI, unmodified, against `dcloud s3 serve`: mb, sync, change, sync back, cp, ls, rm."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.s3.gateway import Gateway

pytestmark = pytest.mark.integration


def aws(gateway: Gateway, key: tuple[str, str], *args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", gateway.url, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"aws {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def tree(root: Path) -> None:
    files = {
        "a.txt": b"alpha\n",
        "sub/b.bin": os.urandom(300_000),
        "sub/deeper/c.bin": os.urandom(9 * 2**20),  # above the CLI's 8 MB multipart threshold
        "sub/deeper/empty": b"",
        "with space/d é.txt": b"unicode name",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def same_tree(a: Path, b: Path) -> bool:
    left = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    right = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return left == right and all(filecmp.cmp(a / p, b / p, shallow=False) for p in left)


def test_sync_up_change_and_back_down_gives_every_byte(
    gateway: Gateway, key: tuple[str, str], tmp_path: Path
) -> None:
    up, down = tmp_path / "up", tmp_path / "down"
    tree(up)
    aws(gateway, key, "s3", "mb", "s3://cli-sync")
    aws(gateway, key, "s3", "sync", str(up), "s3://cli-sync/backup/")
    listing = aws(gateway, key, "s3", "ls", "--recursive", "s3://cli-sync/")
    assert "backup/sub/deeper/c.bin" in listing and "backup/with space/d é.txt" in listing

    (up / "a.txt").write_bytes(b"alpha, changed and longer\n")
    (up / "new.txt").write_bytes(b"new file\n")
    (up / "sub" / "b.bin").unlink()
    out = aws(gateway, key, "s3", "sync", "--delete", str(up), "s3://cli-sync/backup/")
    assert "upload: " in out and "delete: s3://cli-sync/backup/sub/b.bin" in out
    assert "c.bin" not in out  # unchanged files are not sent again

    aws(gateway, key, "s3", "sync", "s3://cli-sync/backup/", str(down))
    assert same_tree(up, down)

    aws(gateway, key, "s3", "cp", str(up / "new.txt"), "s3://cli-sync/one.txt")
    aws(gateway, key, "s3", "cp", "s3://cli-sync/one.txt", str(tmp_path / "one.txt"))
    assert (tmp_path / "one.txt").read_bytes() == b"new file\n"
    aws(gateway, key, "s3", "rm", "--recursive", "s3://cli-sync/")
    aws(gateway, key, "s3", "rb", "s3://cli-sync")
    assert "cli-sync" not in aws(gateway, key, "s3", "ls")


def test_s3api_put_and_head_through_the_cli(
    gateway: Gateway, key: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"s3api body")
    aws(gateway, key, "s3api", "create-bucket", "--bucket", "cli-api")
    aws(
        gateway,
        key,
        "s3api",
        "put-object",
        "--bucket",
        "cli-api",
        "--key",
        "k",
        "--body",
        str(tmp_path / "f"),
        "--content-type",
        "text/plain",
    )
    head = aws(gateway, key, "s3api", "head-object", "--bucket", "cli-api", "--key", "k")
    assert '"ContentType": "text/plain"' in head and '"ContentLength": 10' in head
    aws(gateway, key, "s3api", "delete-object", "--bucket", "cli-api", "--key", "k")
    aws(gateway, key, "s3api", "delete-bucket", "--bucket", "cli-api")
