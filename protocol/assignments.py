"""The matcher's signed choice of providers (EIP-712), as JobEscrow checks it.

A replicated job's providers and a dispute's verifiers vote on each other's results,
so JobEscrow accepts them only with the signature of its matcher key, which the
marketplace holds (``JobAssignments.sol``). Both sides use this module: the
marketplace signs, the renter passes the signature to ``fund`` / ``dispute``, and a
provider can check who chose its co-replicas.

The typed data, domain ``{name: "dcloud JobEscrow", version: "1", chainId,
verifyingContract: the escrow}``:

- ``Assignment(address renter,bytes32 specHash,address[] providers,uint64 expires)``
- ``Verifiers(uint256 jobId,address[] providers,uint64 expires)``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

DOMAIN_NAME = "dcloud JobEscrow"
DOMAIN_VERSION = "1"
# How long a signed assignment stays usable: long enough to fund, short enough that a
# stale choice (a provider gone offline meanwhile) is not funded much later.
VALID_S = 600

# Local dev chains (anvil 31337, Ganache 1337) share one well-known matcher key, so a
# devnet, a test or a benchmark needs no key plumbing. Never use it on a real chain.
DEV_CHAIN_IDS = (1337, 31337)
DEV_MATCHER_KEY = "0x" + keccak(text="dcloud dev-chain matcher key").hex()
DEV_MATCHER = Account.from_key(DEV_MATCHER_KEY).address

_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_TYPES: dict[str, list[dict[str, str]]] = {
    "Assignment": [
        {"name": "renter", "type": "address"},
        {"name": "specHash", "type": "bytes32"},
        {"name": "providers", "type": "address[]"},
        {"name": "expires", "type": "uint64"},
    ],
    "Verifiers": [
        {"name": "jobId", "type": "uint256"},
        {"name": "providers", "type": "address[]"},
        {"name": "expires", "type": "uint64"},
    ],
}


@dataclass(frozen=True)
class Assignment:
    """Providers, expiry and the matcher's signature: JobEscrow's ``Assignment`` struct."""

    providers: tuple[str, ...]
    expires: int
    signature: bytes

    def as_arg(self) -> tuple[list[str], int, bytes]:
        """The struct as a contract call argument (web3.py and brownie take a tuple)."""
        return (list(self.providers), self.expires, self.signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "providers": list(self.providers),
            "expires": self.expires,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Assignment:
        return cls(
            providers=tuple(str(p) for p in data["providers"]),
            expires=int(data["expires"]),
            signature=bytes.fromhex(str(data["signature"]).removeprefix("0x")),
        )


def unsigned(providers: list[str]) -> Assignment:
    """A single-replica job's provider (or none: open), which needs no signature."""
    return Assignment(providers=tuple(providers), expires=0, signature=b"")


def _typed(primary: str, message: dict[str, Any], *, chain_id: int, escrow: str) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN, primary: _TYPES[primary]},
        "primaryType": primary,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": escrow,
        },
        "message": message,
    }


def sign_assignment(
    key: Any,
    *,
    chain_id: int,
    escrow: str,
    renter: str,
    spec_hash: bytes,
    providers: list[str],
    expires: int,
) -> Assignment:
    """The matcher's signature of `providers` for `renter`'s job with `spec_hash`."""
    message = {
        "renter": renter,
        "specHash": spec_hash,
        "providers": providers,
        "expires": expires,
    }
    full = _typed("Assignment", message, chain_id=chain_id, escrow=escrow)
    signed = Account.sign_typed_data(key, full_message=full)
    return Assignment(tuple(providers), expires, bytes(signed.signature))


def sign_verifiers(
    key: Any, *, chain_id: int, escrow: str, job_id: int, providers: list[str], expires: int
) -> Assignment:
    """The matcher's signature of `providers` as the verifiers of dispute `job_id`."""
    message = {"jobId": job_id, "providers": providers, "expires": expires}
    full = _typed("Verifiers", message, chain_id=chain_id, escrow=escrow)
    signed = Account.sign_typed_data(key, full_message=full)
    return Assignment(tuple(providers), expires, bytes(signed.signature))


def assignment_signer(
    a: Assignment, *, chain_id: int, escrow: str, renter: str, spec_hash: bytes
) -> str:
    """Who signed `a` as the providers of `renter`'s job with `spec_hash`."""
    message = {
        "renter": renter,
        "specHash": spec_hash,
        "providers": list(a.providers),
        "expires": a.expires,
    }
    full = _typed("Assignment", message, chain_id=chain_id, escrow=escrow)
    return str(Account.recover_message(encode_typed_data(full_message=full), signature=a.signature))
