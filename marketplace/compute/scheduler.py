"""Batches submitted jobs over a short window, matches and packs them, records assignments.

Each batch: rebuild the matching index if providers changed (off the event loop), query
every job's candidates in one batch query, let the packer choose an assignment for the
whole batch (each replica of a job on a distinct provider, nobody over capacity), then
write the assignments and reserve the capacity in one transaction. Submitters wait on a
future for their job's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from marketplace.compute import expiry, held, images, jobs, providers
from marketplace.compute.assign import Choice, Item, choose
from marketplace.compute.images import ImagePull
from marketplace.compute.unmatched import explain_unmatched
from marketplace.matching import ProviderIndex
from marketplace.matching.records import Match, Provider
from marketplace.service import Service
from marketplace.store.models import AssignmentRow, JobRow
from protocol.schemas import JobSpec

logger = logging.getLogger(__name__)

INDEX_MAX_AGE_S = 5.0
# Heartbeats' free-capacity reports reach the index within this; registrations, price or
# image changes and this scheduler's own reservations rebuild it before its next use.
CAPACITY_REFRESH_S = 1.0


@dataclass
class Pending:
    job_id: str
    spec: JobSpec
    future: asyncio.Future[str] = field(repr=False)


class Scheduler:
    """Owns the batch loop of one service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._queue: list[Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._index: ProviderIndex | None = None
        self._index_version = -1
        self._capacity_version = -1
        self._index_built_at = 0.0
        self._endpoints: dict[str, str] = {}
        self.records: dict[str, Provider] = {}
        self.regions: dict[str, str] = {}
        self.unstaked: frozenset[str] = frozenset()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._queue:
            if not pending.future.done():
                pending.future.cancel()

    async def submit(self, job_id: str, spec: JobSpec) -> str:
        """Queue a recorded job; returns its status after its batch ran."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(job_id, spec, future))
        self._wake.set()
        return await asyncio.wait_for(future, timeout=self.service.settings.submit_timeout_s)

    async def _run(self) -> None:
        settings = self.service.settings
        window = settings.batch_window_ms / 1000
        quiet = min(settings.batch_quiet_ms / 1000, window)
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            await self._gather(loop, window, quiet)
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                outcomes = await asyncio.to_thread(self._assign, batch)
            except Exception as exc:  # never let one bad batch stop the loop
                logger.exception("batch of %d jobs failed", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_result(outcomes[pending.job_id])

    async def _gather(self, loop: asyncio.AbstractEventLoop, window: float, quiet: float) -> None:
        """Let a batch gather: until `window` has passed since the first job, or until no
        new job arrived for `quiet` seconds (a lone job need not wait the whole window)."""
        start = loop.time()
        seen = len(self._queue)
        while (left := window - (loop.time() - start)) > 0:
            await asyncio.sleep(min(quiet, left) if quiet > 0 else left)
            if quiet > 0 and len(self._queue) == seen:
                return
            seen = len(self._queue)

    # ------------------------------------------------------------ worker thread

    def index_current(self) -> bool:
        """Whether :meth:`index` answers without a rebuild (no provider changed since it was
        built, and it is younger than INDEX_MAX_AGE_S): a caller on the event loop may query
        it there, else it should call from a thread."""
        return self._index is not None and index_fresh(
            self.service,
            version=self._index_version,
            capacity=self._capacity_version,
            built_at=self._index_built_at,
        )

    def index(self) -> ProviderIndex:
        """The matching index, rebuilt when providers changed or it grew stale."""
        service = self.service
        if self.index_current():
            assert self._index is not None
            return self._index
        version, capacity = service.providers_version, service.capacity_version
        with service.sessions() as session:
            snap = providers.snapshot(
                session,
                settings=service.settings,
                levels=service.grid.levels(),
                stake_verified=service.stake_verified,
            )
        self._endpoints, self.regions, self.unstaked = snap.endpoints, snap.regions, snap.unstaked
        records = snap.records
        self.records = {p.id: p for p in records}
        new = ProviderIndex(records, weight_km=service.settings.energy_weight_km)
        old, self._index = self._index, new
        if old is not None:
            old.close()
        self._index_version, self._index_built_at = version, time.monotonic()
        self._capacity_version = capacity
        return new

    def pull_of(self, spec: JobSpec) -> ImagePull | None:
        """What a provider without the job's image must pull (None: an offered image)."""
        return images.pull_of(spec.image, spec.image_bytes, self.service.settings)

    def candidates(self, specs: list[tuple[str, JobSpec]]) -> list[list[Match]]:
        """Each job's ranked candidates; providers in its preferred regions come first.
        A renter's image is a preference: providers without it are charged its pull."""
        index = self.index()
        k = self.service.settings.candidates_per_job
        requests = [jobs.request_of(job_id, spec, self.pull_of(spec)) for job_id, spec in specs]
        found = index.query_batch(
            requests, k=max(k, max((s.replicas for _, s in specs), default=1) * 2)
        )
        now, grid = time.time(), self.service.grid
        return [
            held.order(
                spec,
                prefer_regions(matches, set(spec.regions), self.regions)
                if spec.regions
                else matches,
                self.regions,
                grid,
                now,
            )
            for (_, spec), matches in zip(specs, found, strict=True)
        ]

    def plan(self, item: Item, chosen: list[Choice]) -> held.Planned | None:
        """A job with a start window or distance bound: its start and energy trade on the
        provider chosen first (``held.py``); None for other jobs."""
        if not chosen:
            return None
        return held.plan_for(
            item.spec, chosen[0].match, item.matches, self.regions, self.service.grid, time.time()
        )

    def explain(self, spec: JobSpec, placed: int) -> str:
        """Why `spec` got only `placed` of its replicas placed, against the providers of
        the last :meth:`index` (what quote and submit both matched against)."""
        return explain_unmatched(
            spec, placed=placed, providers=self.records, unstaked=self.unstaked
        )

    def endpoints(self, providers: list[str]) -> list[str]:
        """Each provider's direct endpoint, as its last heartbeat announced it."""
        return [self._endpoints.get(p, "") for p in providers]

    def assignment_rows(self, chosen: list[Choice]) -> list[AssignmentRow]:
        """One row per slot, in slot order, with each provider's direct endpoint."""
        return [
            AssignmentRow(
                slot=slot,
                provider=c.match.provider_id,
                endpoint=self._endpoints.get(c.match.provider_id, ""),
                distance_km=c.match.distance_km,
                energy_level=c.match.energy_level,
                score=c.match.score,
                reputation=c.reputation,
                price_wei=c.price_wei,
            )
            for slot, c in enumerate(chosen)
        ]

    def _assign(self, batch: list[Pending]) -> dict[str, str]:
        with self.service.placing:  # service placements take capacity under the same lock
            return self._assign_locked(batch)

    def _assign_locked(self, batch: list[Pending]) -> dict[str, str]:
        service = self.service
        expiry.expire_due(service)  # unfunded matches give their room back first
        matches = self.candidates([(p.job_id, p.spec) for p in batch])
        items = [Item(p.job_id, p.spec, m) for p, m in zip(batch, matches, strict=True)]
        choices = choose(items, self.records)
        outcomes: dict[str, str] = {}
        now = time.time()
        with service.writing(), service.sessions() as session, session.begin():
            for item in items:
                row = session.get(JobRow, item.job_id)
                if row is None:
                    continue
                chosen: list[Choice] = choices.get(item.job_id, [])
                if len(chosen) < item.spec.replicas:
                    row.status = jobs.UNMATCHED
                    row.reason = self.explain(item.spec, len(chosen))
                    service.metrics.matches.labels("unmatched").inc()
                else:
                    row.assignments.extend(self.assignment_rows(chosen))
                    planned = self.plan(item, chosen)
                    if planned is not None:
                        row.start_at, row.plan = planned.start_at, planned.plan
                    if row.start_at is None:  # a held job takes capacity from its start
                        for choice in chosen:
                            providers.reserve(session, choice.match.provider_id, item.spec)
                    row.status, row.matched_at = jobs.MATCHED, now
                    service.metrics.matches.labels("matched").inc()
                outcomes[item.job_id] = row.status
        service.providers_changed()
        return outcomes


def index_fresh(service: Service, *, version: int, capacity: int, built_at: float) -> bool:
    """Whether an index built at `built_at` (monotonic) from providers `version` and
    heartbeats `capacity` may still answer: no provider changed since, younger than
    INDEX_MAX_AGE_S, and capacity reports at most CAPACITY_REFRESH_S behind."""
    age = time.monotonic() - built_at
    return (
        version == service.providers_version
        and age < INDEX_MAX_AGE_S
        and (capacity == service.capacity_version or age < CAPACITY_REFRESH_S)
    )


def prefer_regions(
    matches: list[Match], preferred: set[str], regions: dict[str, str]
) -> list[Match]:
    """A soft preference: candidates in `preferred` regions first, each group in rank order.

    Providers elsewhere stay as fallbacks, so a preference never leaves a job unmatched.
    """
    return sorted(matches, key=lambda m: regions.get(m.provider_id) not in preferred)
