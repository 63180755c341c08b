"""A throwaway PostgreSQL server for tests: Debian's packages, started by hand on loopback.

Import the fixtures into a test module (pytest does not load this file by itself)::

    from tests.marketplace.pg import postgres_server, postgres_url  # noqa: F401

``postgres_server`` (session) installs PostgreSQL with apt-get when ``initdb``/``pg_ctl``
are missing, creates a cluster in a temporary folder owned by the ``postgres`` user
(PostgreSQL refuses to run as root), starts it on 127.0.0.1 on a free port with its unix
socket in that folder, and at the end stops it (``pg_ctl stop -m fast``) and removes the
folder. ``postgres_url`` (function) is a fresh, empty database on that server for each test.
When PostgreSQL can be neither found nor installed, the tests fail and say why.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

USER = "postgres"
_CHAIN_PORTS = range(8545, 8560)  # kept free for local chains
_names = itertools.count()


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    bindir: Path

    def url(self, database: str) -> str:
        """SQLAlchemy URL of `database` on this server."""
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _conninfo(self, database: str) -> str:
        return f"host={self.host} port={self.port} user={USER} dbname={database}"


def _bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def _install() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "PostgreSQL (initdb, pg_ctl) is not installed and installing it needs root: "
            "run `apt-get install postgresql` as root, or run the tests as root",
            pytrace=False,
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "postgresql"],
    ):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"cannot install PostgreSQL: {' '.join(command)}: {exc}", pytrace=False)
        if done.returncode != 0:
            pytest.fail(
                f"cannot install PostgreSQL: `{' '.join(command)}` exited with "
                f"{done.returncode}:\n{done.stderr.strip()[-2000:]}",
                pytrace=False,
            )


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _CHAIN_PORTS:
            return port


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", USER, "--", *command]
    return ["su", USER, "-s", "/bin/sh", "-c", " ".join(command)]


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            _as_postgres(command), capture_output=True, text=True, timeout=120, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"PostgreSQL {what} failed: {exc}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"PostgreSQL {what} failed ({done.returncode}): {(done.stdout + done.stderr).strip()}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (see the module docstring)."""
    bindir = _bindir()
    if bindir is None:
        _install()
        bindir = _bindir()
        if bindir is None:
            pytest.fail(
                "installed Debian's postgresql but found no initdb/pg_ctl on PATH or under "
                "/usr/lib/postgresql/*/bin",
                pytrace=False,
            )
    root = Path(tempfile.mkdtemp(prefix="dcloud-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(USER)
        except KeyError:
            pytest.fail(
                f"no `{USER}` system user to run PostgreSQL as (Debian's postgresql package "
                "creates it); reinstall the package",
                pytrace=False,
            )
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    started = False
    try:
        _run(
            [str(bindir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8"],
            "initdb",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
            f"start (log: {log})",
        )
        started = True
        yield PostgresServer(host="127.0.0.1", port=port, bindir=bindir)
    finally:
        if started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    _as_postgres(
                        [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                    ),
                    capture_output=True,
                    timeout=60,
                    cwd="/",
                )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server, as a SQLAlchemy URL."""
    return postgres_server.create_database(f"dcloud_test_{os.getpid()}_{next(_names)}")
