"""Filling a revert's template: each value shown by its kind (see ``catalogue.KINDS``)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from eth_utils.crypto import keccak

from protocol.reverts.catalogue import KINDS

FIELD = re.compile(r"\{(\w+)(?::(\w+))?\}")
WEI = 10**18

NAMES: dict[str, Any] = {
    "jobstatus": ["none", "funded", "disputed", "settled", "cancelled"],
    "replicastate": ["none", "accepted", "committed", "revealed", "paid", "slashed", "released"],
    "dealstatus": ["none", "offered", "active", "completed", "cancelled", "slashed"],
    "leasestatus": ["none", "offered", "running", "ended"],
    "role": {
        "0x" + "00" * 32: "admin",
        "0x" + keccak(text="SLASHER_ROLE").hex(): "slasher",
        "0x" + keccak(text="AUDITOR_ROLE").hex(): "auditor",
        "0x" + keccak(text="PROBER_ROLE").hex(): "prober",
        "0x" + keccak(text="WATCHER_ROLE").hex(): "watcher",
        "0x" + keccak(text="FAILOVER_ROLE").hex(): "failover",
    },
}


def relative(ts: float, now: float) -> str:
    """'in 2 min', '3 min ago', 'now'."""
    delta = round(ts - now)
    size = abs(delta)
    if size < 1:
        return "now"
    if size < 90:
        amount = f"{size} s"
    elif size < 90 * 60:
        amount = f"{round(size / 60)} min"
    elif size < 36 * 3600:
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} days"
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def when(ts: float, now: float | None = None) -> str:
    """'14:32:05 local time (in 2 min)'; the date too when it is not today."""
    now = time.time() if now is None else now
    moment = datetime.fromtimestamp(ts).astimezone()
    today = datetime.fromtimestamp(now).astimezone().date()
    shown = moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M:%S")
    return f"{shown} local time ({relative(ts, now)})"


def _amount(wei: int, unit: str) -> str:
    text = format(Decimal(wei) / WEI, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def _named(kind: str, value: int) -> str:
    names = NAMES[kind]
    return str(names[value]) if 0 <= value < len(names) else f"state {value}"


def show(kind: str, value: Any, *, now: float | None = None) -> str:
    """One value as the template shows it."""
    if isinstance(value, bytes):
        hexed = "0x" + value.hex()
        return str(NAMES["role"].get(hexed, hexed)) if kind == "role" else hexed
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    if kind == "time":
        return when(value, now)
    if kind == "tokens":
        return _amount(value, "DCT")
    if kind == "eth":
        return _amount(value, "ETH")
    if kind == "bps":
        return f"{value / 100:g} %"
    if kind == "seconds":
        return f"{value} s"
    if kind in ("jobstatus", "replicastate", "dealstatus", "leasestatus"):
        return _named(kind, value)
    return str(value)


def fill(template: str, args: dict[str, Any], *, now: float | None = None) -> str:
    """The template with each `{name}` or `{name:kind}` replaced by its shown value."""

    def one(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2) or KINDS.get(m.group(1), "plain")
        return show(kind, args[name], now=now) if name in args else m.group(0)

    return FIELD.sub(one, template)
