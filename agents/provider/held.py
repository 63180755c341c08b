"""Held jobs: funded now, to start at a planned hour (``JobEscrow.fundAt``).

The escrow lets nobody accept a held job before its start, and its renter may cancel it
with a full refund until someone does. The provider keeps the pushed spec and inputs,
promises none of its capacity to the job until the start (:func:`waiting`), and
:func:`start_due` hands each job to the runner once the chain's clock reaches its start
and the job fits in what is free then. A job still waiting when its acceptance window
closes fails like any job accepted too late; the renter cancels it for a full refund.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from agents.provider.store import JobRecord, JobStore
from protocol.escrow import ChainJob, Windows
from protocol.provider_api import RECEIVED
from protocol.schemas import Capacity

logger = logging.getLogger(__name__)


def start_of(job: ChainJob, windows: Windows) -> int:
    """When the job may first be accepted: its acceptance window opens then (a job
    funded to start now opened its window at funding)."""
    return max(0, job.accept_by - windows.accept)


def waiting(rec: JobRecord, now: float | None = None) -> bool:
    """A received job whose start is still ahead: it holds no capacity yet."""
    return rec.state == RECEIVED and rec.start_at > (time.time() if now is None else now)


class Runner(Protocol):
    store: JobStore

    def start(self, job_id: int) -> None: ...
    def free(self) -> Capacity: ...


def start_due(runner: Runner, now: int) -> list[int]:
    """Start every held job whose start has come (chain time `now`) and that fits in the
    capacity free now, earliest first; returns their ids."""
    started: list[int] = []
    due = [
        rec
        for rec in runner.store.all(unfinished=True)
        if rec.state == RECEIVED and 0 < rec.start_at <= now
    ]
    for rec in sorted(due, key=lambda r: (r.start_at, r.chain_job_id)):
        r = rec.spec["resources"]
        demand = Capacity(
            cpu=r["cpu"], memory_mb=r["memory_mb"], gpu=r.get("gpu", 0), disk_mb=r.get("disk_mb", 0)
        )
        if demand.fits_in(runner.free()):
            logger.info(
                "held job starts", extra={"job": rec.chain_job_id, "start_at": rec.start_at}
            )
            runner.start(rec.chain_job_id)
            started.append(rec.chain_job_id)
    return started


def start_forever(
    runner: Runner, chain_now: Callable[[], int], stop: threading.Event, every_s: float
) -> None:
    """:func:`start_due` every `every_s` against the chain's clock until `stop` is set."""
    while not stop.wait(every_s):
        try:
            start_due(runner, chain_now())
        except Exception:  # a chain hiccup: the next pass tries again
            logger.warning("held jobs: could not check their starts", exc_info=True)
