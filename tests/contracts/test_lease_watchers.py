"""LeaseEscrow's watchers: signed down intervals, the quorum, accrual stopping while
down, and the slash of a provider down past the grace period.

Watchers are bare keys (``conftest.WATCHER_KEYS``, appointed by the deployment
fixture); reports are posted by whoever pays the gas. Pay, slash and refund are
checked to the wei against the seconds the chain stamped.
"""

import itertools

import pytest
from brownie import chain
from conftest import (
    CLOSED_BY_RENTER,
    DOWN_PAST_GRACE,
    LEASE_COLLATERAL,
    LEASE_DEPOSIT,
    LEASE_ENDED,
    PARAMS,
    RATE,
    STRANGER_KEY,
    WATCHER_KEYS,
    WATCHERS,
    down,
    land_at,
    plain,
    watch_sig,
)

from protocol.leases import down_report

GRACE = PARAMS.lease_grace
SLASH_BPS = PARAMS.lease_slash_bps
FEE_BPS = PARAMS.fee_bps
TREASURY_SHARE = PARAMS.slash_treasury_bps
DEFAULT_ADMIN_ROLE = "0x" + "00" * 32


def fee_of(amount):
    return amount * FEE_BPS // 10_000


def serving(lease_driver, renter, provider):
    """A serving lease and the second its serving report landed."""
    lease_id = lease_driver.open_serving(renter, provider)
    return lease_id, lease_driver.lease(lease_id)["servingAt"]


def post(leases, reports, at, sender):
    """Post `reports` in one transaction landing at `at`."""
    land_at_or_later(at)
    return leases.reportDown(reports, {"from": sender})


def land_at_or_later(at):
    if chain.time() < at:
        land_at(at)


# ---------------------------------------------------------------------- quorum


