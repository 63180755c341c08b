"""Applying decoded chain events to the store, without a chain: idempotence per log, the
0003 migration over duplicates, replica slots, and storage audits feeding reputation.

Tests that take ``database_url`` run on SQLite and on PostgreSQL (``tests/marketplace/pg.py``,
marked integration).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, inspect, select, text

from marketplace.app import create_app
from marketplace.chain.apply import (
    ChainEvent,
    apply_events,
    reset_chain_state,
)
from marketplace.settings import Settings
from marketplace.storage import nodes
from marketplace.store.db import MIGRATIONS, make_engine, migrate, session_factory, transaction
from marketplace.store.models import (
    ChainEventRow,
    ChainJobRow,
    IndexerCursor,
    ProviderRow,
    StorageNodeRow,
)
from tests.marketplace.api.conftest import account, job_spec, signed
from tests.marketplace.pg import postgres_server, postgres_url  # noqa: F401

RENTER = Account.from_key(b"\x01" * 32).address
P1, P2, P3, P4 = (Account.from_key(bytes([i]) * 32).address for i in (2, 3, 4, 5))
NODE_GOOD, NODE_BAD = (Account.from_key(bytes([i]) * 32).address for i in (6, 7))
SPEC = "0x" + "5e" * 32
R_GOOD, R_BAD = b"\xaa" * 32, b"\xbb" * 32
PRICE = 5 * 10**18


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'apply.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return session_factory(engine)


class Log:
    """Builds events at increasing (block, log index) positions, like a chain would."""

    def __init__(self) -> None:
        self._positions = itertools.count()

    def __call__(self, name: str, contract: str = "JobEscrow", **args: Any) -> ChainEvent:
        n = next(self._positions)
        return ChainEvent(
            contract=contract,
            name=name,
            block_number=10 + n // 3,
            log_index=n % 3,
            tx_hash="0x" + f"{n:064x}",
            args=args,
        )


def funded(log: Log, job: int, *, replicas: int, providers: list[str]) -> ChainEvent:
    return log(
        "JobFunded",
        jobId=job,
        renter=RENTER,
        specHash=bytes.fromhex(SPEC[2:]),
        resources=0,
        deposit=PRICE * replicas,
        deadline=2_000_000_000,
        replicas=replicas,
        providers=providers,
    )


def add_provider(session, address: str) -> None:
    now = time.time()
    session.add(
        ProviderRow(
            address=address,
            endpoint="http://127.0.0.1:9100",
            lat=48.1,
            lon=11.6,
            region="DE",
            total_cpu=8,
            total_memory_mb=16384,
            total_gpu=0,
            total_disk_mb=100_000,
            free_cpu=8,
            free_memory_mb=16384,
            free_gpu=0,
            free_disk_mb=100_000,
            price_wei=10**9,
            images=["busybox"],
            registered_at=now,
            last_heartbeat_at=now,
            heartbeats=1,
            staked_wei="0",
            stake_active=True,
            jobs_completed=0,
            jobs_failed=0,
            jobs_slashed=0,
        )
    )


def add_storage_node(session, address: str, now: float) -> None:
    session.add(
        StorageNodeRow(
            address=address,
            endpoint="http://127.0.0.1:9200",
            lat=59.3,
            lon=18.1,
            region="SE",
            capacity_bytes=10**9,
            free_bytes=10**9,
            shards=0,
            registered_at=now,
            last_heartbeat_at=now,
            heartbeats=1,
            fetch_ok=0,
            fetch_failed=0,
            fetch_corrupt=0,
            latency_ms=None,
            audits_passed=0,
            audits_failed=0,
        )
    )


def slots(sessions, job: int) -> list[tuple[int, str, str, str | None]]:
    with sessions() as s:
        row = s.get(ChainJobRow, job)
        return [(r.slot, r.provider, r.state, r.result_hash) for r in row.slots]


def event_count(sessions) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ChainEventRow)) or 0)


# -------------------------------------------------------------- one log, one effect


def single_job_lifecycle(log: Log) -> list[ChainEvent]:
    return [
        funded(log, 1, replicas=1, providers=[P1]),
        log("JobAccepted", jobId=1, provider=P1, slot=0),
        log("ResultCommitted", jobId=1, provider=P1, commitment=b"\x01" * 32),
        log("ReplicaPaid", jobId=1, provider=P1, amount=PRICE),
        log("JobSettled", jobId=1, resultHash=b"\x00" * 32, refund=0),
    ]


def test_applying_the_same_batch_twice_records_and_counts_it_once(sessions):
    batch = single_job_lifecycle(Log())
    with transaction(sessions) as s:
        add_provider(s, P1)
    with transaction(sessions) as s:
        assert apply_events(s, batch, stakes={}) == len(batch)
    # a crash after the events landed but before the cursor moved: the range comes again
    with transaction(sessions) as s:
        assert apply_events(s, batch, stakes={}) == 0
    assert event_count(sessions) == len(batch)
    with sessions() as s:
        assert s.get(ProviderRow, P1).jobs_completed == 1
        assert s.get(ChainJobRow, 1).state == "settled"
    assert slots(sessions, 1) == [(0, P1, "paid", None)]


def test_a_log_repeated_inside_one_batch_is_applied_once(sessions):
    log = Log()
    fund = funded(log, 1, replicas=1, providers=[P1])
    accept = log("JobAccepted", jobId=1, provider=P1, slot=0)
    paid = log("ReplicaPaid", jobId=1, provider=P1, amount=PRICE)
    with transaction(sessions) as s:
        add_provider(s, P1)
        assert apply_events(s, [fund, accept, paid, paid], stakes={}) == 3
    with sessions() as s:
        assert s.get(ProviderRow, P1).jobs_completed == 1


def _upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_upgrade_to_0003_drops_duplicate_events_and_the_cursor(database_url):
    engine = make_engine(database_url)
    try:
        _upgrade(engine, "0002")
        insert = text(
            "INSERT INTO chain_events (block_number, tx_hash, log_index, contract, name, "
            "chain_job_id, args) VALUES (:block, :tx, :index, 'JobEscrow', :name, 1, '{}')"
        )
        rows = [
            (5, 0, "JobFunded"),
            (5, 1, "JobAccepted"),
            (5, 0, "JobFunded"),  # indexed twice before the constraint existed
            (6, 0, "ReplicaPaid"),
            (5, 1, "JobAccepted"),
            (5, 0, "JobFunded"),
        ]
        with engine.begin() as conn:
            for block, index, name in rows:
                conn.execute(
                    insert, {"block": block, "tx": "0x" + "11" * 32, "index": index, "name": name}
                )
            conn.execute(
                text(
                    "INSERT INTO indexer_cursor (chain_id, escrow, block_number, block_hash) "
                    "VALUES (31337, :escrow, 6, :hash)"
                ),
                {"escrow": "0x" + "22" * 20, "hash": "0x" + "33" * 32},
            )

        migrate(engine)

        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT id, block_number, log_index FROM chain_events ORDER BY id")
            ).all()
            cursors = conn.execute(text("SELECT count(*) FROM indexer_cursor")).scalar()
        assert [tuple(r) for r in left] == [(1, 5, 0), (2, 5, 1), (4, 6, 0)]  # the first kept
        assert cursors == 0  # the indexer re-derives its state from the chain
        indexes = {i["name"]: i for i in inspect(engine).get_indexes("chain_events")}
        assert indexes["uq_chain_events_position"]["unique"]
        assert "chain_replicas" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


# ------------------------------------------------------------------ replica slots


def test_each_replica_slot_follows_its_own_events(sessions):
    log = Log()
    events = [
        funded(log, 7, replicas=3, providers=[P1, P2, P3]),
        log("JobAccepted", jobId=7, provider=P2, slot=1),
        log("JobAccepted", jobId=7, provider=P1, slot=0),
        log("JobAccepted", jobId=7, provider=P3, slot=2),
        log("ResultCommitted", jobId=7, provider=P1, commitment=b"\x01" * 32),
        log("ResultCommitted", jobId=7, provider=P3, commitment=b"\x03" * 32),
    ]
    with transaction(sessions) as s:
        apply_events(s, events, stakes={})
    assert slots(sessions, 7) == [
        (0, P1, "committed", None),
        (1, P2, "accepted", None),
        (2, P3, "committed", None),
    ]
    with sessions() as s:
        assert s.get(ChainJobRow, 7).slots[1].updated_block == events[1].block_number

    settle = [
        log("ResultCommitted", jobId=7, provider=P2, commitment=b"\x02" * 32),
        log("ResultRevealed", jobId=7, provider=P1, resultHash=R_GOOD),
        log("ResultRevealed", jobId=7, provider=P2, resultHash=R_GOOD),
        log("ResultRevealed", jobId=7, provider=P3, resultHash=R_BAD),
        log("ReplicaPaid", jobId=7, provider=P1, amount=PRICE),
        log("ReplicaPaid", jobId=7, provider=P2, amount=PRICE),
        log("ReplicaSlashed", jobId=7, provider=P3, collateral=PRICE),
        log("JobSettled", jobId=7, resultHash=R_GOOD, refund=PRICE),
    ]
    with transaction(sessions) as s:
        apply_events(s, settle, stakes={})
    good, bad = "0x" + R_GOOD.hex(), "0x" + R_BAD.hex()
    assert slots(sessions, 7) == [
        (0, P1, "paid", good),
        (1, P2, "paid", good),
        (2, P3, "slashed", bad),
    ]


def test_a_disputes_unbacked_dissenter_is_released_and_a_cancel_releases_every_slot(sessions):
    log = Log()
    dispute = [
        funded(log, 8, replicas=1, providers=[P1]),
        log("JobAccepted", jobId=8, provider=P1, slot=0),
        log("ResultCommitted", jobId=8, provider=P1, commitment=b"\x01" * 32),
        log("JobDisputed", jobId=8, bond=2 * PRICE, deadline=2_000_000_100),
        log("JobAccepted", jobId=8, provider=P2, slot=1),
        log("JobAccepted", jobId=8, provider=P3, slot=2),
        log("ResultCommitted", jobId=8, provider=P2, commitment=b"\x02" * 32),
        log("ResultRevealed", jobId=8, provider=P1, resultHash=R_GOOD),
        log("ResultRevealed", jobId=8, provider=P2, resultHash=R_BAD),
        # no majority: the original's hash stands by default, the dissenter is released
        log("ReplicaPaid", jobId=8, provider=P1, amount=PRICE),
        log("ReplicaSlashed", jobId=8, provider=P3, collateral=PRICE),
        log("JobSettled", jobId=8, resultHash=R_GOOD, refund=2 * PRICE),
    ]
    cancel = [
        funded(log, 9, replicas=2, providers=[P1, P4]),
        log("JobAccepted", jobId=9, provider=P1, slot=0),
        log("JobCancelled", jobId=9, refund=2 * PRICE),
    ]
    with transaction(sessions) as s:
        apply_events(s, dispute + cancel, stakes={})
    assert [(slot, state) for slot, _, state, _ in slots(sessions, 8)] == [
        (0, "paid"),
        (1, "released"),
        (2, "slashed"),
    ]
    assert slots(sessions, 9) == [(0, P1, "released", None)]


def test_get_job_shows_the_replica_slots(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", batch_window_ms=20)
    renter = account("slots renter")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        job = client.post("/v1/jobs", json=signed(renter, "dcloud/job.submit", job_spec())).json()
        engine = make_engine(settings.database_url)
        log = Log()
        events = [
            log(
                "JobFunded",
                jobId=3,
                renter=renter.address,
                specHash=bytes.fromhex(job["spec_hash"][2:]),
                resources=0,
                deposit=PRICE,
                deadline=2_000_000_000,
                replicas=1,
                providers=[P1],
            ),
            log("JobAccepted", jobId=3, provider=P1, slot=0),
            log("ResultCommitted", jobId=3, provider=P1, commitment=b"\x01" * 32),
        ]
        try:
            with transaction(session_factory(engine)) as s:
                apply_events(s, events, stakes={})
        finally:
            engine.dispose()
        detail = client.get(f"/v1/jobs/{job['id']}").json()
    assert detail["status"] == "committed"
    assert detail["chain"]["slots"] == [
        {
            "slot": 0,
            "provider": P1,
            "state": "committed",
            "result_hash": None,
            "updated_block": events[2].block_number,
        }
    ]


# ----------------------------------------------------------- storage audits


def test_storage_audits_raise_and_lower_the_nodes_placement_reputation(sessions):
    now = time.time()
    settings = Settings()
    with transaction(sessions) as s:
        add_storage_node(s, NODE_GOOD, now)
        add_storage_node(s, NODE_BAD, now)
    with sessions() as s:
        before = nodes.reputation_of(s.get(StorageNodeRow, NODE_GOOD), now=now, settings=settings)
    log = Log()
    audits = [
        log("ChallengeAnswered", "StorageEscrow", dealId=1, node=NODE_GOOD, chunkIndex=2),
        log("ChallengeAnswered", "StorageEscrow", dealId=1, node=NODE_GOOD, chunkIndex=0),
        log(
            "DealSlashed",
            "StorageEscrow",
            dealId=2,
            node=NODE_BAD,
            shardId=b"\x09" * 32,
            slashed=PRICE,
            released=0,
            refund=PRICE,
        ),
    ]
    with transaction(sessions) as s:
        apply_events(s, audits, stakes={})
    with transaction(sessions) as s:
        apply_events(s, audits, stakes={})  # indexed again: counted once
    with sessions() as s:
        good, bad = s.get(StorageNodeRow, NODE_GOOD), s.get(StorageNodeRow, NODE_BAD)
        assert (good.audits_passed, good.audits_failed) == (2, 0)
        assert (bad.audits_passed, bad.audits_failed) == (0, 1)
        rep_good = nodes.reputation_of(good, now=now, settings=settings)[1]
        rep_bad = nodes.reputation_of(bad, now=now, settings=settings)[1]
    assert rep_bad < before[1] < rep_good

    with transaction(sessions) as s:  # a chain reset forgets what the chain said
        reset_chain_state(s)
    with sessions() as s:
        assert s.get(StorageNodeRow, NODE_BAD).audits_failed == 0
        assert s.scalar(select(func.count()).select_from(IndexerCursor)) == 0
