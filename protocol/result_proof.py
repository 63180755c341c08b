"""The result hash a provider commits to, and how a renter checks it.

The hash is the Merkle root (``protocol.merkle``) over one leaf per output file,
``abi.encode("file", path, keccak256(content))``, one for the exit code,
``abi.encode("exit", "", bytes32(exit_code))``, and one for the logs,
``abi.encode("logs", "", keccak256(logs))``. Leaves are sorted so the order files are
listed in does not matter. A renter recomputes it from the files, exit code and logs it
downloads and refuses a result whose root differs from the revealed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from eth_utils.crypto import keccak

from protocol import merkle

_TYPES = ["string", "string", "bytes32"]


def file_leaf(path: str, content: bytes) -> bytes:
    return merkle.leaf(_TYPES, ["file", path, keccak(content)])


def exit_leaf(exit_code: int) -> bytes:
    return merkle.leaf(_TYPES, ["exit", "", (exit_code % 2**256).to_bytes(32, "big")])


def logs_leaf(logs: bytes) -> bytes:
    return merkle.leaf(_TYPES, ["logs", "", keccak(logs)])


def result_hash(files: Mapping[str, bytes], exit_code: int, logs: bytes) -> bytes:
    """The 32-byte result root of a run's outputs (paths relative, '/'-separated)."""
    leaves = [file_leaf(p, c) for p, c in files.items()]
    leaves += [exit_leaf(exit_code), logs_leaf(logs)]
    return merkle.root(sorted(leaves))


def read_outputs(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder`, keyed by its '/'-separated relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
