"""`dcloud image push | ls | rm` as a renter runs them, against the real engine and real
storage nodes (in process, through typer's runner); errors, as a process, are one line
that says what to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner, Result

from agents.errors import UserError
from agents.image.cli import app
from tests.agents.storage.network import ROOT, Network, account, env, write_keystore
from tests.agents.test_image_push import network  # noqa: F401 - the module's network fixture
from tests.renter_images import build_image

pytestmark = pytest.mark.integration


def run(*args: str, home: Path) -> Result:
    """One command in this process (its errors stay exceptions on the result)."""
    return CliRunner().invoke(app, [*args, "--home", str(home)], env=env())


def dcloud(*args: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """One command as the renter's process: `python -m agents image ...`."""
    return subprocess.run(
        [sys.executable, "-m", "agents", "image", *args, "--home", str(home)],
        env={**env(), "COLUMNS": "200", **extra},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def renter_folder(tmp_path: Path, network: Network, name: str) -> Path:  # noqa: F811
    home = tmp_path / "renter"
    write_keystore(home / "keystore.json", account(name))
    config = {"marketplace_url": network.market.url, "rpc_url": "http://127.0.0.1:1"}
    (home / "renter.json").write_text(json.dumps(config))
    return home


def test_push_ls_rm_from_the_command_line(
    tmp_path: Path,
    network: Network,  # noqa: F811
    docker_engine: docker.DockerClient,
    job_images: list[str],
) -> None:
    home = renter_folder(tmp_path, network, "cli-image-renter")
    digest = build_image(docker_engine, "itest/cli-app:1", {"run.sh": b"#!/bin/sh\necho hi\n"})
    build_image(docker_engine, "itest/cli-other:2", {"other.sh": b"#!/bin/sh\necho other\n"})

    empty = run("ls", home=home)
    assert empty.exit_code == 0 and "no pushed images" in empty.output

    pushed = run("push", "itest/cli-app:1", "--k", "2", "--n", "4", home=home)
    assert pushed.exit_code == 0, pushed.output
    assert f"itest/cli-app:1 {digest[:19]}… stored (" in pushed.output
    assert "shared (0 layers already stored)" in pushed.output
    other = run("push", "itest/cli-other:2", "--k", "2", "--n", "4", home=home)
    assert other.exit_code == 0, other.output
    assert "stored (1 layer," in other.output and "layers already stored)" in other.output

    listed = run("ls", home=home)
    assert listed.exit_code == 0
    assert "itest/cli-app:1" in listed.output and digest[7:19] in listed.output
    assert "itest/cli-other:2" in listed.output

    removed = run("rm", "itest/cli-app:1", home=home)
    assert removed.exit_code == 0, removed.output
    assert "removed itest/cli-app:1" in removed.output
    assert "1 layer deleted from the network" in removed.output
    after = run("ls", home=home)
    assert "itest/cli-app:1" not in after.stdout and "itest/cli-other:2" in after.stdout


def test_errors_are_one_line_that_says_how_to_fix_it(
    tmp_path: Path,
    network: Network,  # noqa: F811
    docker_engine: docker.DockerClient,
) -> None:
    no_config = dcloud("ls", home=tmp_path / "nobody")
    assert no_config.returncode == 1 and "dcloud job init" in no_config.stderr
    home = renter_folder(tmp_path, network, "cli-image-renter-2")
    missing = dcloud("push", "itest/never-built:3", home=home)
    assert missing.returncode == 1
    assert "no image itest/never-built:3 in your Docker engine" in missing.stderr
    assert "docker build -t itest/never-built:3 ." in missing.stderr
    for r in (no_config, missing):
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) <= 2  # one line, maybe wrapped once
    unknown = run("rm", "itest/ghost:1", home=home)
    assert isinstance(unknown.exception, UserError)
    assert "`dcloud image ls` lists yours" in str(unknown.exception)
