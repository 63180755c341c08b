"""Encrypted Ethereum keystores (the standard V3 JSON that geth and MetaMask read).

The password comes from an environment variable (for services) or a prompt (for people);
it is never written anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agents.errors import UserError

PASSWORD_ENV = "DCLOUD_PASSWORD"


def create(path: Path, password: str, *, private_key: str | None = None) -> LocalAccount:
    """Write a new keystore at `path` (mode 600) and return its account.

    Raises:
        UserError: `path` already exists (a key is never overwritten) or the password is empty.
    """
    if path.exists():
        raise UserError(f"{path} already exists; a key is never overwritten (move it away first)")
    if not password:
        raise UserError(f"the keystore password is empty; set {PASSWORD_ENV} or type one")
    account: LocalAccount = Account.from_key(private_key) if private_key else Account.create()
    data = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return account


def load(path: Path, password: str | None = None) -> LocalAccount:
    """Decrypt the keystore at `path` with `password` (default: ``$DCLOUD_PASSWORD``)."""
    if password is None:
        password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise UserError(f"no password for {path}: set {PASSWORD_ENV} or pass --password")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no keystore at {path}; create one with `init`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read keystore {path} ({exc})") from None
    try:
        key = Account.decrypt(data, password)
    except ValueError:
        raise UserError(f"wrong password for keystore {path}") from None
    account: LocalAccount = Account.from_key(key)
    return account


def address_of(path: Path) -> str:
    """The keystore's address without decrypting it."""
    try:
        return "0x" + str(json.loads(path.read_text())["address"]).removeprefix("0x")
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read keystore {path} ({exc})") from None
