"""A throwaway PostgreSQL server: Debian's packages, started by hand on loopback.

:func:`running` installs PostgreSQL with apt-get when ``initdb``/``pg_ctl`` are missing,
creates a cluster in a temporary folder owned by the ``postgres`` user (PostgreSQL refuses
to run as root), starts it on 127.0.0.1 on a free port with its unix socket in that folder
(no systemd), and at the end stops it (``pg_ctl stop -m fast``) and removes the folder.
Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is
thrown away. The test fixtures (tests/marketplace/pg.py) and the scale bench share it;
failures raise :class:`PostgresError` saying what to do.
"""

from __future__ import annotations

import contextlib
import glob
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

USER = "postgres"
_CHAIN_PORTS = range(8545, 8560)  # kept free for local chains


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, installed, initialised or started."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    bindir: Path
    root: Path

    def url(self, database: str) -> str:
        """SQLAlchemy URL of `database` on this server."""
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def conninfo(self, database: str) -> str:
        return f"host={self.host} port={self.port} user={USER} dbname={database}"


def bindir() -> Path | None:
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


def install() -> None:
    """Install Debian's postgresql package (needs root)."""
    if os.geteuid() != 0:
        raise PostgresError(
            "PostgreSQL (initdb, pg_ctl) is not installed and installing it needs root: "
            "run `apt-get install postgresql` as root, or run as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "postgresql"],
    ):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(f"cannot install PostgreSQL: {' '.join(command)}: {exc}") from exc
        if done.returncode != 0:
            raise PostgresError(
                f"cannot install PostgreSQL: `{' '.join(command)}` exited with "
                f"{done.returncode}:\n{done.stderr.strip()[-2000:]}"
            )


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _CHAIN_PORTS:
            return port


def as_postgres(command: list[str]) -> list[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", USER, "--", *command]
    return ["su", USER, "-s", "/bin/sh", "-c", " ".join(command)]


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            as_postgres(command), capture_output=True, text=True, timeout=120, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresError(f"PostgreSQL {what} failed: {exc}") from exc
    if done.returncode != 0:
        raise PostgresError(
            f"PostgreSQL {what} failed ({done.returncode}): {(done.stdout + done.stderr).strip()}"
        )


@contextlib.contextmanager
def running(*, max_connections: int = 100, extra: str = "") -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 while the block runs (see the module docstring).

    `extra` adds ``-c name=value`` server options.
    """
    found = bindir()
    if found is None:
        install()
        found = bindir()
        if found is None:
            raise PostgresError(
                "installed Debian's postgresql but found no initdb/pg_ctl on PATH or under "
                "/usr/lib/postgresql/*/bin"
            )
    root = Path(tempfile.mkdtemp(prefix="dcloud-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(USER)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresError(
                f"no `{USER}` system user to run PostgreSQL as (Debian's postgresql package "
                "creates it); reinstall the package"
            ) from None
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()
    started = False
    try:
        _run(
            [str(found / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8"],
            "initdb",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={max_connections} {extra}"
        ).strip()
        _run(
            [str(found / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
            f"start (log: {log})",
        )
        started = True
        yield PostgresServer(host="127.0.0.1", port=port, bindir=found, root=root)
    finally:
        if started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    as_postgres(
                        [str(found / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                    ),
                    capture_output=True,
                    timeout=60,
                    cwd="/",
                )
        shutil.rmtree(root, ignore_errors=True)
