"""The store on both databases it supports: SQLite (a file) and PostgreSQL (by URL).

Every test that takes ``database_url`` runs twice, once per backend; the PostgreSQL runs
start a real server (``tests/marketplace/pg.py``) and are marked integration.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, text

from marketplace.app import create_app
from marketplace.settings import Settings
from marketplace.store.db import MIGRATIONS, make_engine, migrate, session_factory, transaction
from marketplace.store.models import (
    AssignmentRow,
    Base,
    ChainEventRow,
    ChainJobRow,
    IndexerCursor,
    JobRow,
    ProviderRow,
    SignerClock,
)
from tests.marketplace.api.conftest import account, job_spec, registration, signed
from tests.marketplace.pg import postgres_server, postgres_url  # noqa: F401

REGISTER, HEARTBEAT, SUBMIT = (
    "dcloud/provider.register",
    "dcloud/provider.heartbeat",
    "dcloud/job.submit",
)
WEI_2_256 = 2**256 - 1  # an ERC20 amount can be any uint256
INT64_MAX = 2**63 - 1


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


# ------------------------------------------------------------------ schema and rows


def test_migration_creates_every_table_and_is_idempotent(engine):
    migrate(engine)  # a second run (every replica migrates on start) changes nothing
    tables = set(inspect(engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [_head_revision()]


_MIGRATE_ON_GO = """
import sys
from marketplace.store.db import make_engine, migrate
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate(engine)
engine.dispose()
"""


def test_replicas_starting_together_migrate_one_schema(database_url):
    # Replicas started at once all migrate the empty database at once. Alembic keeps global
    # state, so each "replica" is its own process; all are released together.
    root = Path(__file__).resolve().parents[2]
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_ON_GO, database_url],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for r in replicas:
            assert r.stdout is not None and r.stdout.readline().strip() == "ready"
        for r in replicas:
            assert r.stdin is not None
            r.stdin.write("go\n")
            r.stdin.flush()
        outcomes = [(r.communicate(timeout=120)[1], r.returncode) for r in replicas]
    finally:
        for r in replicas:
            if r.poll() is None:
                r.kill()
                r.communicate()
    assert [code for _, code in outcomes] == [0, 0, 0], "\n".join(err for err, _ in outcomes)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {
            "alembic_version"
        }
    finally:
        engine.dispose()


def test_provider_row_round_trips_extreme_values(engine):
    sessions = session_factory(engine)
    address = account("big").address
    with transaction(sessions) as s:
        s.add(
            ProviderRow(
                address=address,
                endpoint="https://provider.example:9100/ünïcode",
                lat=-89.999999,
                lon=179.123456789,
                region="DE-LU",
                total_cpu=4096.0,
                total_memory_mb=2**40,
                total_gpu=1024,
                total_disk_mb=2**50,
                free_cpu=0.5,
                free_memory_mb=1,
                free_gpu=0,
                free_disk_mb=0,
                price_wei=INT64_MAX,
                images=["busybox", "ghcr.io/org/app@sha256:" + "ab" * 32],
                registered_at=1.5e9,
                last_heartbeat_at=1.75e9,
                heartbeats=2**31 - 1,
                staked_wei=str(WEI_2_256),
                stake_active=True,
                jobs_completed=7,
                jobs_failed=0,
                jobs_slashed=1,
            )
        )
    with sessions() as s:
        row = s.get(ProviderRow, address)
        assert row is not None
        assert (row.lat, row.lon) == (-89.999999, 179.123456789)
        assert (row.total_memory_mb, row.total_disk_mb) == (2**40, 2**50)
        assert row.price_wei == INT64_MAX
        assert int(row.staked_wei) == WEI_2_256
        assert row.images == ["busybox", "ghcr.io/org/app@sha256:" + "ab" * 32]
        assert row.stake_active is True and row.heartbeats == 2**31 - 1
        assert row.endpoint.endswith("ünïcode")


def test_job_with_assignments_round_trips_its_json_spec(engine):
    sessions = session_factory(engine)
    spec = {
        **job_spec(),
        "env": {"GREETING": "grüß dich ✓", "EMPTY": ""},
        "command": ["sh", "-c", 'echo "$GREETING" > /out'],
        "max_price_wei": 2**96 - 1,
        "regions": None,
    }
    with transaction(sessions) as s:
        job = JobRow(
            id="00000000-0000-4000-8000-000000000001",
            renter=account("renter").address,
            spec=spec,
            spec_hash="0x" + "12" * 32,
            status="matched",
            reason="",
            created_at=1.7e9,
            matched_at=1.7e9 + 0.15,
            chain_job_id=INT64_MAX,
        )
        for slot in (1, 0):
            job.assignments.append(
                AssignmentRow(
                    slot=slot,
                    provider=account(f"p{slot}").address,
                    endpoint=f"http://127.0.0.1:91{slot:02d}",
                    distance_km=12.345,
                    energy_level=slot,
                    score=100.5,
                    reputation=0.99,
                    price_wei=INT64_MAX - slot,
                )
            )
        s.add(job)
    with sessions() as s:
        job = s.get(JobRow, "00000000-0000-4000-8000-000000000001")
        assert job is not None
        assert job.spec == spec
        assert job.spec["max_price_wei"] == 2**96 - 1
        assert job.chain_job_id == INT64_MAX and job.matched_at == 1.7e9 + 0.15
        assert [a.slot for a in job.assignments] == [0, 1]
        assert [a.price_wei for a in job.assignments] == [INT64_MAX, INT64_MAX - 1]


def test_chain_rows_round_trip_uint256_amounts_and_json(engine):
    sessions = session_factory(engine)
    named = [account("a").address, account("b").address]
    args = {"jobId": 3, "amount": WEI_2_256, "providers": named, "nested": {"ok": True, "x": None}}
    with transaction(sessions) as s:
        s.add(
            ChainJobRow(
                chain_job_id=3,
                renter=account("renter").address,
                spec_hash="0x" + "ef" * 32,
                deposit_wei=str(WEI_2_256),
                deadline=2**40,
                replicas=2,
                named_providers=named,
                accepted=[],
                state="Funded",
                result_hash=None,
                updated_block=INT64_MAX,
            )
        )
        s.add(
            ChainEventRow(
                block_number=INT64_MAX,
                tx_hash="0x" + "aa" * 32,
                log_index=0,
                contract="JobEscrow",
                name="JobFunded",
                chain_job_id=3,
                args=args,
            )
        )
        s.add(SignerClock(address=named[0], last_timestamp_ms=2**53))
        s.add(IndexerCursor(chain_id=31337, escrow=named[1], block_number=9, block_hash="0x00"))
    with sessions() as s:
        chain_job = s.get(ChainJobRow, 3)
        assert chain_job is not None
        assert int(chain_job.deposit_wei) == WEI_2_256
        assert chain_job.named_providers == named and chain_job.accepted == []
        assert chain_job.result_hash is None and chain_job.updated_block == INT64_MAX
        (event,) = s.scalars(select(ChainEventRow)).all()
        assert event.args == args  # a uint256 inside JSON keeps every digit
        assert event.block_number == INT64_MAX
        clock = s.get(SignerClock, named[0])
        assert clock is not None and clock.last_timestamp_ms == 2**53
        cursor = s.get(IndexerCursor, 31337)
        assert cursor is not None and (cursor.escrow, cursor.block_number) == (named[1], 9)


# ------------------------------------------------------------------ the API on each backend


@pytest.fixture
def client(database_url) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, batch_window_ms=20))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _register(client, name: str, *, lat: float = 48.14, lon: float = 11.58):
    p = account(name)
    r = client.post("/v1/providers", json=signed(p, REGISTER, registration(lat=lat, lon=lon)))
    assert r.status_code == 201, r.text
    return p


def test_registered_provider_heartbeats_and_is_listed(client):
    p = _register(client, "s-p1")
    for cpu in (1.0, 2.0, 3.5):
        r = client.post(
            "/v1/providers/heartbeat",
            json=signed(p, HEARTBEAT, {"free": {"cpu": cpu, "memory_mb": 1000}}),
        )
        assert r.status_code == 200, r.text
    listed = client.get("/v1/providers", params={"online": True}).json()
    assert listed["total"] == 1
    (item,) = listed["items"]
    assert item["address"] == p.address and item["free"]["cpu"] == 3.5


def test_every_accepted_heartbeat_is_counted(client, database_url):
    p = _register(client, "s-count")
    accepted = sum(
        client.post(
            "/v1/providers/heartbeat",
            json=signed(p, HEARTBEAT, {"free": {"cpu": 1, "memory_mb": 100}}),
        ).status_code
        == 200
        for _ in range(10)
    )
    assert accepted == 10
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            count = conn.scalar(
                select(ProviderRow.heartbeats).where(ProviderRow.address == p.address)
            )
    finally:
        engine.dispose()
    assert count == 1 + accepted  # the registration counts as the first


def test_submitted_job_is_matched_and_listed(client):
    _register(client, "s-p2")
    renter = account("s-renter")
    r = client.post("/v1/jobs", json=signed(renter, SUBMIT, job_spec()))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "matched" and len(job["assignments"]) == 1
    listed = client.get("/v1/jobs", params={"renter": renter.address}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "matched"


def test_replayed_request_is_refused(client):
    p = account("s-replay")
    envelope = signed(p, REGISTER, registration(lat=1, lon=2))
    assert client.post("/v1/providers", json=envelope).status_code == 201
    r = client.post("/v1/providers", json=envelope)
    assert r.status_code == 401 and "replay" in r.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/%00",
        "/v1/jobs?status=%00",
        "/v1/providers?region=a%00b",
    ],
)
def test_nul_characters_in_the_url_get_a_client_answer(client, database_url, path):
    # PostgreSQL text cannot hold NUL: a 422 that says so; SQLite simply finds nothing.
    # The provider listing filters a copy in memory, so it finds nothing on both.
    r = client.get(path)
    if database_url.startswith("postgresql") and not path.startswith("/v1/providers"):
        assert r.status_code == 422 and "NUL" in r.json()["detail"], r.text
    else:
        assert r.status_code in (200, 404), r.text


def test_nul_character_in_a_signed_body_is_refused_where_it_cannot_be_stored(client, database_url):
    body = registration(lat=1, lon=2)
    body["endpoint"] = "http://127.0.0.1:9100/\x00"
    r = client.post("/v1/providers", json=signed(account("s-nul"), REGISTER, body))
    if database_url.startswith("postgresql"):
        assert r.status_code == 422 and "NUL" in r.json()["detail"], r.text
    else:
        assert r.status_code == 201, r.text


# ------------------------------------------------------------------ replicas on one PostgreSQL


@pytest.mark.integration
def test_two_replicas_on_one_postgres_serve_the_same_network(request):
    settings = Settings(database_url=request.getfixturevalue("postgres_url"), batch_window_ms=20)
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as a,
        TestClient(create_app(settings), raise_server_exceptions=False) as b,
    ):
        p = _register(a, "rep-provider")
        assert b.get(f"/v1/providers/{p.address}").status_code == 200

        # The first replica leads (marketplace/leader.py): it matches; the other refuses
        # placement before recording anything and serves the outcome from the database.
        renter = account("rep-renter")
        assert b.post("/v1/jobs", json=signed(renter, SUBMIT, job_spec())).status_code == 503
        r = a.post("/v1/jobs", json=signed(renter, SUBMIT, job_spec()))
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["status"] == "matched" and job["assignments"][0]["provider"] == p.address
        seen = b.get(f"/v1/jobs/{job['id']}").json()
        assert seen["status"] == "matched" and seen["assignments"] == job["assignments"]
        assert b.get("/v1/jobs").json()["total"] == 1

        # Replay protection is shared: what one replica accepted the other refuses.
        envelope = signed(p, HEARTBEAT, {"free": {"cpu": 2, "memory_mb": 1000}})
        assert a.post("/v1/providers/heartbeat", json=envelope).status_code == 200
        assert b.post("/v1/providers/heartbeat", json=envelope).status_code == 401
        assert b.get(f"/v1/providers/{p.address}").json()["free"]["cpu"] == 2


@pytest.mark.integration
def test_first_requests_of_a_signer_racing_on_two_replicas_get_a_conflict_not_a_500(request):
    # Both replicas find no clock row for a new signer and both insert one; PostgreSQL lets
    # the first commit win. Here the "other replica" is a transaction held open by the test.
    url = request.getfixturevalue("postgres_url")
    settings = Settings(database_url=url, batch_window_ms=20)
    p = account("race")
    engine = make_engine(url)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            other = session_factory(engine)()
            other.begin()
            other.add(SignerClock(address=p.address, last_timestamp_ms=1))
            other.flush()  # the row exists, uncommitted: a racing insert waits on it
            envelope = signed(p, REGISTER, registration(lat=1, lon=2))
            with ThreadPoolExecutor(1) as pool:
                answer = pool.submit(client.post, "/v1/providers", json=envelope)
                with engine.connect() as conn:
                    waiting = text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                    while not conn.scalar(waiting):
                        assert not answer.done(), answer.result().text
                        conn.rollback()
                other.commit()
                other.close()
                r = answer.result(timeout=30)
    finally:
        engine.dispose()
    assert r.status_code == 409, r.text
    assert "retry" in r.json()["detail"]
