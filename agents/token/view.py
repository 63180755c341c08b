"""How balances and money coming back read on a terminal (shared by `dcloud token` and
`dcloud job`)."""

from __future__ import annotations

from agents.token.payback import Payback
from agents.token.tokens import Balances
from agents.units import fmt_eth, fmt_tokens


def balance_lines(b: Balances) -> list[str]:
    """One line per kind of holding; credit lines say how to pull it."""
    lines = [
        f"{b.address}",
        f"  wallet          {fmt_tokens(b.wallet)} · {fmt_eth(b.eth)} for gas and the sale",
        f"  JobEscrow       {fmt_tokens(b.job_credit)} credit",
        f"  StorageEscrow   {fmt_tokens(b.storage_credit)} credit",
    ]
    if b.staked or b.unbonding:
        lines.append(
            f"  stake           {fmt_tokens(b.staked)} (locked {fmt_tokens(b.locked)}, "
            f"unbonding {fmt_tokens(b.unbonding)})"
        )
    if b.job_credit or b.storage_credit:
        lines.append("credit waits in the escrows: `dcloud token withdraw` moves it to the wallet")
    return lines


def payback_line(back: Payback, withdrawn: int) -> str:
    """What came back to the renter and from where, and the total the wallet grew by.

    `withdrawn` is what the renter's ``withdraw`` just pulled from JobEscrow: the refund,
    plus any credit that waited there before.
    """
    parts = [f"deposit refund {fmt_tokens(back.refund)} (credited by JobEscrow, withdrawn)"]
    earlier = withdrawn - back.refund
    if earlier > 0:
        parts.append(f"earlier JobEscrow credit {fmt_tokens(earlier)} (withdrawn with it)")
    elif earlier < 0:
        parts[0] = (
            f"deposit refund {fmt_tokens(back.refund)} (credited by JobEscrow; "
            f"{fmt_tokens(withdrawn)} withdrawn now, the rest waits for `dcloud token withdraw`)"
        )
    for s in back.slashes:
        treasury = f"; the treasury kept {fmt_tokens(s.to_treasury)}" if s.to_treasury else ""
        parts.append(
            f"slashed collateral {fmt_tokens(s.to_renter)} of provider {s.provider} "
            f"(paid directly by ProviderRegistry{treasury})"
        )
    total = withdrawn + back.slashed
    return " + ".join(parts) + f" = {fmt_tokens(total)} added to your wallet"
