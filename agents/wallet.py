"""Sending transactions from one local key, safely from many threads.

A :class:`Wallet` owns one account's nonce: it signs and sends under a lock, so jobs
running in parallel never reuse or skip a nonce, and it turns a revert into a
:class:`~agents.errors.RefusedError` that names the contract's custom error.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxParams, TxReceipt

from agents.errors import RefusedError

RECEIPT_TIMEOUT_S = 120
# local chains mine at once; a short poll keeps a job's six transactions from idling
RECEIPT_POLL_S = 0.01


class Wallet:
    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._errors: dict[str, str] = {}
        self._legacy: bool | None = None

    def learn_errors(self, abi: list[dict[str, Any]]) -> None:
        """Remember the custom errors of an ABI so reverts are reported by name."""
        for item in abi:
            if item.get("type") == "error":
                sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                self._errors["0x" + keccak(text=sig)[:4].hex()] = sig

    def transact(
        self, fn: ContractFunction, *, gas: int | None = None, value: int = 0
    ) -> TxReceipt:
        """Estimate, sign, send and wait for `fn` (paying `value` wei of ETH with it);
        a revert raises RefusedError."""
        base = cast(TxParams, {"from": self.address, "value": value})
        try:
            estimate = gas or int(fn.estimate_gas(base) * 1.25) + 20_000
        except (ContractCustomError, ContractLogicError) as exc:
            raise RefusedError(f"{fn.fn_name} would revert: {self.explain(exc)}") from None
        with self._lock:
            if self._nonce is None:
                self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            params = {
                "from": self.address,
                "value": value,
                "nonce": self._nonce,
                "gas": estimate,
                "chainId": self.chain_id,
                **self._legacy_fee(),
            }
            tx = fn.build_transaction(cast(TxParams, params))
            signed = self.account.sign_transaction(cast(Any, tx))
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._nonce = None  # re-read from the chain next time
                raise
            self._nonce += 1
        receipt = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S
        )
        if receipt["status"] != 1:
            raise RefusedError(f"{fn.fn_name} reverted in transaction {tx_hash.hex()}")
        return receipt

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

    def explain(self, exc: Exception) -> str:
        data = getattr(exc, "data", None)
        if isinstance(data, str) and data[:10] in self._errors:
            return f"{self._errors[data[:10]]} with data {data[10:] or '-'}"
        return str(exc)
