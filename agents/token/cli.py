"""`dcloud token`: your tokens. Balance, buy from the sale, the faucet (devnets), transfer,
withdraw escrow credit.

Every command acts for the renter's key (the folder `dcloud job init` made; --home picks
another renter folder), or, with --provider-home, for a provider agent's key (its stake
shows in `balance`; its earnings are JobEscrow credit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agents.errors import UserError
from agents.provider.cli import _connect as provider_key
from agents.renter.cli import _renter
from agents.token.tokens import Tokens
from agents.token.view import balance_lines
from agents.units import fmt_eth, fmt_tokens, parse_tokens

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

Home = Annotated[
    Path | None,
    typer.Option("--home", help="renter folder whose key acts (default ~/.dcloud/renter)"),
]
ProviderHome = Annotated[
    Path | None,
    typer.Option("--provider-home", help="act with this provider agent folder's key instead"),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]
Amount = Annotated[str, typer.Argument(help="tokens: 1.5, '1.5 DCT' or 1500000000000000000wei")]


def _tokens(home: Path | None, provider_home: Path | None) -> Tokens:
    if home is not None and provider_home is not None:
        raise UserError("give --home (a renter's key) or --provider-home (a provider's), not both")
    if provider_home is not None:
        _, _, escrow, wallet = provider_key(provider_home)
        return Tokens(escrow, wallet)
    renter = _renter(home)
    return Tokens(renter.escrow, renter.wallet)


def _wallet_now(tokens: Tokens) -> str:
    return f"wallet now {fmt_tokens(tokens.escrow.balance_of(tokens.address))}"


@app.command()
def balance(home: Home = None, provider_home: ProviderHome = None) -> None:
    """Tokens and ETH in the wallet, credit waiting in the escrows, and any stake."""
    for line in balance_lines(_tokens(home, provider_home).balances()):
        console.print(line, highlight=False)


@app.command()
def buy(
    amount: Amount, yes: Yes = False, home: Home = None, provider_home: ProviderHome = None
) -> None:
    """Buy tokens from the token sale with ETH (shows the price and cost first)."""
    tokens = _tokens(home, provider_home)
    wei = parse_tokens(amount)
    sale, cost = tokens.check_buy(wei)
    console.print(
        f"token sale {sale.address}: {fmt_eth(sale.price)} per DCT, "
        f"{fmt_tokens(sale.available)} left; {fmt_tokens(wei)} cost {fmt_eth(cost)} plus gas",
        highlight=False,
    )
    if not yes:
        typer.confirm(f"pay {fmt_eth(cost)} from {tokens.address}?", abort=True)
    with console.status("buying"):
        bought = tokens.buy(wei)
    console.print(
        f"bought {fmt_tokens(bought.amount)} for {fmt_eth(bought.cost)}; {_wallet_now(tokens)}",
        highlight=False,
    )


@app.command()
def faucet(home: Home = None, provider_home: ProviderHome = None) -> None:
    """Take free tokens from the dev faucet (local dev chains only; elsewhere use `buy`)."""
    tokens = _tokens(home, provider_home)
    drip = tokens.faucet_amount()
    with console.status(f"asking the faucet for {fmt_tokens(drip)}"):
        got = tokens.faucet()
    console.print(
        f"the faucet sent {fmt_tokens(got)} to {tokens.address}; {_wallet_now(tokens)}",
        highlight=False,
    )


@app.command()
def transfer(
    to: Annotated[str, typer.Argument(help="recipient address (0x…, checksummed or lower case)")],
    amount: Amount,
    yes: Yes = False,
    home: Home = None,
    provider_home: ProviderHome = None,
) -> None:
    """Send tokens to another address (refuses typos, the zero address and our contracts)."""
    tokens = _tokens(home, provider_home)
    wei = parse_tokens(amount)
    address = tokens.check_transfer(to, wei)
    console.print(
        f"send {fmt_tokens(wei)} ({wei} wei) from {tokens.address} to {address}", highlight=False
    )
    if not yes:
        typer.confirm("send?", abort=True)
    with console.status("sending"):
        tokens.transfer(address, wei)
    console.print(f"sent {fmt_tokens(wei)} to {address}; {_wallet_now(tokens)}", highlight=False)


@app.command()
def withdraw(home: Home = None, provider_home: ProviderHome = None) -> None:
    """Pull the credit waiting in JobEscrow and StorageEscrow (refunds, pay) into the wallet."""
    tokens = _tokens(home, provider_home)
    with console.status("withdrawing escrow credit"):
        out = tokens.withdraw()
    if out.total == 0:
        console.print("nothing to withdraw: no credit in JobEscrow or StorageEscrow")
        return
    console.print(
        f"withdrew {fmt_tokens(out.job)} from JobEscrow + {fmt_tokens(out.storage)} from "
        f"StorageEscrow = {fmt_tokens(out.total)}; {_wallet_now(tokens)}",
        highlight=False,
    )
