"""Moments as renters type them (``+6h``, ``18:00``, ``2026-12-05T18:00``) and a job's
start window and energy plan in words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.errors import UserError

_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)\s*([mhd])$")
_UNITS_S = {"m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
HINT = "write it as +6h, +90m, +1d, 18:00 (local time, the next one) or 2026-12-05T18:00"


def parse_when(text: str, now: float) -> int:
    """A moment (unix seconds) from `text`, relative to `now`; a clear error otherwise."""
    text = text.strip()
    if m := _RELATIVE.match(text):
        return int(now + float(m.group(1)) * _UNITS_S[m.group(2)])
    local_now = datetime.fromtimestamp(now).astimezone()
    if m := _CLOCK.match(text):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise UserError(f"{text!r} is not a time of day; {HINT}")
        at = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at.timestamp() <= now:
            at += timedelta(days=1)
        return int(at.timestamp())
    if text.isdigit():
        return int(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not a moment; {HINT}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=local_now.tzinfo)
    return int(at.timestamp())


def start_by(
    *, start: str | None, finish: str | None, time_limit_s: int | None, now: float
) -> int | None:
    """The latest start from ``--start-by`` or ``--finish-by`` (which leaves the job's
    time limit before the deadline); None when neither is given."""
    if start and finish:
        raise UserError("give --start-by or --finish-by, not both")
    if start:
        at = parse_when(start, now)
    elif finish:
        if time_limit_s is None:
            raise UserError("--finish-by needs the job's --time-limit (or one in --spec)")
        at = parse_when(finish, now) - time_limit_s
    else:
        return None
    if at < now:
        what = "--start-by" if start else "--finish-by less the time limit"
        raise UserError(f"{what} is in the past; {HINT}")
    return at


def local(ts: float, now: float) -> str:
    """'14:00 local time (in 2 h 5 min)'."""
    ahead = int(ts - now)
    hours, minutes = divmod(max(ahead, 0) // 60, 60)
    span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    clock = datetime.fromtimestamp(ts).astimezone().strftime("%H:%M")
    return f"{clock} local time (in {span})" if ahead > 0 else f"{clock} local time (now)"


def plan_lines(plan: dict[str, Any] | None, now: float) -> list[str]:
    """The energy trade the marketplace chose a job's hour and place by, in words."""
    if not plan:
        return []
    when = datetime.fromtimestamp(plan["start_at"], UTC)
    lines = [
        f"starts {local(plan['start_at'], now)} ({when:%H:%M} UTC) in {plan['region']} "
        f"on {plan['provider']}",
        f"energy cost {plan['cost_eur']:.4f} EUR vs {plan['cost_now_eur']:.4f} EUR now at the "
        f"nearest provider: {plan['saving_pct']:.0f}% saved for {plan['km_added']:.0f} km added",
    ]
    if plan.get("co2_now_g") is not None and plan.get("co2_g") is not None:
        lines.append(f"CO2 {plan['co2_g']:.0f} g vs {plan['co2_now_g']:.0f} g now and nearest")
    return lines
