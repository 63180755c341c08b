"""`dcloud file ...` end to end: a renter's commands as processes, against the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.agents.storage.network import ROOT, Network, account, env, write_keystore

pytestmark = pytest.mark.integration


def dcloud(*args: str, market: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents", "file", *args, "--home", str(home)],
        env={**env(), "DCLOUD_MARKETPLACE_URL": market},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_put_ls_get_health_repair_rm_from_the_command_line(tmp_path, network: Network):
    home = tmp_path / "renter"
    write_keystore(home / "key.json", account("cli-renter"))
    src = tmp_path / "notes.txt"
    src.write_bytes(b"spare disk helps, even 10 megs of it\n" * 1000)
    url = network.market.url

    put = dcloud("put", str(src), "--k", "4", "--n", "6", market=url, home=home)
    assert put.returncode == 0, put.stderr
    assert "stored 'notes.txt'" in put.stdout and "on 6 nodes" in put.stdout

    ls = dcloud("ls", market=url, home=home)
    assert "notes.txt" in ls.stdout and "4/6" in ls.stdout

    out = tmp_path / "copy.txt"
    get = dcloud("get", "notes.txt", "-o", str(out), market=url, home=home)
    assert get.returncode == 0, get.stderr
    assert out.read_bytes() == src.read_bytes()

    again = dcloud("get", "notes.txt", "-o", str(out), market=url, home=home)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr

    health = dcloud("health", market=url, home=home)
    assert "notes.txt: healthy, at least 6 of 6" in health.stdout

    repair = dcloud("repair", "notes.txt", market=url, home=home)
    assert repair.returncode == 0 and "0 shards rebuilt" in repair.stdout

    rm = dcloud("rm", "notes.txt", market=url, home=home)
    assert rm.returncode == 0 and "6 shards deleted" in rm.stdout
    assert "no stored objects" in dcloud("ls", market=url, home=home).stdout


def test_errors_are_one_line_without_a_traceback(tmp_path, network: Network):
    home = tmp_path / "renter"
    url = network.market.url
    no_key = dcloud("ls", market=url, home=home)
    assert no_key.returncode == 1 and "dcloud file init" in no_key.stderr
    write_keystore(home / "key.json", account("cli-renter-2"))
    missing = dcloud("put", str(tmp_path / "absent"), market=url, home=home)
    assert missing.returncode == 1 and "no file at" in missing.stderr
    unknown = dcloud("get", "ghost", market=url, home=home)
    assert unknown.returncode == 1 and "no stored object named 'ghost'" in unknown.stderr
    bad_code = dcloud("put", str(home / "key.json"), "--k", "6", "--n", "6", market=url, home=home)
    assert bad_code.returncode == 1 and "1 <= k < n" in bad_code.stderr
    for r in (no_key, missing, unknown, bad_code):
        assert "Traceback" not in r.stderr


def test_init_creates_the_renter_key_once(tmp_path):
    home = tmp_path / "renter"
    first = dcloud("init", market="http://127.0.0.1:1", home=home)
    assert first.returncode == 0 and "created" in first.stdout
    second = dcloud("init", market="http://127.0.0.1:1", home=home)
    assert second.returncode == 0 and "already set up" in second.stdout
