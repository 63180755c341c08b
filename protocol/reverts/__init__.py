"""Contract reverts as sentences: decode a custom error from its ABI, render its template.

A :class:`Catalogue` learns the custom errors of some ABIs; :meth:`Catalogue.decode`
turns revert data (as anvil or Ganache 7 hand it over, see :func:`revert_data`) into a
:class:`Revert` with named arguments, and :meth:`Catalogue.sentence` renders the error's
template from :data:`~protocol.reverts.catalogue.SENTENCES` with each value shown by its
kind: a time as "14:32:05 local time (in 2 min)", an amount as "1.5 DCT", a job status
by name. :func:`browser_catalogue` hands the same templates to the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from protocol.reverts.catalogue import KINDS, SENTENCES
from protocol.reverts.render import FIELD, NAMES, fill, relative, when

__all__ = [
    "KINDS",
    "SENTENCES",
    "Catalogue",
    "Revert",
    "browser_catalogue",
    "error_signature",
    "relative",
    "revert_data",
    "when",
]

# Solidity's own: require(..., "reason") and failed asserts/overflows
BUILTIN = [
    {"type": "error", "name": "Error", "inputs": [{"name": "reason", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
]


@dataclass(frozen=True)
class Revert:
    """A decoded custom error: its name and its arguments by name."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def job_id(self) -> int | None:
        value = self.args.get("jobId")
        return int(value) if value is not None else None

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.args.items())})"


def error_signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"


def _selector(item: dict[str, Any]) -> str:
    return "0x" + keccak(text=error_signature(item))[:4].hex()


class Catalogue:
    """The custom errors of some ABIs, by selector."""

    def __init__(self, abis: Iterable[Iterable[dict[str, Any]]] = ()) -> None:
        self._errors: dict[str, dict[str, Any]] = {}
        self.learn(BUILTIN)
        for abi in abis:
            self.learn(abi)

    def learn(self, abi: Iterable[dict[str, Any]]) -> None:
        for item in abi:
            if item.get("type") == "error":
                self._errors[_selector(item)] = item

    def decode(self, data: str | bytes | None) -> Revert | None:
        """The error `data` encodes, or None when it is no error these ABIs declare."""
        if data is None:
            return None
        raw = (
            bytes.fromhex(data[2:] if data.startswith("0x") else data)
            if isinstance(data, str)
            else bytes(data)
        )
        item = self._errors.get("0x" + raw[:4].hex())
        if item is None:
            return None
        inputs = item["inputs"]
        try:
            values = decode([i["type"] for i in inputs], raw[4:])
        except (DecodingError, ValueError, OverflowError):
            return Revert(item["name"])
        names = [i["name"] or f"arg{n}" for n, i in enumerate(inputs)]
        return Revert(item["name"], dict(zip(names, values, strict=True)))

    def sentence(self, revert: Revert, *, now: float | None = None) -> str:
        """The error as a sentence (its name and raw arguments when it has no template)."""
        template = SENTENCES.get(revert.name)
        if template is None or any(m.group(1) not in revert.args for m in FIELD.finditer(template)):
            return str(revert)
        return fill(template, revert.args, now=now)


def revert_data(exc: BaseException) -> str | None:
    """The revert data a web3 error carries: anvil hands it over as a hex string, Ganache 7
    inside a dict (``{"result": "0x..."}``, or per transaction hash ``{"return": ...}``)."""
    seen: list[Any] = [getattr(exc, "data", None), *getattr(exc, "args", ())]
    while seen:
        item = seen.pop(0)
        if isinstance(item, str) and item.startswith("0x") and len(item) >= 10:
            try:
                bytes.fromhex(item[2:])
            except ValueError:
                continue
            return item
        if isinstance(item, dict):
            seen.extend(item.get(k) for k in ("data", "result", "return") if k in item)
            seen.extend(v for v in item.values() if isinstance(v, dict))
    return None


def browser_catalogue() -> dict[str, Any]:
    """What the dashboard needs to say the same sentences: templates, kinds, names."""
    return {"sentences": SENTENCES, "kinds": KINDS, "names": NAMES}
