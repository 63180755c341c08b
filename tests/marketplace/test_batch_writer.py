"""Writes applied together by the batch writer (marketplace.store.batch), and heartbeats
sent at once through the API, on a real SQLite file."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.app import create_app
from marketplace.errors import ConflictError
from marketplace.settings import Settings
from marketplace.store.batch import BatchWriter
from marketplace.store.db import make_engine, migrate, session_factory
from marketplace.store.models import ProviderRow, SignerClock
from protocol import purposes
from tests.marketplace.api.conftest import account, registration, signed

T = TypeVar("T")


def run_apart(make: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run a coroutine to its end in a thread of its own: the suite's browser tests leave
    an event loop running in the main thread (Playwright's sync API), where asyncio.run
    refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make(*args))).result()


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'batch.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


class Transactions:
    """The writer's `writing` slot, counting the transactions it opens."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            self.count += 1
            yield


def insert(address: str, stamp: int, *, refuse: bool = False):
    def apply(session: Session) -> str:
        if refuse:
            raise ConflictError(f"{address} refused")
        session.add(SignerClock(address=address, last_timestamp_ms=stamp))
        session.flush()
        return address

    return apply


def stored(engine: Engine) -> dict[str, int]:
    with session_factory(engine)() as session:
        return {c.address: c.last_timestamp_ms for c in session.scalars(select(SignerClock))}


async def _submit_all(writer: BatchWriter, writes) -> list[object]:
    return await asyncio.gather(*(writer.submit(w) for w in writes), return_exceptions=True)


def test_writes_queued_together_commit_in_one_transaction_and_a_refusal_skips_only_itself(engine):
    slot = Transactions()
    writer = BatchWriter(session_factory(engine), writing=slot, refusals=(ConflictError,))
    with slot.lock:  # hold the writer at its first write while the rest queue up
        answers = run_apart(_gather_while_held, writer, slot)
    writer.stop()
    assert answers[:2] == ["a", "b"] and answers[3] == "d"
    assert isinstance(answers[2], ConflictError)
    assert stored(engine) == {"a": 1, "b": 2, "d": 4}
    assert slot.count <= 2 and writer.batches == slot.count


async def _gather_while_held(writer: BatchWriter, slot: Transactions) -> list[object]:
    writes = [insert("a", 1), insert("b", 2), insert("c", 3, refuse=True), insert("d", 4)]
    pending = asyncio.ensure_future(_submit_all(writer, writes))
    await asyncio.sleep(0.2)  # every write is queued (the writer waits for the slot)
    slot.lock.release()
    try:
        return await pending
    finally:
        slot.lock.acquire()


def test_a_batch_that_fails_is_applied_write_by_write(engine):
    slot = Transactions()
    writer = BatchWriter(session_factory(engine), writing=slot, refusals=(ConflictError,))
    with slot.lock:
        answers = run_apart(_failing_batch, writer, slot)
    writer.stop()
    # the same key twice: the batch fails at its flush, then each write goes alone
    assert answers[0] == "x" and answers[2] == "y"
    assert isinstance(answers[1], IntegrityError)
    assert stored(engine) == {"x": 1, "y": 3}


async def _failing_batch(writer: BatchWriter, slot: Transactions) -> list[object]:
    writes = [insert("x", 1), insert("x", 2), insert("y", 3)]
    pending = asyncio.ensure_future(_submit_all(writer, writes))
    await asyncio.sleep(0.2)
    slot.lock.release()
    try:
        return await pending
    finally:
        slot.lock.acquire()


def test_heartbeats_sent_at_once_are_each_counted_and_a_replay_among_them_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    app = create_app(Settings(database_url=url))
    names = [f"batch-hb-{i}" for i in range(12)]
    with TestClient(app) as client:
        for i, name in enumerate(names):
            reg = registration(lat=10 + i, lon=20 + i)
            r = client.post(
                "/v1/providers", json=signed(account(name), purposes.PROVIDER_REGISTER, reg)
            )
            assert r.status_code == 201, r.text
        bodies = [
            signed(
                account(name), purposes.PROVIDER_HEARTBEAT, {"free": {"cpu": 1, "memory_mb": 64}}
            )
            for name in names
        ]  # one each: a signer's requests sent at once may arrive out of clock order
        replayed = bodies[0]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(
                    lambda b: client.post("/v1/providers/heartbeat", json=b).status_code,
                    [*bodies, replayed],
                )
            )
    assert sorted(statuses) == [200] * len(bodies) + [401]
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            counts = {r.address: r.heartbeats for r in session.scalars(select(ProviderRow))}
    finally:
        engine.dispose()
    assert counts == {account(n).address: 2 for n in names}  # registration + heartbeat
