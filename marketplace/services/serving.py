"""The marketplace's attestation that a leased service came up: ``reportServing`` on chain.

The prober sends it with the matcher key, which LeaseEscrow must have given PROBER_ROLE
(the deploy script grants it to the dev matcher on local chains, and to
``DCLOUD_LEASE_PROBERS`` elsewhere). Sending a transaction costs gas: a key without ETH
is said plainly in the log, once until it is funded.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import Any, cast

from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError

from marketplace.service import Service
from protocol.leases import CONTRACT, Leases

logger = logging.getLogger(__name__)

RECEIPT_TIMEOUT_S = 30


class Outcome(enum.StrEnum):
    REPORTED = "reported"  # this call put the report on chain
    ALREADY = "already serving"  # the lease was reported before (by us or the renter)
    RETRY = "retry later"  # not possible now (not accepted yet, no gas, chain down)
    REFUSED = "refused"  # the contract refuses for good (ended, window closed)


def error_name(abi: Iterable[Any], exc: ContractLogicError) -> str | None:
    """The name of the custom error `exc` carries, from the contract's ABI."""
    data = exc.data if isinstance(exc.data, str) else None
    if not data or len(data) < 10:
        return None
    for item in abi:
        if item.get("type") != "error":
            continue
        signature = f"{item['name']}({','.join(i['type'] for i in item.get('inputs', []))})"
        if "0x" + keccak(text=signature)[:4].hex() == data[:10].lower():
            return str(item["name"])
    return None


class ServingReporter:
    """Sends ``reportServing(leaseId)`` with the matcher key."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._warned_no_gas = False
        self._warned_unavailable = False

    def available(self) -> bool:
        """Whether this marketplace can attest at all (a chain with LeaseEscrow, a key)."""
        chain, matcher = self.service.chain, self.service.matcher
        ok = chain is not None and matcher is not None and CONTRACT in chain.deployment.contracts
        if not ok and not self._warned_unavailable:
            self._warned_unavailable = True
            logger.warning(
                "services are probed but not reported serving on chain: this marketplace "
                "needs a chain with LeaseEscrow deployed and a matcher key"
            )
        return ok

    def report(self, lease_id: int) -> Outcome:
        """Attest lease `lease_id` serving; never raises for chain trouble."""
        if not self.available():
            return Outcome.RETRY
        chain, matcher = self.service.chain, self.service.matcher
        assert chain is not None and matcher is not None
        w3, address = chain.w3, matcher.address
        leases = Leases(w3, chain.deployment)
        try:
            if int(w3.eth.get_balance(Web3.to_checksum_address(address))) == 0:
                if not self._warned_no_gas:
                    self._warned_no_gas = True
                    logger.error(
                        "the prober key %s has no ETH to pay gas: services are not reported "
                        "serving on chain until it is funded (on a devnet, send it ETH from "
                        "a dev account)",
                        address,
                        extra={"prober": address},
                    )
                return Outcome.RETRY
            self._warned_no_gas = False
            leases.report_serving(self.send, lease_id)
        except ContractLogicError as exc:
            return self._reverted(lease_id, error_name(leases.contract.abi, exc) or str(exc))
        except Exception as exc:  # the chain being away must not stop the prober
            logger.warning("cannot report lease %d serving (%s); retrying", lease_id, exc)
            return Outcome.RETRY
        logger.info("lease %d reported serving", lease_id, extra={"lease_id": lease_id})
        return Outcome.REPORTED

    def claim_never_served(self, lease_id: int) -> Outcome:
        """End lease `lease_id` as never served (anyone may, once its serve window passed
        with no serving report): its provider is slashed to the renter, the deposit
        refunded. Never raises for chain trouble."""
        if not self.available():
            return Outcome.RETRY
        chain = self.service.chain
        assert chain is not None
        leases = Leases(chain.w3, chain.deployment)
        try:
            leases.claim_never_served(self.send, lease_id)
        except ContractLogicError as exc:
            name = error_name(leases.contract.abi, exc) or str(exc)
            logger.info("lease %d not claimed as never served: %s", lease_id, name)
            return Outcome.REFUSED
        except Exception as exc:
            logger.warning("cannot claim lease %d as never served (%s)", lease_id, exc)
            return Outcome.RETRY
        logger.warning(
            "lease %d ended as never served: its provider accepted and the service never "
            "came up within the serve window; the provider is slashed to the renter",
            lease_id,
            extra={"lease_id": lease_id},
        )
        return Outcome.REPORTED

    def send(self, fn: ContractFunction, *, gas: int | None = None) -> Any:
        """Sign and send `fn` with the matcher key; its receipt (raises on a revert).

        A `gas` limit skips the estimate, which a node runs against its latest block:
        a call that checks a time against ``block.timestamp`` (a down report ending now)
        can fail there on an idle chain and pass in the block that includes it."""
        chain, matcher = self.service.chain, self.service.matcher
        assert chain is not None and matcher is not None
        w3, account = chain.w3, matcher.account
        params: dict[str, Any] = {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": chain.deployment.chain_id,
        }
        if gas is not None:
            params["gas"] = gas
        tx = fn.build_transaction(cast(Any, params))
        signed = account.sign_transaction(cast(dict[str, Any], tx))
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        if int(receipt["status"]) != 1:
            raise ContractLogicError(f"{fn.fn_name} reverted")
        return receipt

    def _reverted(self, lease_id: int, message: str) -> Outcome:
        if "LeaseAlreadyServing" in message:
            return Outcome.ALREADY
        if "LeaseNotProber" in message:
            logger.error(
                "LeaseEscrow refuses the prober key %s (it lacks PROBER_ROLE): grant it "
                "(DCLOUD_LEASE_PROBERS at deploy time) to have services reported serving",
                self.service.matcher.address if self.service.matcher else "?",
            )
            return Outcome.RETRY
        if "LeaseWindowClosed" in message or "LeaseNotRunning" in message:
            logger.info("lease %d cannot be reported serving: %s", lease_id, message)
            return Outcome.RETRY if "LeaseNotRunning" in message else Outcome.REFUSED
        logger.warning("reportServing(%d) reverted: %s", lease_id, message)
        return Outcome.RETRY
