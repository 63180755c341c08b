"""Token amounts as people type them ("12.5") and as the chain counts them (wei)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agents.errors import UserError

WEI = 10**18
_WEI_SUFFIX = re.compile(r"^\s*(\d+)\s*wei\s*$", re.IGNORECASE)
_DCT_SUFFIX = re.compile(r"\s*dct\s*$", re.IGNORECASE)


def parse_tokens(text: str) -> int:
    """'12.5', '12.5 DCT' or '12500000000000000000wei' → wei; a clear error for anything else."""
    whole_wei = _WEI_SUFFIX.match(text)
    if whole_wei:
        return int(whole_wei.group(1))
    try:
        value = Decimal(_DCT_SUFFIX.sub("", text).strip())
    except InvalidOperation:
        raise UserError(
            f"{text!r} is not an amount of tokens; write it like 12.5, 12.5 DCT or 500wei"
        ) from None
    if not value.is_finite() or value < 0:
        raise UserError(f"{text!r} is not a positive amount of tokens")
    wei = value * WEI
    if wei != wei.to_integral_value():
        raise UserError(f"{text!r} has more than 18 decimals")
    return int(wei)


def fmt_tokens(wei: int) -> str:
    """wei → '12.5 DCT' (trailing zeros trimmed)."""
    return f"{_decimal(wei)} DCT"


def fmt_eth(wei: int) -> str:
    """wei of ETH → '0.0015 ETH' (trailing zeros trimmed)."""
    return f"{_decimal(wei)} ETH"


def _decimal(wei: int) -> str:
    whole, frac = divmod(wei, WEI)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
