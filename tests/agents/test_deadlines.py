"""What `dcloud job status` says about a job's deadlines and the renter's next steps."""

from __future__ import annotations

import dataclasses

from agents.renter.deadlines import actions, deadlines, no_show_hint
from protocol.escrow import ChainJob, JobStatus, Windows

NOW = 1_700_000_000
WINDOWS = Windows(accept=60, reveal=60, challenge=30, collateral_bps=1000, fee_bps=100)
FUNDED = ChainJob(
    job_id=10,
    renter="0x" + "11" * 20,
    price=1,
    accept_by=NOW + 60,
    deadline=NOW + 120,
    challenge_ends=0,
    replicas=1,
    accepted=1,
    committed=0,
    revealed=0,
    status=JobStatus.FUNDED,
    open=False,
    collateral=0,
    fee_bps=100,
)


def test_deadlines_are_shown_in_local_and_relative_time():
    shown = dict(deadlines(FUNDED, now=NOW))
    assert shown["accept by"].endswith("local time (in 60 s)")
    assert shown["deadline"].endswith("local time (in 2 min)")
    assert "challenge ends" not in shown
    committed = dataclasses.replace(FUNDED, committed=1, challenge_ends=NOW - 180)
    assert dict(deadlines(committed, now=NOW))["challenge ends"].endswith("(3 min ago)")


def test_an_accepted_job_can_be_claimed_as_a_no_show_after_its_deadline():
    said = actions(FUNDED, WINDOWS, now=NOW)
    assert any(line.startswith("claim it as a no-show after ") for line in said), said
    assert "claim it as a no-show (`dcloud job claim-no-show 10`) now" in actions(
        FUNDED, WINDOWS, now=NOW + 121
    )
    assert no_show_hint(FUNDED, WINDOWS, now=NOW).startswith(
        "job 10 can be claimed as a no-show after its deadline, "
    )


def test_a_committed_single_result_can_be_confirmed_or_disputed_until_the_window_ends():
    job = dataclasses.replace(FUNDED, committed=1, challenge_ends=NOW + 30)
    said = actions(job, WINDOWS, now=NOW)
    assert said[0] == "confirm it (`dcloud job confirm 10`) to pay the providers now"
    assert said[1].startswith("dispute it (`dcloud job dispute 10`) until ")
    assert not any("no-show" in line or "cancel" in line for line in said)


def test_a_job_nobody_accepted_can_be_cancelled():
    job = dataclasses.replace(FUNDED, accepted=0)
    assert actions(job, WINDOWS, now=NOW) == [
        "cancel it (`dcloud job cancel 10`) for a full refund"
    ]
    assert "cancel it instead" in no_show_hint(job, WINDOWS, now=NOW)


def test_a_closed_job_offers_nothing():
    job = dataclasses.replace(FUNDED, status=JobStatus.SETTLED)
    assert actions(job, WINDOWS, now=NOW) == ["nothing: the job is settled"]


def test_a_held_job_says_when_it_starts_and_cancels_in_full_until_then():
    held = dataclasses.replace(FUNDED, accepted=0, accept_by=NOW + 7200 + 60, deadline=NOW + 9000)
    shown = dict(deadlines(held, now=NOW, windows=WINDOWS))
    assert shown["held until"].endswith("(in 2 h)")
    said = " ".join(actions(held, WINDOWS, now=NOW))
    assert "for a full refund until it starts" in said
    started = dataclasses.replace(FUNDED, accepted=0)
    assert "held until" not in dict(deadlines(started, now=NOW, windows=WINDOWS))
