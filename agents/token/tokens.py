"""One account's tokens: balances, the token sale, the dev faucet, transfers, escrow credit.

:class:`Tokens` acts for the key of a :class:`~agents.wallet.Wallet` on the contracts of one
deployment. Every write checks first what the contract would refuse (not enough ETH, a
sale without tokens, a faucet cooling down, a mistyped address) and raises a
:class:`~agents.errors.UserError` or :class:`~agents.errors.RefusedError` that says what to
do, so a person never reads a raw revert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import is_checksum_address, is_hex_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import Wei

from agents.errors import RefusedError, UserError
from agents.units import WEI, fmt_eth, fmt_tokens
from agents.wallet import Wallet
from protocol.escrow import Escrow
from protocol.network import DEV_CHAIN_IDS

# ETH a dev-chain faucet request tops a key up to, for gas (1 ETH: thousands of txs)
GAS_MONEY_WEI = 10**18

logger = logging.getLogger(__name__)

# Local development chains (anvil, Ganache): the only ones with a faucet.
ZERO_ADDRESS = "0x" + "00" * 20
_COOLING_DOWN = "0x" + keccak(text="FaucetCoolingDown(address,uint256)")[:4].hex()
_EMPTY = "0x" + keccak(text="FaucetEmpty(uint256,uint256)")[:4].hex()


@dataclass(frozen=True)
class Balances:
    """What one account holds, and what waits for it in the contracts."""

    address: str
    eth: int
    wallet: int  # tokens in the wallet
    job_credit: int  # JobEscrow: refunds, pay, bonds waiting for `withdraw`
    storage_credit: int  # StorageEscrow: the same for storage deals
    staked: int  # ProviderRegistry stake (0 for a renter)
    locked: int  # of the stake, locked as collateral by live work
    unbonding: int


@dataclass(frozen=True)
class Sale:
    """The token sale's terms and what is left of it."""

    address: str
    price: int  # wei of ETH per whole token
    available: int  # tokens it can still sell: under the cap and held by the sale
    ends_at: int

    def cost(self, amount: int) -> int:
        """The ETH (wei) that buys exactly `amount` token units or a hair more (rounded up)."""
        return -(-amount * self.price // WEI)

    def bought_with(self, value: int) -> int:
        """Token units `value` wei of ETH buys (as the contract computes it)."""
        return value * WEI // self.price


@dataclass(frozen=True)
class Purchase:
    amount: int  # token units bought
    cost: int  # wei of ETH paid (change was returned)


@dataclass(frozen=True)
class Withdrawal:
    job: int  # from JobEscrow
    storage: int  # from StorageEscrow

    @property
    def total(self) -> int:
        return self.job + self.storage


def faucet_rule(chain_id: int) -> None:
    """Refuse a faucet request on a chain that is not a local dev chain."""
    if chain_id not in DEV_CHAIN_IDS:
        raise UserError(
            f"chain {chain_id} has no faucet (only local dev chains, ids 1337 and 31337, do); "
            "buy tokens with `dcloud token buy AMOUNT`"
        )


def check_recipient(text: str, *, ours: dict[str, str]) -> str:
    """The checksummed address `text` names, refusing typos and our own contracts.

    `ours` maps our contracts' checksummed addresses to their names: tokens sent there
    are stuck (the escrows and the registry take tokens only through their functions).
    """
    text = text.strip()
    if not (text.startswith("0x") and is_hex_address(text)):
        raise UserError(f"{text!r} is not an address; write it as 0x and 40 hex digits")
    digits = text[2:]
    mixed = digits not in (digits.lower(), digits.upper())  # then it carries a checksum
    if mixed and not is_checksum_address(text):
        raise UserError(
            f"{text} fails its checksum (its upper and lower case letters do not match): "
            "a typo? Copy the address again"
        )
    address = Web3.to_checksum_address(text)
    if address == ZERO_ADDRESS:
        raise UserError("that is the zero address: tokens sent there are lost; check the address")
    if address in ours:
        raise UserError(
            f"{address} is dcloud's {ours[address]} contract: tokens sent to it directly are "
            "stuck there; send to a person's address (fund jobs with `dcloud job submit`)"
        )
    return address


class Tokens:
    """The token actions of one key (its :class:`Wallet`) on one deployment."""

    def __init__(self, escrow: Escrow, wallet: Wallet) -> None:
        self.escrow = escrow
        self.w3 = escrow.w3
        self.wallet = wallet
        self.address = wallet.address
        self.chain_id = int(escrow.deployment.chain_id)
        self.token = escrow.token
        for name in ("TokenSale", "DevFaucet", "StorageEscrow"):
            if name in escrow.deployment.contracts:
                wallet.learn_errors(escrow.deployment.contracts[name].abi)

    def _contract(self, name: str, missing: str) -> Contract:
        if name not in self.escrow.deployment.contracts:
            raise UserError(missing)
        return self.escrow.deployment.contract(self.w3, name)

    def ours(self) -> dict[str, str]:
        """Our contracts on this chain, by checksummed address."""
        return {
            Web3.to_checksum_address(info.address): name
            for name, info in self.escrow.deployment.contracts.items()
        }

    # ------------------------------------------------------------------ reads

    def balances(self) -> Balances:
        storage = self._storage()
        staked, locked, unbonding, _ = self.escrow.registry.functions.stakeOf(self.address).call()
        return Balances(
            address=self.address,
            eth=int(self.w3.eth.get_balance(self.address)),
            wallet=self.escrow.balance_of(self.address),
            job_credit=self.escrow.credit_of(self.address),
            storage_credit=int(storage.functions.creditOf(self.address).call()) if storage else 0,
            staked=int(staked),
            locked=int(locked),
            unbonding=int(unbonding),
        )

    def _storage(self) -> Contract | None:
        if "StorageEscrow" not in self.escrow.deployment.contracts:
            return None
        return self.escrow.deployment.contract(self.w3, "StorageEscrow")

    def sale(self) -> Sale:
        sale = self._contract(
            "TokenSale", f"no token sale is deployed on chain {self.chain_id}; ask its operator"
        )
        f = sale.functions
        left = int(f.cap().call()) - int(f.sold().call())
        held = self.escrow.balance_of(sale.address)
        return Sale(
            address=sale.address,
            price=int(f.price().call()),
            available=max(0, min(left, held)),
            ends_at=int(f.endsAt().call()),
        )

    # ------------------------------------------------------------------ writes

    def check_buy(self, amount: int) -> tuple[Sale, int]:
        """The sale and the ETH (wei) that buys `amount` token units, once every check passed.

        Raises:
            UserError: a zero amount, or the account lacks the ETH for the cost and gas.
            RefusedError: the sale ended or cannot sell that many tokens.
        """
        sale = self.sale()
        if amount <= 0:
            raise UserError("buy a positive amount of tokens, e.g. `dcloud token buy 10`")
        if self.escrow.now() > sale.ends_at:
            raise RefusedError(
                f"the token sale ended at unix time {sale.ends_at}; get tokens from another holder"
            )
        if amount > sale.available:
            raise RefusedError(
                f"the token sale has only {fmt_tokens(sale.available)} left; buy at most that"
            )
        cost = sale.cost(amount)
        if sale.bought_with(cost) > sale.available:  # rounding up bought a hair too much
            cost -= 1
        if sale.bought_with(cost) == 0:
            raise UserError(f"{fmt_tokens(amount)} costs less than 1 wei of ETH; buy more")
        eth = int(self.w3.eth.get_balance(self.address))
        fees = self._gas_reserve()
        if eth < cost + fees:
            raise UserError(
                f"buying {fmt_tokens(amount)} costs {fmt_eth(cost)} plus about {fmt_eth(fees)} "
                f"of gas and {self.address} holds {fmt_eth(eth)}: send ETH to it first"
            )
        return sale, cost

    def buy(self, amount: int) -> Purchase:
        """Buy `amount` token units (or a hair more, as whole wei of ETH buy) from the sale.

        Raises what :meth:`check_buy` raises.
        """
        _, cost = self.check_buy(amount)
        contract = self.escrow.deployment.contract(self.w3, "TokenSale")
        receipt = self.wallet.transact(contract.functions.buy(), value=cost)
        event = contract.events.TokensPurchased().process_receipt(receipt, errors=DISCARD)[0]
        return Purchase(amount=int(event["args"]["amount"]), cost=int(event["args"]["value"]))

    def _gas_reserve(self, gas: int = 150_000) -> int:
        """About what a simple transaction's gas costs now."""
        return gas * int(self.w3.eth.gas_price)

    def faucet_amount(self) -> int:
        """Tokens one faucet request gives, after checking the chain has a faucet."""
        return int(self._faucet().functions.dripAmount().call())

    def _faucet(self) -> Contract:
        faucet_rule(self.chain_id)
        return self._contract(
            "DevFaucet",
            f"no dev faucet is deployed on chain {self.chain_id} (deploy with `make demo` or "
            "`tools/brownie run deploy`); or buy tokens with `dcloud token buy AMOUNT`",
        )

    def faucet(self) -> int:
        """Take one drip from the dev faucet; returns the tokens received.

        Raises:
            UserError: not a dev chain, or no faucet deployed.
            RefusedError: the faucet is cooling down for this account (says when it can be
                used again) or empty.
        """
        faucet = self._faucet()
        self._gas_money()
        try:
            faucet.functions.drip(self.address).call({"from": self.address})
        except ContractCustomError as exc:
            raise self._faucet_refusal(exc) from None
        receipt = self.wallet.transact(faucet.functions.drip(self.address))
        event = faucet.events.Dripped().process_receipt(receipt, errors=DISCARD)[0]
        return int(event["args"]["amount"])

    def _gas_money(self) -> None:
        """On a dev chain, give a key with no ETH some for gas from the node's first
        unlocked dev account (the faucet's tokens are useless without it)."""
        w3 = self.escrow.w3
        address = Web3.to_checksum_address(self.address)
        have = int(w3.eth.get_balance(address))
        if have >= GAS_MONEY_WEI // 10:
            return
        unlocked = w3.eth.accounts
        if not unlocked:
            raise UserError(
                f"{address} has no ETH for gas and this dev chain's node unlocks no account "
                "to send some; send ETH to it from a funded account"
            )
        tx = w3.eth.send_transaction(
            {"from": unlocked[0], "to": address, "value": Wei(GAS_MONEY_WEI - have)}
        )
        w3.eth.wait_for_transaction_receipt(tx)

    def _faucet_refusal(self, exc: ContractCustomError) -> Exception:
        data = exc.data if isinstance(exc.data, str) else ""
        if data.startswith(_COOLING_DOWN):
            _, available_at = decode(["address", "uint256"], bytes.fromhex(data[10:]))
            wait = max(1, int(available_at) - self.escrow.now())
            return RefusedError(
                f"the faucet gave {self.address} tokens a moment ago; it can be used again "
                f"in {wait} s (at unix time {available_at})"
            )
        if data.startswith(_EMPTY):
            balance, drip = decode(["uint256", "uint256"], bytes.fromhex(data[10:]))
            return RefusedError(
                f"the faucet is empty ({fmt_tokens(balance)} left, a drip is {fmt_tokens(drip)}); "
                "buy tokens with `dcloud token buy AMOUNT`"
            )
        return RefusedError(f"the faucet refused: {self.wallet.explain(exc)}")

    def check_transfer(self, to: str, amount: int) -> str:
        """The recipient's checksummed address, once `to` and `amount` passed every check.

        Raises:
            UserError: a bad or dangerous address (:func:`check_recipient`), a zero amount,
                or more than the wallet holds.
        """
        address = check_recipient(to, ours=self.ours())
        if amount <= 0:
            raise UserError("send a positive amount of tokens, e.g. `dcloud token transfer TO 10`")
        have = self.escrow.balance_of(self.address)
        if amount > have:
            raise UserError(
                f"you hold {fmt_tokens(have)}, less than the {fmt_tokens(amount)} to send; "
                "send less or get tokens first (`dcloud token buy`, or `faucet` on a devnet)"
            )
        return address

    def transfer(self, to: str, amount: int) -> str:
        """Send `amount` token units to `to`; returns the recipient's checksummed address."""
        address = self.check_transfer(to, amount)
        self.wallet.transact(self.token.functions.transfer(address, amount))
        return address

    def withdraw(self) -> Withdrawal:
        """Pull every credit waiting in JobEscrow and StorageEscrow into the wallet."""
        job = self._withdraw(self.escrow.contract)
        storage = self._storage()
        return Withdrawal(job=job, storage=self._withdraw(storage) if storage else 0)

    def _withdraw(self, escrow: Contract) -> int:
        if int(escrow.functions.creditOf(self.address).call()) == 0:
            return 0
        receipt = self.wallet.transact(escrow.functions.withdraw())
        events: Any = escrow.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return sum(int(e["args"]["amount"]) for e in events if e["args"]["account"] == self.address)
