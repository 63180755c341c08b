"""Rates as people type them ("0.001/h", "0.5/day", "1e-6/s", "1000000000wei/s") and
as a lease counts them (token wei per second); durations and moments as people read them.
"""

from __future__ import annotations

import re
import time
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from agents.errors import UserError
from agents.units import WEI, fmt_tokens
from protocol.services import MAX_RATE_WEI_PER_S

SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(
    r"^\s*(?P<amount>[0-9.eE+-]+)\s*(?P<unit>wei|dct)?\s*/\s*(?P<per>[a-z]+?)s?\s*$",
    re.IGNORECASE,
)
_HELP = "write it like 0.001/h, 0.5/day, 1e-6/s (tokens per hour, day or second) or 1000wei/s"


def parse_rate(text: str) -> int:
    """'0.001/h' → token wei per second, rounded down (a most-you-pay never rounds up).

    Amounts are tokens unless they end in ``wei`` (whole wei only); the period is ``s``,
    ``min``, ``h`` or ``day`` (``second``, ``hour``, ... and plurals too).

    Raises:
        UserError: not a rate, a negative one, one under 1 wei per second, or one over
            the most a lease may cost.
    """
    m = _RATE.match(text)
    per = SECONDS.get(m.group("per").lower()) if m else None
    if m is None or per is None:
        raise UserError(f"{text!r} is not a rate; {_HELP}")
    try:
        amount = Decimal(m.group("amount"))
    except InvalidOperation:
        raise UserError(f"{text!r} is not a rate; {_HELP}") from None
    if not amount.is_finite() or amount <= 0:
        raise UserError(f"{text!r} is not a positive rate; {_HELP}")
    in_wei = (m.group("unit") or "").lower() == "wei"
    if in_wei and amount != amount.to_integral_value():
        raise UserError(f"{text!r}: wei are whole numbers; {_HELP}")
    wei = amount if in_wei else amount * WEI
    per_second = int((wei / per).to_integral_value(rounding=ROUND_FLOOR))
    if per_second < 1:
        raise UserError(
            f"{text!r} is less than 1 wei per second, the smallest rate a lease can have "
            f"({fmt_rate(1)})"
        )
    if per_second > MAX_RATE_WEI_PER_S:
        raise UserError(
            f"{text!r} is more than a service may cost ({fmt_rate(MAX_RATE_WEI_PER_S)})"
        )
    return per_second


def fmt_rate(wei_per_s: int, *, per: str = "h") -> str:
    """wei per second → '0.0018 DCT/h' (exact: a rate is whole wei per second)."""
    return f"{fmt_tokens(wei_per_s * SECONDS[per])}/{per}"


def fmt_duration(seconds: float) -> str:
    """3725 → '1 h 2 min'; the two largest units, whole numbers."""
    s = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size} {unit}")
            s %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def fmt_moment(at: float, *, now: float) -> str:
    """A moment in local time with how far it is: '2024-05-01 14:03 (in 3 h 2 min)'."""
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    delta = at - now
    relative = f"in {fmt_duration(delta)}" if delta >= 0 else f"{fmt_duration(-delta)} ago"
    return f"{local} ({relative})"
