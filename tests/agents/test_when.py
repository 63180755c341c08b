"""Start windows as renters type them (agents/renter/when.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from agents.errors import UserError
from agents.renter.when import parse_when, plan_lines, start_by

NOW = 1_800_000_000.0


def test_relative_clock_iso_and_unix_moments() -> None:
    assert parse_when("+6h", NOW) == NOW + 6 * 3600
    assert parse_when("+90m", NOW) == NOW + 5400
    assert parse_when("+1d", NOW) == NOW + 86400
    assert parse_when(str(int(NOW) + 5), NOW) == NOW + 5
    at = parse_when("18:00", NOW)
    assert NOW < at <= NOW + 86400
    assert datetime.fromtimestamp(at).astimezone().strftime("%H:%M") == "18:00"
    iso = datetime.fromtimestamp(NOW + 7200).astimezone().isoformat()
    assert parse_when(iso, NOW) == NOW + 7200


@pytest.mark.parametrize("bad", ["tomorrow", "25:00", "+6x", ""])
def test_what_is_not_a_moment_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(UserError, match=r"\+6h"):
        parse_when(bad, NOW)


def test_finish_by_leaves_the_time_limit_and_the_past_is_refused() -> None:
    assert start_by(start=None, finish="+6h", time_limit_s=3600, now=NOW) == NOW + 5 * 3600
    assert start_by(start=None, finish=None, time_limit_s=None, now=NOW) is None
    with pytest.raises(UserError, match="not both"):
        start_by(start="+1h", finish="+2h", time_limit_s=60, now=NOW)
    with pytest.raises(UserError, match="in the past"):
        start_by(start=None, finish="+10m", time_limit_s=3600, now=NOW)
    with pytest.raises(UserError, match="--time-limit"):
        start_by(start=None, finish="+6h", time_limit_s=None, now=NOW)


def test_the_plan_reads_as_the_trade() -> None:
    plan = {
        "start_at": int(NOW) + 7200,
        "region": "NO-OSL",
        "provider": "0x" + "ab" * 20,
        "cost_eur": 0.01,
        "cost_now_eur": 0.02,
        "saving_pct": 50.0,
        "km_added": 812.4,
        "co2_g": 10.0,
        "co2_now_g": 300.0,
    }
    lines = plan_lines(plan, NOW)
    assert "in 2 h 0 min" in lines[0] and "NO-OSL" in lines[0]
    assert "50% saved for 812 km added" in lines[1]
    assert "CO2 10 g vs 300 g" in lines[2]
    assert plan_lines(None, NOW) == []
