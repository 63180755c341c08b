"""Fixtures every test folder may use: the real Docker engine and the local job images."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKER_SOCKET = "unix:///var/run/docker.sock"


def _tool(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "tools" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """A client of a running Docker engine, started for this session if none runs.

    `tools/dockerd.sh start --for <this process>` holds the engine while the session runs;
    at the end, `stop --for` stops it only if the script started it and nobody else (the
    devnet, another test session) holds it. Fails, never skips, when no engine can run.
    """
    holder = str(os.getpid())
    started = _tool("dockerd.sh", "start", "--for", holder, timeout=90)
    if started.returncode != 0:
        pytest.fail(
            "the Docker engine could not be started (tools/dockerd.sh start): "
            + (started.stdout + started.stderr).strip(),
            pytrace=False,
        )
    client = docker.DockerClient(base_url=DOCKER_SOCKET, timeout=30)
    try:
        yield client
    finally:
        client.close()
        _tool("dockerd.sh", "stop", "--for", holder, timeout=90)


@pytest.fixture(scope="session")
def job_images(docker_engine: docker.DockerClient) -> list[str]:
    """The local job images (dcloud/busybox:1, dcloud/python:3.11), built if missing."""
    built = _tool("images.sh", timeout=900)
    if built.returncode != 0:
        pytest.fail(
            "the job images could not be built (tools/images.sh): "
            + (built.stdout + built.stderr).strip(),
            pytrace=False,
        )
    return ["dcloud/busybox:1", "dcloud/python:3.11"]
