"""The service health state machine and restart backoff (no Docker)."""

from __future__ import annotations

import pytest

from agents.provider.services.health import Backoff, Health
from agents.provider.services.store import FAILED, HEALTHY, RESTARTING, STARTING, UNHEALTHY
from protocol.services import HealthCheck


def machine(**check: object) -> Health:
    base: dict[str, object] = {"failures": 2, "restart_after": 4, "start_period_s": 10}
    return Health(
        check=HealthCheck.model_validate({**base, **check}),
        backoff=Backoff(base_s=1, cap_s=8, reset_after_s=60),
        started_at=100.0,
    )


def test_backoff_doubles_up_to_its_cap():
    b = Backoff(base_s=1, cap_s=8)
    assert [b.delay(n) for n in range(6)] == [1, 2, 4, 8, 8, 8]
    assert b.delay(10_000) == 8


def test_a_passing_check_makes_a_starting_service_healthy_and_starts_its_uptime():
    h = machine()
    assert not h.checked("", 101.0)
    assert (h.state, h.healthy_since) == (HEALTHY, 101.0)


def test_failures_in_the_start_period_do_not_count():
    h = machine()
    assert not h.checked("refused", 105.0)
    assert (h.state, h.failures, h.last_error) == (STARTING, 0, "")
    h.checked("refused", 111.0)
    h.checked("refused", 112.0)
    assert (h.state, h.failures, h.last_error) == (UNHEALTHY, 2, "refused")


def test_healthy_becomes_unhealthy_after_failures_then_recovers():
    h = machine()
    h.checked("", 101.0)
    assert not h.checked("GET / answered 500", 102.0)
    assert h.state == HEALTHY
    assert not h.checked("GET / answered 500", 103.0)
    assert h.state == UNHEALTHY
    h.checked("", 104.0)
    assert (h.state, h.failures, h.healthy_since) == (HEALTHY, 0, 101.0)


def test_restart_after_failures_in_a_row_asks_for_a_restart():
    h = machine()
    h.checked("", 101.0)
    asks = [h.checked("GET / answered 500", 102.0 + i) for i in range(4)]
    assert asks == [False, False, False, True]
    assert h.last_error == "failed 4 health checks in a row: GET / answered 500"


def test_never_restarted_for_failed_checks_when_restart_after_is_zero():
    h = machine(restart_after=0)
    assert not any(h.checked("x", 200.0 + i) for i in range(50))
    assert h.state == UNHEALTHY


def test_exit_waits_for_the_backoff_and_restarts_count_and_grow_it():
    h = machine()
    h.exited("exited with code 1", 200.0)
    assert (h.state, h.healthy_since, h.restart_at) == (RESTARTING, None, 201.0)
    h.exited("killed (exit code 137)", 200.5)  # seen again: the first reason stays
    assert (h.last_error, h.restart_at) == ("exited with code 1", 201.0)
    assert not h.due(200.9) and h.due(201.0)
    h.restarted(201.0)
    assert (h.state, h.restarts, h.started_at) == (STARTING, 1, 201.0)
    h.exited("exited with code 1", 202.0)
    assert h.restart_at == 204.0  # 2 s: the second restart in a row
    h.restarted(204.0)
    h.exited("exited with code 1", 205.0)
    assert h.restart_at == 209.0


def test_staying_healthy_resets_the_backoff():
    h = machine()
    for t in (200.0, 210.0):
        h.exited("exited with code 1", t)
        h.restarted(t + 5)
    assert h.streak == 2
    h.checked("", 216.0)
    h.checked("", 276.0)
    assert h.streak == 0
    h.exited("exited with code 1", 300.0)
    assert h.restart_at == 301.0


@pytest.mark.parametrize("event", ["check", "exit"])
def test_a_failed_service_stays_failed(event):
    h = machine()
    h.failed("/data grew past its 4 MB; stopped")
    if event == "check":
        h.checked("", 300.0)
    else:
        h.exited("exited with code 0", 300.0)
    assert (h.state, h.last_error) == (FAILED, "/data grew past its 4 MB; stopped")
    assert not h.due(10_000.0)