def test_a_quorum_down_interval_is_not_paid_and_moves_the_run_out(
    leases, lease_driver, renter, outsider, providers
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    runs_out = leases.runsOutAt(lease_id)
    tx = post(leases, [down(leases, lease_id, s + 20, s + 50)], s + 60, outsider)
    assert tx.return_value == 1
    event = tx.events["LeaseDown"]
    assert (event["leaseId"], event["from"], event["to"], event["downSeconds"]) == (
        lease_id,
        s + 20,
        s + 50,
        30,
    )
    lease = lease_driver.lease(lease_id)
    assert (lease["downSeconds"], lease["downSince"], lease["downTo"], lease["failedAt"]) == (
        30,
        s + 20,
        s + 50,
        0,
    )
    assert leases.runsOutAt(lease_id) == runs_out + 30
    lease_driver.sleep_to(s + 100)
    settled = leases.settle(lease_id, {"from": providers[0]})
    gross = (s + 100 - accepted_at - 30) * RATE
    assert settled.events["LeaseSettled"]["amount"] == gross - fee_of(gross)
    assert lease_driver.lease(lease_id)["paid"] == gross


def test_one_watcher_alone_changes_nothing(
    leases, lease_driver, renter, outsider, providers, reverts
):
    """A lying watcher (or the provider's rival) alone: refused, the lease accrues on."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    land_at_or_later(s + 40)
    alone = down(leases, lease_id, s, s + 30, keys=WATCHER_KEYS[:1])
    with reverts("LeaseNoQuorum", lease_id, 1, 2):
        leases.reportDown([alone], {"from": outsider})
    with_stranger = down(leases, lease_id, s, s + 30, keys=[WATCHER_KEYS[0], STRANGER_KEY])
    with reverts("LeaseNoQuorum", lease_id, 1, 2):
        leases.reportDown([with_stranger], {"from": outsider})
    assert lease_driver.lease(lease_id)["downSeconds"] == 0


def test_duplicate_signatures_of_one_watcher_count_once(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    land_at_or_later(s + 40)
    _, sig = watch_sig(leases, WATCHER_KEYS[0], lease_id, s, s + 30)
    with reverts("LeaseNoQuorum", lease_id, 1, 2):
        leases.reportDown([(lease_id, s, s + 30, [sig, sig, sig])], {"from": outsider})


def test_signatures_out_of_signer_order_do_not_count(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    land_at_or_later(s + 40)
    entry = down(leases, lease_id, s, s + 30)
    with reverts("LeaseNoQuorum", lease_id, 1, 2):
        leases.reportDown([(lease_id, s, s + 30, entry[3][::-1])], {"from": outsider})
    assert leases.reportDown([entry], {"from": outsider}).return_value == 1


@pytest.mark.parametrize(
    "forged", ["other-lease", "other-interval", "other-chain", "other-escrow", "up"]
)
def test_signatures_of_anything_else_are_refused(
    leases, lease_driver, renter, outsider, providers, reverts, forged
):
    """The quorum's signatures reused for another lease, interval, chain or escrow, or
    their "up" reports presented as "down", count for nothing."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    other_id, _ = serving(lease_driver, renter, providers[1])
    land_at_or_later(s + 40)
    signed_for = {
        "other-lease": dict(lease_id=other_id, start=s, end=s + 30),
        "other-interval": dict(lease_id=lease_id, start=s, end=s + 31),
        "other-chain": dict(lease_id=lease_id, start=s, end=s + 30, chain_id=chain.id + 1),
        "other-escrow": dict(lease_id=lease_id, start=s, end=s + 30, escrow=providers[2].address),
        "up": dict(lease_id=lease_id, start=s, end=s + 30, up=True),
    }[forged]
    lease_for, start, end = (signed_for.pop(k) for k in ("lease_id", "start", "end"))
    signed = [
        watch_sig(leases, key, lease_for, start, end, **signed_for) for key in WATCHER_KEYS[:2]
    ]
    report = down_report(lease_id, s, s + 30, signed)
    with reverts("LeaseNoQuorum", lease_id, 0, 2):
        leases.reportDown([report], {"from": outsider})


def test_a_removed_watcher_no_longer_counts(
    leases, lease_driver, deployer, renter, outsider, providers, reverts
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    leases.revokeRole(leases.WATCHER_ROLE(), WATCHERS[1], {"from": deployer})
    land_at_or_later(s + 40)
    with reverts("LeaseNoQuorum", lease_id, 1, 2):
        leases.reportDown([down(leases, lease_id, s, s + 30)], {"from": outsider})
    kept = down(leases, lease_id, s, s + 30, keys=[WATCHER_KEYS[0], WATCHER_KEYS[2]])
    assert leases.reportDown([kept], {"from": outsider}).return_value == 1


def test_a_quorum_that_cannot_be_reached(
    leases, lease_driver, deployer, renter, outsider, providers, reverts
):
    """Quorum 4 with three watchers appointed: no down interval can ever count."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    leases.setWatchRules(4, GRACE, SLASH_BPS, {"from": deployer})
    land_at_or_later(s + 40)
    with reverts("LeaseNoQuorum", lease_id, 3, 4):
        leases.reportDown(
            [down(leases, lease_id, s, s + 30, keys=WATCHER_KEYS)], {"from": outsider}
        )
    assert lease_driver.lease(lease_id)["downSeconds"] == 0


def test_watch_rules_are_the_admins_and_bounded(leases, deployer, outsider, reverts):
    assert plain(leases.watchRules()) == (2, GRACE, SLASH_BPS)
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        leases.setWatchRules(3, 60, 1_000, {"from": outsider})
    with reverts("LeaseBadWatchRules", 1, 60, 1_000):  # one watcher alone must never do
        leases.setWatchRules(1, 60, 1_000, {"from": deployer})
    with reverts("LeaseBadWatchRules", 2, 86_401, 1_000):
        leases.setWatchRules(2, 86_401, 1_000, {"from": deployer})
    with reverts("LeaseBadWatchRules", 2, 60, 10_001):
        leases.setWatchRules(2, 60, 10_001, {"from": deployer})
    tx = leases.setWatchRules(3, 60, 1_000, {"from": deployer})
    assert plain(tx.events["WatchRulesSet"].values()) == (3, 60, 1_000)


# -------------------------------------------------------------------- intervals


def test_overlapping_and_repeated_intervals_count_once(
    leases, lease_driver, renter, outsider, providers
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    first = down(leases, lease_id, s + 10, s + 40)
    tx = post(leases, [first, first], s + 60, outsider)  # the same report twice in a batch
    assert tx.return_value == 1
    assert leases.reportDown([first], {"from": outsider}).return_value == 0  # and again later
    overlap = down(leases, lease_id, s + 20, s + 50)
    tx = leases.reportDown([overlap], {"from": outsider})
    assert tx.return_value == 1
    assert (tx.events["LeaseDown"]["from"], tx.events["LeaseDown"]["to"]) == (s + 40, s + 50)
    inside = down(leases, lease_id, s + 12, s + 30)
    assert leases.reportDown([inside], {"from": outsider}).return_value == 0
    lease = lease_driver.lease(lease_id)
    assert (lease["downSeconds"], lease["downSince"], lease["downTo"]) == (40, s + 10, s + 50)


def test_seconds_before_the_serving_report_are_not_counted(
    leases, lease_driver, renter, outsider, providers
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    tx = post(leases, [down(leases, lease_id, accepted_at, s + 5)], s + 10, outsider)
    assert (tx.events["LeaseDown"]["from"], tx.events["LeaseDown"]["downSeconds"]) == (s, 5)


def test_a_bad_interval_refuses_the_batch(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    land_at_or_later(s + 30)
    with reverts("LeaseBadInterval", lease_id, s + 10, s + 10):
        leases.reportDown([down(leases, lease_id, s + 10, s + 10)], {"from": outsider})
    future = chain.time() + 1_000
    with reverts("LeaseBadInterval", lease_id, s, future):
        leases.reportDown([down(leases, lease_id, s, future)], {"from": outsider})


def test_reports_for_leases_not_serving_are_skipped(
    leases, lease_driver, renter, outsider, providers
):
    offered = lease_driver.open(renter, providers[0])
    running = lease_driver.open_running(renter, providers[1])
    ended, s = serving(lease_driver, renter, providers[2])
    leases.close(ended, {"from": renter})
    land_at_or_later(s + 40)
    reports = [down(leases, i, s, s + 30) for i in (offered, running, ended, 999)]
    tx = leases.reportDown(reports, {"from": outsider})
    assert tx.return_value == 0 and "LeaseDown" not in tx.events


def test_an_interval_after_the_run_out_is_skipped(
    leases, lease_driver, renter, outsider, providers
):
    lease_id, _ = serving(lease_driver, renter, providers[0])
    runs_out = leases.runsOutAt(lease_id)
    tx = post(leases, [down(leases, lease_id, runs_out, runs_out + 10)], runs_out + 20, outsider)
    assert tx.return_value == 0
    tx = leases.settle(lease_id, {"from": outsider})
    assert tx.events["LeaseEnded"]["paidToProvider"] == LEASE_DEPOSIT


def test_a_batch_of_many_leases_in_one_transaction(
    leases, lease_driver, renter, renter2, outsider, providers
):
    pairs = [serving(lease_driver, r, p) for r in (renter, renter2) for p in providers]
    ids, starts = [i for i, _ in pairs], [s for _, s in pairs]
    s = max(starts)
    reports = [down(leases, i, s + 1, s + 31) for i in ids]
    tx = post(leases, reports, s + 40, outsider)
    assert tx.return_value == len(ids) == 10
    assert [e["leaseId"] for e in tx.events["LeaseDown"]] == ids
    assert all(lease_driver.lease(i)["downSeconds"] == 30 for i in ids)


def test_down_seconds_paid_before_their_report_are_netted_not_clawed_back(
    leases, lease_driver, renter, outsider, providers
):
    """A provider that settles before the watchers' report lands keeps what was credited;
    those seconds come off its next pay instead."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    lease_driver.sleep_to(s + 100)
    leases.settle(lease_id, {"from": providers[0]})
    paid = (s + 100 - accepted_at) * RATE
    credit = leases.creditOf(providers[0])
    post(leases, [down(leases, lease_id, s + 50, s + 100)], s + 110, outsider)
    assert lease_driver.lease(lease_id)["paid"] == paid
    assert leases.creditOf(providers[0]) == credit
    assert leases.accruedOf(lease_id) == 0  # 10 s served since, 50 s owed back
    lease_driver.sleep_to(s + 160)
    tx = leases.close(lease_id, {"from": renter})
    served = s + 160 - accepted_at - 50
    assert tx.events["LeaseEnded"]["paidToProvider"] == served * RATE
    assert tx.events["LeaseEnded"]["refundedToRenter"] == LEASE_DEPOSIT - served * RATE
    assert tx.events["LeaseSettled"]["amount"] + tx.events["LeaseSettled"]["fee"] == 10 * RATE


# ------------------------------------------------------------------------ grace


def fail_lease(leases, lease_driver, lease_id, start, sender, *, pieces=3):
    """Report the lease down from `start` for GRACE + 1 seconds, in contiguous pieces."""
    end = start + GRACE + 1
    cuts = [start + (end - start) * i // pieces for i in range(pieces + 1)]
    reports = [down(leases, lease_id, a, b) for a, b in itertools.pairwise(cuts)]
    return post(leases, reports, end + 5, sender)


def test_a_provider_down_past_grace_is_slashed_and_paid_to_the_failure(
    leases, lease_driver, registry, token, renter, outsider, providers, treasury, reverts
):
    """The provider claims to be up; a quorum says down: no pay for those seconds,
    slashed by the slash share past the grace period."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    staked = registry.stakeOf(providers[0])[0]
    tx = fail_lease(leases, lease_driver, lease_id, s + 30, outsider)
    assert tx.return_value == 3
    failed = tx.events["LeaseDownPastGrace"]
    assert (failed["leaseId"], failed["provider"], failed["failedAt"]) == (
        lease_id,
        providers[0],
        s + 30,
    )
    assert lease_driver.lease(lease_id)["failedAt"] == s + 30
    with reverts("LeaseFailed", lease_id, s + 30):
        leases.settle(lease_id, {"from": providers[0]})
    assert leases.settleMany([lease_id], {"from": providers[0]}).return_value == 0
    chain.sleep(500)  # however late it is ended, pay stops at the failure
    renter_before, treasury_before = token.balanceOf(renter), token.balanceOf(treasury)
    tx = leases.claimDownPastGrace(lease_id, {"from": outsider})
    earned = (s + 30 - accepted_at) * RATE
    ended = tx.events["LeaseEnded"]
    assert (ended["reason"], ended["paidToProvider"], ended["refundedToRenter"]) == (
        DOWN_PAST_GRACE,
        earned,
        LEASE_DEPOSIT - earned,
    )
    cut = LEASE_COLLATERAL * SLASH_BPS // 10_000
    assert tx.events["LeaseSlashed"]["collateral"] == cut
    share = cut * TREASURY_SHARE // 10_000
    assert token.balanceOf(renter) - renter_before == cut - share
    assert token.balanceOf(treasury) - treasury_before == share
    assert registry.stakeOf(providers[0])[0] == staked - cut
    assert registry.lockedBy(leases, providers[0]) == 0
    assert leases.creditOf(providers[0]) == earned - fee_of(earned)
    assert leases.creditOf(renter) == LEASE_DEPOSIT - earned
    lease = lease_driver.lease(lease_id)
    assert (lease["status"], lease["reason"]) == (LEASE_ENDED, DOWN_PAST_GRACE)


def test_down_for_exactly_the_grace_is_not_a_failure(
    leases, lease_driver, renter, outsider, providers, reverts
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    tx = post(leases, [down(leases, lease_id, s, s + GRACE)], s + GRACE + 5, outsider)
    assert "LeaseDownPastGrace" not in tx.events
    with reverts("LeaseNotDownPastGrace", lease_id):
        leases.claimDownPastGrace(lease_id, {"from": outsider})


def test_a_gap_between_down_intervals_restarts_the_grace(
    leases, lease_driver, renter, outsider, providers
):
    lease_id, s = serving(lease_driver, renter, providers[0])
    first = down(leases, lease_id, s, s + 100)
    second = down(leases, lease_id, s + 101, s + 201)  # one second up between them
    tx = post(leases, [first, second], s + 210, outsider)
    assert tx.return_value == 2 and "LeaseDownPastGrace" not in tx.events
    lease = lease_driver.lease(lease_id)
    assert (lease["downSeconds"], lease["downSince"], lease["failedAt"]) == (200, s + 101, 0)
    third = down(leases, lease_id, s + 150, s + 230)  # overlaps, so contiguous: 129 s
    tx = post(leases, [third], s + 235, outsider)
    assert tx.events["LeaseDownPastGrace"]["failedAt"] == s + 101


@pytest.mark.parametrize("closer", ["renter", "provider"])
def test_closing_a_failed_lease_is_the_down_past_grace_ending(
    leases, lease_driver, registry, renter, outsider, providers, closer, reverts
):
    """The provider cannot walk away from its slash, nor be paid past the failure."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    fail_lease(leases, lease_driver, lease_id, s + 10, outsider)
    with reverts("LeaseNotParty", lease_id, outsider.address):
        leases.close(lease_id, {"from": outsider})
    who = renter if closer == "renter" else providers[0]
    staked = registry.stakeOf(providers[0])[0]
    tx = leases.close(lease_id, {"from": who})
    assert tx.events["LeaseEnded"]["reason"] == DOWN_PAST_GRACE
    assert tx.events["LeaseEnded"]["paidToProvider"] == (s + 10 - accepted_at) * RATE
    assert registry.stakeOf(providers[0])[0] == staked - LEASE_COLLATERAL * SLASH_BPS // 10_000


def test_a_failed_lease_takes_no_more_reports(leases, lease_driver, renter, outsider, providers):
    lease_id, s = serving(lease_driver, renter, providers[0])
    fail_lease(leases, lease_driver, lease_id, s, outsider)
    later = down(leases, lease_id, s + GRACE + 1, s + GRACE + 4)
    assert leases.reportDown([later], {"from": outsider}).return_value == 0


def test_a_renter_close_while_down_ends_as_usual(leases, lease_driver, renter, outsider, providers):
    """Down but not past the grace: the renter's close pays the served seconds only."""
    lease_id, s = serving(lease_driver, renter, providers[0])
    accepted_at = lease_driver.lease(lease_id)["acceptedAt"]
    post(leases, [down(leases, lease_id, s + 5, s + 65)], s + 70, outsider)
    lease_driver.sleep_to(s + 80)
    tx = leases.close(lease_id, {"from": renter})
    assert tx.events["LeaseEnded"]["reason"] == CLOSED_BY_RENTER
    assert tx.events["LeaseEnded"]["paidToProvider"] == (s + 80 - accepted_at - 60) * RATE
    assert "LeaseSlashed" not in tx.events
