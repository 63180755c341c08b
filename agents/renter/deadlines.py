"""A job's deadlines and what its renter can do about it now, in words.

Mirrors the escrow's rules (``contracts/JobEscrow.sol``: ``cancel``, ``confirm``,
``dispute``, ``claimNoShow``, ``finalize``) so the CLI can say when each step opens
before the contract would refuse it, and so a refusal can say when to come back.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.escrow import ChainJob, Escrow, JobStatus, Windows
from protocol.reverts import Revert, when


def held_until(job: ChainJob, windows: Windows, now: float) -> int | None:
    """A held job's start (``JobEscrow.fundAt``) while it is still ahead; else None."""
    start = job.accept_by - windows.accept
    return start if job.live and job.accepted == 0 and start > now else None


def deadlines(
    job: ChainJob, *, now: float, windows: Windows | None = None
) -> list[tuple[str, str]]:
    """(label, "14:32:05 local time (in 2 min)") for each deadline the job has."""
    out = [("accept by", when(job.accept_by, now)), ("deadline", when(job.deadline, now))]
    start = held_until(job, windows, now) if windows is not None else None
    if start is not None:
        out.insert(0, ("held until", when(start, now)))
    if job.challenge_ends:
        out.append(("challenge ends", when(job.challenge_ends, now)))
    return out


def no_show_at(job: ChainJob, windows: Windows) -> int | None:
    """After when claimNoShow succeeds, or None when it never can for this job as it is."""
    if job.accepted == 0 or job.revealed != 0:
        return None
    if job.committed == 0:
        return job.deadline
    if job.replicas == 1:
        return None  # a single replica's commitment is a delivered result
    return job.deadline + windows.reveal


def can_cancel(job: ChainJob, now: float) -> bool:
    if job.status != JobStatus.FUNDED or job.committed != 0:
        return False
    lapsed = (
        now > job.accept_by
        and job.accepted < job.replicas
        and (job.accepted == 0 or now <= job.deadline)
    )
    return job.accepted == 0 or lapsed


def can_confirm(job: ChainJob, now: float) -> bool:
    if not job.live:
        return False
    if job.replicas == 1:
        return job.committed == 1
    return job.revealed == job.replicas or (
        job.revealed == job.accepted and job.revealed > 0 and now > job.accept_by
    )


def actions(job: ChainJob, windows: Windows, *, now: float) -> list[str]:
    """What the renter can do now, and what opens later, one line each."""
    n = job.job_id
    if not job.live:
        return [f"nothing: the job is {job.status.name.lower()}"]
    out = []
    if can_confirm(job, now):
        out.append(f"confirm it (`dcloud job confirm {n}`) to pay the providers now")
    disputable = job.status == JobStatus.FUNDED and job.replicas == 1 and job.committed == 1
    if disputable and now <= job.challenge_ends:
        out.append(f"dispute it (`dcloud job dispute {n}`) until {when(job.challenge_ends, now)}")
    no_show = no_show_at(job, windows)
    if no_show is not None:
        if now > no_show:
            out.append(f"claim it as a no-show (`dcloud job claim-no-show {n}`) now")
        else:
            out.append(f"claim it as a no-show after {when(no_show, now)} if no result comes")
    if can_cancel(job, now):
        until = held_until(job, windows, now)
        tail = f" until it starts, {when(until, now)}" if until is not None else ""
        out.append(f"cancel it (`dcloud job cancel {n}`) for a full refund{tail}")
    elif (
        job.status == JobStatus.FUNDED
        and job.committed == 0
        and job.accepted < job.replicas
        and now <= job.accept_by
    ):
        out.append(
            f"cancel it after the accept window, {when(job.accept_by, now)}, "
            "if a provider still has not accepted"
        )
    if not out:
        out.append("wait: the providers are working on it")
    return out


def no_show_hint(job: ChainJob, windows: Windows, *, now: float) -> str:
    """Why claimNoShow refuses this job now, and when (or whether) it will not."""
    n = job.job_id
    if not job.live:
        return f"job {n} is {job.status.name.lower()} already"
    if job.accepted == 0:
        return f"no provider accepted job {n}; cancel it instead (`dcloud job cancel {n}`)"
    if job.revealed != 0:
        return f"a provider revealed a result for job {n}; fetch it and confirm"
    at = no_show_at(job, windows)
    if at is None:
        return (
            f"job {n}'s provider committed a result: fetch it (`dcloud job result {n}`), "
            "then confirm or dispute it"
        )
    which = "its deadline" if job.committed == 0 else "its reveal window"
    return f"job {n} can be claimed as a no-show after {which}, {when(at, now)}"


def revert_hint(escrow: Escrow) -> Callable[[Revert], str | None]:
    """A wallet hint (``Wallet.hint``): for a refusal about a job, what its deadlines say."""

    def hint(revert: Revert) -> str | None:
        if revert.name != "EscrowNotNoShow" or revert.job_id is None:
            return None
        job = escrow.job(revert.job_id)
        return no_show_hint(job, escrow.windows(), now=escrow.now())

    return hint
