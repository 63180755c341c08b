"""ERC-2612 permits: the renter approves the escrow's deposit by signature, not a transaction."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract import Contract


def sign_permit(
    account: LocalAccount,
    token: Contract,
    *,
    chain_id: int,
    spender: str,
    amount: int,
    deadline: int,
) -> tuple[int, bytes, bytes]:
    """(v, r, s) of `account`'s permit for `spender` to take `amount` of `token`."""
    full = {
        "types": {
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
        },
        "primaryType": "Permit",
        "domain": {
            "name": token.functions.name().call(),
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": token.address,
        },
        "message": {
            "owner": account.address,
            "spender": spender,
            "value": amount,
            "nonce": token.functions.nonces(account.address).call(),
            "deadline": deadline,
        },
    }
    signed = Account.sign_typed_data(account.key, full_message=full)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
