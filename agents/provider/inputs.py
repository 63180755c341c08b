"""A renter's pushed input files: decoded and checked against the spec's sizes and hashes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence

from agents.errors import VerificationError
from protocol.schemas import InputFile


def decode_inputs(declared: Sequence[InputFile], sent: Mapping[str, str]) -> dict[str, bytes]:
    """The pushed input files, decoded and checked against the spec's sizes and hashes.

    Raises:
        VerificationError: a file is missing, extra, not base64, or not what was declared.
    """
    by_path = {f.path: f for f in declared}
    if set(sent) != set(by_path):
        raise VerificationError(
            f"inputs sent {sorted(sent)} differ from the spec's {sorted(by_path)}"
        )
    out: dict[str, bytes] = {}
    for path, b64 in sent.items():
        try:
            data = base64.b64decode(b64, validate=True)
        except ValueError:
            raise VerificationError(f"input {path} is not valid base64") from None
        f = by_path[path]
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise VerificationError(f"input {path} does not match its size and sha256")
        out[path] = data
    return out
