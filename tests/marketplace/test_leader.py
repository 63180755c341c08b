"""One leader among marketplace replicas on one PostgreSQL (marketplace/leader.py).

The replica tests start two real marketplace processes (``python -m marketplace``) on one
real PostgreSQL server (tests/marketplace/pg.py): exactly one leads, the other refuses
placement with 503, and killing the leader hands the lead over. The Leadership tests
take the advisory lock from two engines in this process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from marketplace.leader import Leadership
from tests.marketplace.pg import postgres_server, postgres_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's PostgreSQL server."""
    return str(request.getfixturevalue("postgres_url"))


def test_sqlite_replica_always_leads(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'one.db'}")
    leadership = Leadership(engine)
    assert leadership.try_acquire()
    assert leadership.still_held()
    engine.dispose()


@pytest.mark.integration
def test_second_engine_cannot_take_the_lock_until_released(pg_url: str) -> None:
    first, second = create_engine(pg_url), create_engine(pg_url)
    a, b = Leadership(first), Leadership(second)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        assert a.still_held()
        a.release()
        assert not a.leading
        assert b.try_acquire()
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()
        first.dispose()
        second.dispose()


@pytest.mark.integration
def test_exactly_one_replica_leads_and_the_other_takes_over_when_it_dies(
    pg_url: str, tmp_path: Path
) -> None:
    with _replicas(pg_url, tmp_path, count=2) as replicas:
        leaders = _wait_for_one_leader(replicas)
        (leader,) = leaders
        (follower,) = [r for r in replicas if r is not leader]

        refused = httpx.post(f"{follower.url}/v1/services", json={}, timeout=10)
        assert refused.status_code == 503
        assert "this replica follows" in refused.json()["detail"]
        # the follower still serves reads and writes that any replica may take
        assert httpx.get(f"{follower.url}/v1/providers", timeout=10).status_code == 200

        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(timeout=30)
        assert _wait_for_one_leader([follower]) == [follower]
        taken = httpx.post(f"{follower.url}/v1/services", json={}, timeout=10)
        assert taken.status_code == 422  # past the guard: the body itself is refused


class Replica:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc

    def leads(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v1/leader", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


def _wait_for_one_leader(replicas: list[Replica]) -> list[Replica]:
    """Wait until every replica answers and exactly one leads; that one, in a list."""
    deadline = time.monotonic() + WAIT_S
    leaders: list[Replica] = []
    while time.monotonic() < deadline:
        up = []
        for r in replicas:
            try:
                up.append(httpx.get(f"{r.url}/v1/leader", timeout=5).status_code)
            except httpx.HTTPError:
                up.append(0)
        leaders = [r for r, status in zip(replicas, up, strict=True) if status == 200]
        if 0 not in up and len(leaders) == 1:
            return leaders
        time.sleep(0.2)
    pytest.fail(f"no single leader within {WAIT_S:g} s: {len(leaders)} leading")


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not 8545 <= port <= 8559:
            return port


@contextmanager
def _replicas(url: str, workdir: Path, *, count: int) -> Iterator[list[Replica]]:
    """Start `count` marketplace processes on one database; stop them (by PID) after."""
    replicas: list[Replica] = []
    try:
        for i in range(count):
            port = _free_port()
            env = {
                **os.environ,
                "DCLOUD_DATABASE_URL": url,
                "DCLOUD_PORT": str(port),
                "DCLOUD_HOST": "127.0.0.1",
            }
            env.pop("DCLOUD_RPC_URL", None)
            with open(workdir / f"replica-{i}.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "marketplace"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            replicas.append(Replica(port, proc))
        yield replicas
    finally:
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGINT)
        for r in replicas:
            try:
                r.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
