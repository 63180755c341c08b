"""The chain indexer against a real anvil with the contracts deployed by brownie.

One chain is deployed for the module; every test indexes it into its own SQLite database
and uses its own dev accounts, so tests do not see each other's providers or jobs. The
chain-reset test restarts the chain and runs last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import func, select
from web3 import Web3
from web3.logs import DISCARD

from marketplace.chain.client import ChainClient
from marketplace.chain.indexer import Indexer
from marketplace.settings import Settings
from marketplace.store.db import make_engine, migrate, session_factory
from marketplace.store.models import ChainEventRow, ChainJobRow, IndexerCursor, JobRow, ProviderRow
from protocol.schemas import JobSpec, spec_hash
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
PRICE = 5 * TOKEN
STAKE = 500 * TOKEN
NETWORK = CHAINS["anvil"]["network"]


class Devnet:
    """A running anvil with the contracts deployed; `restart` replaces it with a fresh one."""

    def __init__(self, deployments: Path) -> None:
        self.deployments = deployments
        self.url = ""
        self._stack = contextlib.ExitStack()

    def start(self, *, deploy: bool = True) -> None:
        self.url = self._stack.enter_context(running_chain("anvil"))
        if deploy:
            self.deploy()

    def deploy(self) -> None:
        deploy_contracts(NETWORK, self.deployments)

    def stop(self) -> None:
        self._stack.close()
        self._stack = contextlib.ExitStack()


@pytest.fixture(scope="module")
def devnet(tmp_path_factory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet") / "deployments.json")
    net.start()
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def settings(devnet, tmp_path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'market.db'}",
        rpc_url=devnet.url,
        deployments=devnet.deployments,
        indexer_poll_s=0.05,
    )


@pytest.fixture
def sessions(settings):
    engine = make_engine(settings.database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def chain(devnet, settings) -> ChainClient:
    return ChainClient(devnet.url, deployments=str(devnet.deployments))


@pytest.fixture
def indexer(settings, sessions, chain) -> Indexer:
    return Indexer(settings, sessions, chain)


# ------------------------------------------------------------------- chain helpers


def send(chain: ChainClient, call: Any, sender: str) -> Any:
    receipt = chain.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    assert receipt.status == 1
    return receipt


def account(chain: ChainClient, i: int) -> str:
    return chain.w3.eth.accounts[i]


def stake(chain: ChainClient, provider: str, amount: int = STAKE) -> None:
    send(chain, chain.token.functions.approve(chain.registry.address, amount), provider)
    send(chain, chain.registry.functions.stake(amount), provider)


def fund(chain: ChainClient, renter: str, spec: str, providers: list[str]) -> int:
    send(chain, chain.token.functions.approve(chain.escrow.address, PRICE * len(providers)), renter)
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    # single-replica jobs here: a named provider needs no matcher signature
    assert len(providers) == 1
    call = chain.escrow.functions.fund(
        bytes.fromhex(spec[2:]), 0, PRICE, deadline, 1, (providers, 0, b"")
    )
    receipt = send(chain, call, renter)
    events = chain.escrow.events.JobFunded().process_receipt(receipt, errors=DISCARD)
    return int(events[0]["args"]["jobId"])


def travel(chain: ChainClient, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


def mine(chain: ChainClient, blocks: int) -> None:
    for _ in range(blocks):
        chain.w3.provider.make_request("evm_mine", [])


# ---------------------------------------------------------------- database helpers


def add_provider(sessions, address: str) -> None:
    now = time.time()
    with sessions() as s, s.begin():
        s.add(
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
                stake_active=False,
                jobs_completed=0,
                jobs_failed=0,
                jobs_slashed=0,
            )
        )


def add_job(sessions, renter: str) -> tuple[str, str]:
    """A matched marketplace job of `renter` (stored lowercase); returns (id, spec hash)."""
    spec = JobSpec.model_validate(
        {
            "image": "busybox",
            "command": ["echo", uuid.uuid4().hex],
            "resources": {"cpu": 1, "memory_mb": 512},
            "time_limit_s": 60,
            "max_price_wei": PRICE,
            "origin": {"lat": 48.1, "lon": 11.6},
        }
    )
    job_id, digest = str(uuid.uuid4()), spec_hash(spec)
    with sessions() as s, s.begin():
        s.add(
            JobRow(
                id=job_id,
                renter=renter.lower(),
                spec=spec.model_dump(mode="json"),
                spec_hash=digest,
                status="matched",
                reason="",
                created_at=time.time(),
            )
        )
    return job_id, digest


def get(sessions, model: Any, key: Any) -> Any:
    with sessions() as s:
        return s.get(model, key)


def event_names(sessions, chain_job_id: int) -> list[str]:
    with sessions() as s:
        return list(
            s.scalars(
                select(ChainEventRow.name)
                .where(ChainEventRow.chain_job_id == chain_job_id)
                .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
            )
        )


def event_count(sessions) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ChainEventRow)) or 0)


def catch_up(indexer: Indexer) -> int:
    applied = indexer.run_once()
    while indexer.status == "catching up":
        applied += indexer.run_once()
    return applied


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -------------------------------------------------------------------------- tests


def test_a_jobs_lifecycle_is_reflected_in_chain_job_and_marketplace_job(chain, sessions, indexer):
    renter, provider, outsider = account(chain, 1), account(chain, 2), account(chain, 3)
    add_provider(sessions, provider)
    job_id, digest = add_job(sessions, renter)
    stake(chain, provider)

    chain_job = fund(chain, renter, digest, [provider])
    catch_up(indexer)
    job = get(sessions, JobRow, job_id)
    assert (job.chain_job_id, job.status) == (chain_job, "funded")
    row = get(sessions, ChainJobRow, chain_job)
    assert (row.renter, row.spec_hash, row.state) == (renter, digest, "funded")
    assert (row.named_providers, row.deposit_wei, row.replicas) == ([provider], str(PRICE), 1)

    send(chain, chain.escrow.functions.accept(chain_job), provider)
    indexer.run_once()
    assert get(sessions, ChainJobRow, chain_job).accepted == [provider]
    assert get(sessions, JobRow, job_id).status == "accepted"

    result, salt = keccak(b"result"), b"\x02" * 32
    commitment = keccak(encode(["bytes32", "bytes32", "address"], [result, salt, provider]))
    send(chain, chain.escrow.functions.commit(chain_job, commitment), provider)
    indexer.run_once()
    assert get(sessions, JobRow, job_id).status == "committed"

    # a single replica's result stays off chain: it is paid for its commitment
    travel(chain, 31)
    send(chain, chain.escrow.functions.finalize(chain_job), outsider)
    assert indexer.run_once() >= 2
    row = get(sessions, ChainJobRow, chain_job)
    assert (row.state, row.result_hash) == ("settled", None)
    assert get(sessions, JobRow, job_id).status == "settled"
    assert get(sessions, ProviderRow, provider).jobs_completed == 1
    assert event_names(sessions, chain_job) == [
        "JobFunded",
        "JobAccepted",
        "ResultCommitted",
        "ReplicaPaid",
        "JobSettled",
    ]


def test_event_args_are_stored_json_safe(chain, sessions, indexer):
    renter, provider = account(chain, 1), account(chain, 6)
    _, digest = add_job(sessions, renter)
    chain_job = fund(chain, renter, digest, [provider])
    catch_up(indexer)
    with sessions() as s:
        funded = s.scalars(
            select(ChainEventRow).where(
                ChainEventRow.chain_job_id == chain_job, ChainEventRow.name == "JobFunded"
            )
        ).one()
    assert funded.contract == "JobEscrow"
    assert funded.args["specHash"] == digest
    assert funded.args["deposit"] == str(PRICE)  # above 2**53: a string
    assert funded.args["replicas"] == 1
    assert funded.args["renter"] == renter and funded.args["providers"] == [provider]


def test_a_new_indexer_resumes_from_the_cursor_without_reapplying(
    settings, chain, sessions, indexer
):
    catch_up(indexer)
    count, block = event_count(sessions), indexer.indexed_block
    cursor = get(sessions, IndexerCursor, chain.deployment.chain_id)
    assert (cursor.block_number, cursor.escrow) == (block, chain.escrow.address)

    again = Indexer(settings, sessions, chain)
    assert again.run_once() == 0
    assert (event_count(sessions), again.indexed_block, again.status) == (count, block, "following")

    stake(chain, account(chain, 7), 10 * TOKEN)
    assert again.run_once() == 1  # Staked (the token's own events are not followed)
    assert event_count(sessions) == count + 1


def test_confirmations_hold_back_recent_blocks(settings, sessions, chain):
    settings.confirmations = 3
    indexer = Indexer(settings, sessions, chain)
    mine(chain, 3)  # earlier tests' last events are confirmed
    catch_up(indexer)
    count = event_count(sessions)
    stake(chain, account(chain, 8), 10 * TOKEN)
    head = chain.w3.eth.block_number

    assert indexer.run_once() == 0
    assert (indexer.indexed_block, indexer.head_block) == (head - 3, head)
    assert event_count(sessions) == count

    mine(chain, 3)
    assert indexer.run_once() == 1
    assert indexer.indexed_block == head


def test_stake_events_refresh_the_providers_stake(chain, sessions, indexer):
    provider = account(chain, 5)
    add_provider(sessions, provider)
    stake(chain, provider)
    indexer.run_once()
    row = get(sessions, ProviderRow, provider)
    assert (row.staked_wei, row.stake_active) == (str(STAKE), True)

    send(chain, chain.registry.functions.requestUnstake(STAKE), provider)
    indexer.run_once()
    row = get(sessions, ProviderRow, provider)
    assert (row.staked_wei, row.stake_active) == (str(STAKE), False)


def test_a_slashed_no_show_counts_against_the_provider(chain, sessions, indexer):
    renter, provider, outsider = account(chain, 1), account(chain, 4), account(chain, 3)
    add_provider(sessions, provider)
    job_id, digest = add_job(sessions, renter)
    stake(chain, provider)
    chain_job = fund(chain, renter, digest, [provider])
    send(chain, chain.escrow.functions.accept(chain_job), provider)
    travel(chain, 3601)
    send(chain, chain.escrow.functions.claimNoShow(chain_job), outsider)

    catch_up(indexer)
    row = get(sessions, ChainJobRow, chain_job)
    assert (row.state, row.result_hash) == ("settled", None)
    assert get(sessions, JobRow, job_id).status == "settled"
    provider_row = get(sessions, ProviderRow, provider)
    assert (provider_row.jobs_slashed, provider_row.jobs_completed) == (1, 0)
    assert provider_row.staked_wei == str(STAKE - PRICE)  # collateral is 100% of the price


def test_a_cancelled_job_counts_a_failure_for_named_providers_that_never_accepted(
    chain, sessions, indexer
):
    renter, provider = account(chain, 1), account(chain, 9)
    add_provider(sessions, provider)
    job_id, digest = add_job(sessions, renter)
    chain_job = fund(chain, renter, digest, [provider])
    send(chain, chain.escrow.functions.cancel(chain_job), renter)

    catch_up(indexer)
    assert get(sessions, ChainJobRow, chain_job).state == "cancelled"
    assert get(sessions, JobRow, job_id).status == "cancelled"
    assert get(sessions, ProviderRow, provider).jobs_failed == 1


def test_an_unreachable_chain_is_reported_once_and_followed_again(chain, sessions, indexer, caplog):
    live = chain.w3
    chain.w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}"))
    with caplog.at_level(logging.INFO, logger="marketplace.chain.indexer"):
        assert indexer.run_once() == 0
        assert indexer.run_once() == 0
        assert indexer.status == "chain unreachable"
        chain.w3 = live
        catch_up(indexer)
    assert indexer.status == "following"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("chain unreachable" in m for m in messages) == 1
    assert any("chain reachable again" in m for m in messages)


def test_reload_rebinds_every_contract_from_the_redeployed_file(devnet, tmp_path):
    path = tmp_path / "deployments.json"
    path.write_text(devnet.deployments.read_text())
    client = ChainClient(devnet.url, deployments=str(path))
    assert client.reload() is False  # nothing changed
    assert client.storage is not None

    data = json.loads(path.read_text())
    entry = data[str(client.deployment.chain_id)]
    moved = {
        name: Web3.to_checksum_address("0x" + f"{i + 1:02x}" * 20)
        for i, name in enumerate(("JobEscrow", "ProviderRegistry", "ComputeToken", "StorageEscrow"))
    }
    for name, address in moved.items():
        entry["contracts"][name]["address"] = address
    entry["deployed_at_block"] += 7
    path.write_text(json.dumps(data))

    assert client.reload() is True
    assert client.deployment.deployed_at_block == entry["deployed_at_block"]
    assert client.escrow.address == moved["JobEscrow"]
    assert client.registry.address == moved["ProviderRegistry"]
    assert client.token.address == moved["ComputeToken"]
    assert client.storage is not None and client.storage.address == moved["StorageEscrow"]
    # the typed reads move with it (rebinding attributes one by one used to miss them)
    assert client.jobs.address == client.jobs.contract.address == moved["JobEscrow"]
    assert client.jobs.deployment == client.deployment


class CountingIndexer(Indexer):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.steps = threading.Semaphore(0)

    def run_once(self) -> int:
        try:
            return super().run_once()
        finally:
            self.steps.release()


def test_run_forever_survives_an_unreachable_chain_until_stopped(settings, sessions, chain, caplog):
    chain.w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}"))
    indexer = CountingIndexer(settings, sessions, chain)
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run_forever, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING, logger="marketplace.chain.indexer"):
        thread.start()
        for _ in range(3):
            assert indexer.steps.acquire(timeout=10)
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert indexer.status == "chain unreachable"
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["chain unreachable"]


def test_a_devnet_restart_is_logged_once_and_reindexed_from_scratch(
    devnet, chain, sessions, indexer, caplog
):
    """Runs last: it replaces the module's chain with a fresh one."""
    renter, provider = account(chain, 1), account(chain, 2)
    add_provider(sessions, provider)
    job_id, digest = add_job(sessions, renter)
    fund(chain, renter, digest, [account(chain, 6)])
    catch_up(indexer)
    assert get(sessions, JobRow, job_id).status == "funded"
    assert get(sessions, ProviderRow, provider).jobs_completed == 1  # from the lifecycle test
    old_cursor = indexer.indexed_block
    assert old_cursor is not None

    devnet.stop()
    assert indexer.run_once() == 0
    assert indexer.status == "chain unreachable"
    devnet.start(deploy=False)
    assert indexer.run_once() == 0
    assert indexer.status == "waiting for deployment"
    devnet.deploy()
    head = chain.w3.eth.block_number
    # Past the old cursor, so the reset shows as a different block hash at the cursor.
    chain.w3.provider.make_request("anvil_mine", [hex(old_cursor - head + 1)])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="marketplace.chain.indexer"):
        catch_up(indexer)
        catch_up(indexer)
    resets = [r.getMessage() for r in caplog.records]
    assert len(resets) == 1 and resets[0].startswith("chain was reset"), resets
    assert "not on chain" in resets[0]
    assert indexer.status == "following"
    job = get(sessions, JobRow, job_id)
    assert (job.chain_job_id, job.status) == (None, "matched")
    assert get(sessions, ProviderRow, provider).jobs_completed == 0
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ChainJobRow)) == 0
        names = set(s.scalars(select(ChainEventRow.name)))
    assert "JobFunded" not in names and "MatcherSet" in names  # the redeploy was indexed

    chain_job = fund(chain, renter, digest, [account(chain, 6)])
    indexer.run_once()
    job = get(sessions, JobRow, job_id)
    assert (job.chain_job_id, job.status) == (chain_job, "funded")
