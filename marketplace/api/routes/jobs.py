"""Jobs: quote, submit (signed by the renter), list and inspect."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool

from marketplace.api.deps import RawBodyDep, SchedulerDep, ServiceDep
from marketplace.api.errors import SIGNED, UNAVAILABLE, refusal
from marketplace.api.public import assignment_public, image_pull_public, job_public
from marketplace.api.schemas import (
    DisputeRequest,
    JobList,
    JobPublic,
    PlanPublic,
    QuotePublic,
    SignedAssignmentPublic,
    VerifiersPublic,
)
from marketplace.auth import authenticate
from marketplace.compute import disputes, expiry, held, images, jobs
from marketplace.compute.assign import Choice, Item, choose
from marketplace.compute.scheduler import Scheduler
from marketplace.errors import ConflictError, NotFoundError, UnavailableError
from marketplace.service import Service
from protocol import purposes
from protocol.escrow import JobStatus
from protocol.schemas import Address, JobSpec, Signed, spec_hash

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

SUBMIT = purposes.JOB_SUBMIT
DISPUTE = purposes.JOB_DISPUTE


@router.post("/quote", response_model=QuotePublic, responses=UNAVAILABLE)
async def quote(spec: JobSpec, scheduler: SchedulerDep) -> QuotePublic:
    """Who would run this job and what it would cost, without recording anything.

    For a renter's own image (pinned by digest) `image_pull` says which chosen providers
    must pull it first, how large it is and about how long that takes (null when all
    hold it); matching charged that pull in their scores, so a provider holding the
    image wins unless another is enough nearer or on cheaper power."""
    if scheduler.index_current():  # a query on the current index: well under a millisecond
        return _quote(spec, scheduler)
    return await run_in_threadpool(_quote, spec, scheduler)  # rebuilds the index first


def _quote(spec: JobSpec, scheduler: Scheduler) -> QuotePublic:
    matches = scheduler.candidates([("quote", spec)])[0]
    item = Item("quote", spec, matches)
    chosen = choose([item], scheduler.records)["quote"]
    held.check_window(spec, time.time())
    planned = scheduler.plan(item, chosen) if len(chosen) == spec.replicas else None
    candidates = [assignment_public(r, spec) for r in scheduler.assignment_rows(chosen)]
    enough = len(chosen) == spec.replicas
    pull = scheduler.pull_of(spec)
    pulling = images.pullers(pull, scheduler.records, [c.provider for c in candidates])
    return QuotePublic(
        spec_hash=spec_hash(spec),
        candidates=candidates,
        price_wei=max((c.cost_wei for c in candidates), default=None) if enough else None,
        reason="" if enough else scheduler.explain(spec, len(chosen)),
        image_pull=image_pull_public(pull, pulling) if enough else None,
        plan=PlanPublic.model_validate(planned.plan) if planned else None,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobPublic,
    responses={**SIGNED, **UNAVAILABLE},
)
async def submit(
    body: Signed[JobSpec], raw: RawBodyDep, service: ServiceDep, scheduler: SchedulerDep
) -> JobPublic:
    """Submit a job signed by the renter (purpose `dcloud/job.submit`).

    The job waits for the next batch (a short window), is matched and packed, and comes
    back with the chosen providers and their direct endpoints; its status is `matched` or
    `unmatched` with the reason (the first constraint no provider meets, as the quote
    says). The renter then funds the escrow with `spec_hash` and sends inputs to the
    providers directly; a match not funded within `DCLOUD_MATCH_EXPIRES_S` becomes
    `expired` and its providers' capacity is released.
    """

    def record() -> str:
        with service.writing(), service.sessions() as session, session.begin():
            renter = authenticate(
                session, purpose=SUBMIT, raw=raw, max_skew_s=service.settings.signature_max_skew_s
            )
            return jobs.create(session, renter=renter, spec=body.payload, grid=service.grid).id

    job_id = await run_in_threadpool(record)
    try:
        await scheduler.submit(job_id, body.payload)
    except TimeoutError:
        raise UnavailableError(
            f"job {job_id} is recorded but matching did not finish in time; poll /v1/jobs/{job_id}"
        ) from None
    except asyncio.CancelledError:
        raise UnavailableError("the marketplace is shutting down; submit again") from None
    return await run_in_threadpool(_get_public, service, job_id, False)


@router.post(
    "/disputes",
    response_model=VerifiersPublic,
    responses={
        **SIGNED,
        404: refusal("no such job funded through this marketplace"),
        409: refusal("the job is not the signer's, or cannot be disputed now"),
        **UNAVAILABLE,
    },
)
def dispute_verifiers(
    body: Signed[DisputeRequest], raw: RawBodyDep, service: ServiceDep, scheduler: SchedulerDep
) -> VerifiersPublic:
    """Two verifiers for the renter's dispute of a single-replica job (purpose
    `dcloud/job.dispute`), drawn at random and signed by the matcher for the escrow.

    The renter then calls `dispute` on the escrow with this signed draw and sends the
    job to both verifiers, as to any provider.
    """
    chain, matcher = service.chain, service.matcher
    if chain is None or matcher is None:
        raise UnavailableError(
            "this marketplace signs no disputes (it needs a chain and DCLOUD_MATCHER_KEY)"
        )
    job_id = body.payload.chain_job_id
    with service.writing(), service.sessions() as session, session.begin():
        renter = authenticate(
            session, purpose=DISPUTE, raw=raw, max_skew_s=service.settings.signature_max_skew_s
        )
        row = jobs.by_chain_id(session, job_id)
        spec = JobSpec.model_validate(row.spec) if row is not None else None
    job = chain.jobs.job(job_id)
    if job.status == JobStatus.NONE or row is None or spec is None:
        raise NotFoundError(f"no job {job_id} funded through this marketplace")
    if job.renter.lower() != renter.lower():
        raise ConflictError(f"job {job_id} is not yours: only its renter may dispute it")
    if job.status != JobStatus.FUNDED or job.replicas != 1 or job.committed != 1:
        raise ConflictError(
            f"job {job_id} cannot be disputed: only a single-replica job whose provider "
            "committed a result, inside its challenge window"
        )
    original = chain.jobs.replicas(job)[0].provider
    scheduler.index()  # the providers as of their latest heartbeats
    records = scheduler.records
    matches = disputes.eligible(records, spec)
    drawn = disputes.draw_verifiers(
        matches,
        cost_of=lambda p: jobs.cost_wei(records[p].price_wei, spec) if p in records else None,
        job_price=job.price,
        exclude={original, renter},
    )
    signed = matcher.verifiers(job_id=job_id, providers=drawn)
    by_id = {m.provider_id: m for m in matches}
    rows = scheduler.assignment_rows(
        [Choice(by_id[p], records[p].price_wei, records[p].reputation) for p in drawn]
    )
    with service.writing(), service.sessions() as session, session.begin():
        jobs.set_verifiers(session, row.id, rows)
    return VerifiersPublic(
        chain_job_id=job_id, endpoints=[a.endpoint for a in rows], **signed.to_json()
    )


@router.get("", response_model=JobList)
def list_jobs(
    service: ServiceDep,
    renter: Annotated[Address | None, Query()] = None,
    status_: Annotated[str | None, Query(alias="status", max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> JobList:
    """Jobs, newest first; filter by renter and status."""
    expiry.expire_due(service)
    with service.sessions() as session:
        total, rows = jobs.list_page(
            session, renter=renter, status=status_, limit=limit, offset=offset
        )
        items = [job_public(r, chain_job=jobs.chain_job(session, r)) for r in rows]
    return JobList(total=total, limit=limit, offset=offset, items=items)


@router.get("/{job_id}", response_model=JobPublic, responses={404: refusal("no such job")})
def get_job(job_id: str, service: ServiceDep) -> JobPublic:
    """One job with its assignments, on-chain state and chain events."""
    return _get_public(service, job_id, True)


def _get_public(service: Service, job_id: str, with_events: bool) -> JobPublic:
    expiry.expire_due(service)
    with service.sessions() as session:
        row = jobs.get(session, job_id)
        public = job_public(
            row,
            chain_job=jobs.chain_job(session, row),
            events=jobs.chain_events(session, row) if with_events else (),
        )
    return _signed(service, public)


def _signed(service: Service, public: JobPublic) -> JobPublic:
    """A matched replicated job with the matcher's signature of its providers."""
    if service.matcher is None or public.status != "matched" or public.spec.replicas < 2:
        return public
    providers = [a.provider for a in sorted(public.assignments, key=lambda a: a.slot)]
    signed = service.matcher.assignment(
        renter=public.renter, spec_hash=public.spec_hash, providers=providers
    )
    public.assignment = SignedAssignmentPublic(**signed.to_json())
    return public
