"""ERC-2612 permits: an owner approves a spender of its tokens with a signature.

The renter funds the escrow with ``fundWithPermit`` (one transaction, no approval first);
the tests sign the same way. The domain is the token's (name, version "1", chain id,
the token's address).
"""

from __future__ import annotations

from typing import Any

from eth_account import Account

PERMIT_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def sign_permit(
    key: Any,
    *,
    token_name: str,
    token: str,
    chain_id: int,
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
) -> tuple[int, bytes, bytes]:
    """(v, r, s) of the key's permit for `spender` to take `value` of `token`."""
    full = {
        "types": PERMIT_TYPES,
        "primaryType": "Permit",
        "domain": {
            "name": token_name,
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": token,
        },
        "message": {
            "owner": Account.from_key(key).address,
            "spender": spender,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    signed = Account.sign_typed_data(key, full_message=full)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
