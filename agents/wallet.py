"""Sending transactions from one local key, safely from many threads and processes.

A :class:`Wallet` owns one account's nonce: it signs and sends under a lock, so jobs
running in parallel never reuse or skip a nonce. When the same key sent a transaction
from elsewhere (another process, another machine), the chain answers with a nonce error;
the wallet then re-reads the account's pending nonce and sends again, a bounded number
of times, and never signs two different transactions with one nonce. A revert becomes a
:class:`~agents.errors.RefusedError` whose message is the contract error's sentence
(``protocol.reverts``), with what the caller knows added (:attr:`Wallet.hint`); a chain
that does not answer becomes a :class:`~agents.errors.ChainUnavailableError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt

from agents.errors import ChainUnavailableError, RefusedError, UserError
from protocol.reverts import Catalogue, Revert, revert_data

logger = logging.getLogger(__name__)

OUT_OF_GAS_ATTEMPTS = 3
RECEIPT_TIMEOUT_S = 120
# local chains mine at once; a short poll keeps a job's six transactions from idling
RECEIPT_POLL_S = 0.01
NONCE_ATTEMPTS = 5
# what nodes answer when a nonce is stale or ahead (anvil, geth, Ganache 7)
NONCE_ERRORS = (
    "nonce too low",
    "nonce too high",
    "replacement transaction underpriced",
    "transaction underpriced",  # Ganache 7, for a nonce ahead of the account's
    "doesn't have the correct nonce",  # Ganache 7
    "invalid nonce",
)
ALREADY_KNOWN = ("already known", "known transaction", "already imported")
# errors that say the chain did not answer: retrying later helps
TRANSIENT = (OSError, ProviderConnectionError, RequestTimedOut, TimeExhausted)

Hint = Callable[[Revert], "str | None"]


def _message(exc: Exception) -> str:
    return str(exc).lower()


class Wallet:
    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._sent_up_to = -1  # the highest nonce this wallet has handed to the chain
        self._catalogue = Catalogue()
        self._legacy: bool | None = None
        # what the caller knows about an error's subject (say, when a job's deadline is)
        self.hint: Hint | None = None

    def learn_errors(self, abi: list[dict[str, Any]]) -> None:
        """Remember the custom errors of an ABI so reverts read as sentences."""
        self._catalogue.learn(abi)

    def transact(
        self, fn: ContractFunction, *, gas: int | None = None, value: int = 0
    ) -> TxReceipt:
        """Estimate, sign, send and wait for `fn` (paying `value` wei of ETH with it).

        Raises:
            RefusedError: the contract refuses (the message is the error's sentence).
            ChainUnavailableError: the chain did not answer, or the nonce could not be
                agreed on in a few tries; retrying later helps.
        """
        for attempt in range(OUT_OF_GAS_ATTEMPTS):
            receipt, limit = self._transact_once(fn, gas=gas, value=value)
            if receipt["status"] == 1:
                return receipt
            if gas is None and receipt["gasUsed"] * 64 >= limit * 63:
                # out of gas (a call may keep 1/64 of what is left): the path changed
                # between the estimate and the block (a later timestamp accrues pay, another
                # party's transaction moved the state); estimate again
                logger.info(
                    "out of gas after a changed estimate; sending again",
                    extra={"fn": fn.fn_name, "attempt": attempt + 1},
                )
                continue
            break
        raise RefusedError(self._why_reverted(fn, value, receipt))

    def _transact_once(
        self, fn: ContractFunction, *, gas: int | None, value: int
    ) -> tuple[TxReceipt, int]:
        """Estimate, send and wait once: the receipt (mined, maybe reverted) and gas limit."""
        try:
            call = cast(TxParams, {"from": self.address, "value": value})
            estimate = gas or int(fn.estimate_gas(call) * 1.25) + 20_000
        except (ContractCustomError, ContractLogicError) as exc:
            if self.decode(exc) is None:
                raise RefusedError(f"{fn.fn_name} would revert: {exc}") from None
            raise RefusedError(self.explain(exc)) from None
        except TRANSIENT as exc:
            raise ChainUnavailableError(f"{fn.fn_name}: {self._unreachable(exc)}") from None
        except Web3RPCError as exc:
            raise self._no_gas_money(fn, exc) from None
        try:
            tx_hash = self._send(fn, gas=estimate, value=value)
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S
            )
        except TRANSIENT as exc:
            raise ChainUnavailableError(f"{fn.fn_name}: {self._unreachable(exc)}") from None
        return receipt, estimate

    def _why_reverted(self, fn: ContractFunction, value: int, receipt: TxReceipt) -> str:
        """The sentence of a mined revert, found by replaying the call on the state after
        its block (the usual cause: another transaction got there first)."""
        where = f"{fn.fn_name} reverted in transaction {receipt['transactionHash'].hex()}"
        try:
            call = cast(TxParams, {"from": self.address, "value": value})
            fn.call(call, block_identifier=receipt["blockNumber"])
        except (ContractCustomError, ContractLogicError) as exc:
            return f"{where}: {self.explain(exc)}"
        except Exception:  # the replay is a courtesy; the revert stands
            pass
        return where

    def _send(self, fn: ContractFunction, *, gas: int, value: int) -> HexBytes:
        """Sign and send under the lock; on a nonce error re-read the nonce and try again."""
        with self._lock:
            for attempt in range(NONCE_ATTEMPTS):
                if self._nonce is None:
                    pending = self.w3.eth.get_transaction_count(self.address, "pending")
                    # never reuse a nonce this wallet already signed a transaction with
                    self._nonce = max(int(pending), self._sent_up_to + 1)
                nonce = self._nonce
                params = {
                    "from": self.address,
                    "nonce": nonce,
                    "gas": gas,
                    "value": value,
                    "chainId": self.chain_id,
                    **self._legacy_fee(),
                }
                tx = fn.build_transaction(cast(TxParams, params))
                signed = self.account.sign_transaction(cast(Any, tx))
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Web3RPCError as exc:
                    text = _message(exc)
                    if any(m in text for m in ALREADY_KNOWN):
                        tx_hash = HexBytes(signed.hash)  # this very transaction is in
                    elif any(m in text for m in NONCE_ERRORS):
                        logger.info(
                            "nonce out of step (the key sent from elsewhere); re-reading it",
                            extra={"nonce": nonce, "attempt": attempt + 1, "error": str(exc)},
                        )
                        self._nonce = None  # refused, so this nonce was not used
                        time.sleep(0.05 * attempt)
                        continue
                    else:
                        self._nonce = None
                        raise self._no_gas_money(fn, exc) from None
                except BaseException:
                    self._nonce = None  # re-read from the chain (its pool included) next time
                    raise
                self._sent_up_to = max(self._sent_up_to, nonce)
                self._nonce = nonce + 1
                return HexBytes(tx_hash)
        raise ChainUnavailableError(
            f"{fn.fn_name}: the chain refused {NONCE_ATTEMPTS} nonces in a row for "
            f"{self.address} (is the key sending from elsewhere?); try again"
        )

    def _no_gas_money(self, fn: ContractFunction, exc: Web3RPCError) -> Exception:
        """A clear error for an account without ETH for gas; other RPC errors as they are."""
        if "insufficient funds" not in _message(exc).lower():
            return exc
        return UserError(
            f"{fn.fn_name}: {self.address} has no ETH to pay for the transaction's gas; on a "
            "devnet `dcloud token faucet` gives some, elsewhere send ETH to this address"
        )

    def _unreachable(self, exc: BaseException) -> str:
        return f"the chain did not answer ({exc.__class__.__name__}); try again shortly"

    def _legacy_fee(self) -> dict[str, int]:
        """A gas price for chains without EIP-1559 (Ganache on istanbul); else nothing,
        and web3 fills the EIP-1559 fee fields."""
        if self._legacy is None:
            self._legacy = "baseFeePerGas" not in self.w3.eth.get_block("latest")
        return {"gasPrice": int(self.w3.eth.gas_price)} if self._legacy else {}

    @property
    def chain_id(self) -> int:
        if not hasattr(self, "_chain_id"):
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def decode(self, exc: BaseException) -> Revert | None:
        """The custom error a web3 exception carries, if a learnt ABI declares it."""
        return self._catalogue.decode(revert_data(exc))

    def explain(self, exc: BaseException) -> str:
        """A revert as a sentence, with the caller's hint; the raw error when unknown."""
        revert = self.decode(exc)
        if revert is None:
            return str(exc)
        text = self._catalogue.sentence(revert, now=self._now())
        if self.hint is not None:
            try:
                extra = self.hint(revert)
            except Exception as hint_exc:  # a hint is a courtesy: never hide the error
                logger.debug("revert hint failed", extra={"error": str(hint_exc)})
                extra = None
            if extra:
                text = f"{text}: {extra}"
        return text

    def _now(self) -> float:
        """The chain's clock (a local chain can run ahead of wall time)."""
        try:
            block = int(self.w3.eth.get_block("latest")["timestamp"])
        except Exception:
            return time.time()
        return max(float(block), time.time())
