"""An account's tokens: balances, buying from the sale, the dev faucet, transfers, and
pulling escrow credit; and what a closed job gave back to its renter.

``tokens`` holds the wallet-level SDK (:class:`Tokens`), ``payback`` reads a job's refund
and slashes from the chain, ``view`` renders both for the terminal and ``cli`` is
`dcloud token`.
"""

from __future__ import annotations

from agents.token.payback import Payback, Slash, payback
from agents.token.tokens import (
    Balances,
    Purchase,
    Sale,
    Tokens,
    Withdrawal,
    check_recipient,
    faucet_rule,
)

__all__ = [
    "Balances",
    "Payback",
    "Purchase",
    "Sale",
    "Slash",
    "Tokens",
    "Withdrawal",
    "check_recipient",
    "faucet_rule",
    "payback",
]
