"""The renter's folder and the storage client a ``dcloud file`` command opens on it.

The folder (``--home``, default ``~/.dcloud/renter``) holds the renter's keystore
(``key.json``) and its records; the keystore password comes from ``$DCLOUD_PASSWORD``,
or a prompt on a terminal.
"""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount

from agents import keys
from agents.errors import UserError
from agents.storage.cli_common import ask_password, setup_logging
from agents.storage.files.client import StorageClient


def renter_home(home: Path | None) -> Path:
    """The renter's folder: `home`, or ``~/.dcloud/renter``."""
    return (home or Path.home() / ".dcloud" / "renter").expanduser()


def open_client(home: Path | None, marketplace: str, verbose: bool = False) -> StorageClient:
    """The renter's :class:`StorageClient`, its key unlocked; logging set up for a command.

    Raises:
        UserError: there is no renter key in the folder (``dcloud file init`` makes one).
    """
    setup_logging(verbose)
    where = renter_home(home)
    keystore = where / "key.json"
    if not keystore.exists():
        raise UserError(f"no renter key at {keystore}; create one with `dcloud file init`")
    account: LocalAccount = keys.load(keystore, ask_password(confirm=False))
    return StorageClient(home=where, account=account, marketplace=marketplace)
