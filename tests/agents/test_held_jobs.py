"""Held jobs on the provider: their start kept in its store, no capacity promised before
it, and handed to the runner once the chain's clock reaches it (agents/provider/held.py).
The whole path on a real chain is in tests/integration/test_held_jobs.py."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from agents.provider import held
from agents.provider.store import JobRecord, JobStore
from protocol.escrow import ChainJob, Windows
from protocol.provider_api import ACCEPTED, RECEIVED
from protocol.schemas import Capacity
from tests.agents.test_deadlines import FUNDED

NOW = 1_800_000_000
WINDOWS = Windows(accept=60, reveal=60, challenge=30, collateral_bps=1000, fee_bps=100)
SPEC = {"resources": {"cpu": 2, "memory_mb": 256}}


def job(accept_by: int) -> ChainJob:
    """A funded job nobody accepted yet, its window closing at `accept_by`."""
    return dataclasses.replace(FUNDED, accepted=0, accept_by=accept_by, deadline=accept_by + 600)


def test_a_jobs_start_is_when_its_acceptance_window_opens() -> None:
    assert held.start_of(job(NOW + 7200 + 60), WINDOWS) == NOW + 7200
    assert held.start_of(job(30), WINDOWS) == 0


def test_the_store_keeps_the_start_and_upgrades_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)  # a store from before held jobs: no start_at column
    old.execute(
        "CREATE TABLE jobs (chain_job_id INTEGER PRIMARY KEY, renter TEXT NOT NULL, "
        "spec TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', salt TEXT, "
        "result_hash TEXT, run TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL)"
    )
    old.execute("INSERT INTO jobs VALUES (7, 'r', '{}', 'settled', '', NULL, NULL, NULL, 1, 1)")
    old.commit()
    old.close()
    store = JobStore(path)
    earlier = store.get(7)
    assert earlier is not None and earlier.start_at == 0
    assert store.add(JobRecord(chain_job_id=8, renter="r", spec=SPEC, state=RECEIVED, start_at=NOW))
    kept = store.get(8)
    assert kept is not None and kept.start_at == NOW
    assert [r.start_at for r in store.all(unfinished=True)] == [NOW]


@dataclasses.dataclass
class Runner:
    """What start_due needs of the runner: its store, what is free, and `start`."""

    store: JobStore
    cpu: float
    started: list[int] = dataclasses.field(default_factory=list)

    def start(self, job_id: int) -> None:
        self.started.append(job_id)

    def free(self) -> Capacity:
        return Capacity(cpu=self.cpu, memory_mb=4096, gpu=0, disk_mb=4096)


def test_held_jobs_start_when_due_and_when_they_fit(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    for job_id, start in ((1, NOW + 3600), (2, NOW + 60), (3, NOW + 30), (4, 0)):
        store.add(
            JobRecord(chain_job_id=job_id, renter="r", spec=SPEC, state=RECEIVED, start_at=start)
        )
    store.add(JobRecord(chain_job_id=5, renter="r", spec=SPEC, state=ACCEPTED, start_at=NOW))
    assert held.waiting(store.get(1), now=NOW)  # type: ignore[arg-type]
    assert not held.waiting(store.get(4), now=NOW)  # type: ignore[arg-type]
    runner = Runner(store, cpu=4)
    assert held.start_due(runner, NOW) == []  # nothing due yet
    assert held.start_due(runner, NOW + 60) == [3, 2]  # earliest start first
    assert held.start_due(Runner(store, cpu=1), NOW + 7200) == []  # 2 CPUs do not fit in 1
