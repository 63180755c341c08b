"""Token amounts as people type them ("12.5") and as the chain counts them (wei)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from agents.errors import UserError

WEI = 10**18


def parse_tokens(text: str) -> int:
    """'12.5' tokens → wei; a clear error for anything else."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UserError(f"{text!r} is not an amount of tokens; write it like 12.5") from None
    if not value.is_finite() or value < 0:
        raise UserError(f"{text!r} is not a positive amount of tokens")
    wei = value * WEI
    if wei != wei.to_integral_value():
        raise UserError(f"{text!r} has more than 18 decimals")
    return int(wei)


def fmt_tokens(wei: int) -> str:
    """wei → '12.5 DCT' (trailing zeros trimmed)."""
    whole, frac = divmod(wei, WEI)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    return f"{text} DCT"
