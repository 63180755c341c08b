"""The revert catalogue: a sentence for every custom error the contracts declare."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from protocol.deployments import CONTRACT_NAMES
from protocol.reverts import KINDS, SENTENCES, Catalogue, error_signature, relative, when
from protocol.reverts.render import FIELD, NAMES, show

ROOT = Path(__file__).resolve().parents[2]
# The contracts a client can meet: every one a deployment holds, and the dev faucet. Their
# ABIs carry the errors they inherit (OpenZeppelin's ERC20, AccessControl, ...); interface
# artifacts a fresh compile also writes (ERC721's and ERC1155's error sets) are not reachable.
MET = (*CONTRACT_NAMES, "DevFaucet")
ARTIFACTS = sorted(p for p in (ROOT / "build" / "contracts").glob("*.json") if p.stem in MET)
SHOWN_KINDS = {"plain", "time", "tokens", "eth", "bps", "seconds", "role", *NAMES}


@functools.cache
def declared_errors() -> dict[str, dict]:
    errors: dict[str, dict] = {}
    for path in ARTIFACTS:
        for item in json.loads(path.read_text()).get("abi", []):
            if item.get("type") == "error":
                errors[error_signature(item)] = item
    return errors


def test_the_build_artifacts_are_there():
    found = {p.stem for p in ARTIFACTS}
    assert found == set(MET), f"build/contracts lacks {sorted(set(MET) - found)}: run `make setup`"


def test_every_declared_custom_error_has_a_sentence():
    missing = sorted({e["name"] for e in declared_errors().values()} - set(SENTENCES))
    assert not missing, f"add a sentence to protocol/reverts/catalogue.py for: {missing}"


@pytest.mark.parametrize("signature", sorted(declared_errors()))
def test_each_sentence_names_only_its_errors_arguments(signature):
    item = declared_errors()[signature]
    names = {i["name"] or f"arg{n}" for n, i in enumerate(item["inputs"])}
    for m in FIELD.finditer(SENTENCES[item["name"]]):
        assert m.group(1) in names, f"{signature}: no argument {m.group(1)!r}"
        kind = m.group(2) or KINDS.get(m.group(1), "plain")
        assert kind in SHOWN_KINDS, f"{signature}: unknown kind {kind!r}"


def test_no_show_revert_is_decoded_and_rendered():
    catalogue = Catalogue([declared_errors().values()])
    item = declared_errors()["EscrowNotNoShow(uint256)"]
    revert = catalogue.decode(_data("EscrowNotNoShow(uint256)", ["uint256"], [10]))
    assert revert is not None and revert.name == item["name"] and revert.job_id == 10
    assert catalogue.sentence(revert) == "cannot claim job 10 as a no-show yet"


def test_times_amounts_and_states_are_shown_in_words():
    catalogue = Catalogue([declared_errors().values()])
    now = 1_700_000_000
    data = _data("EscrowNotFinalizable(uint256,uint256)", ["uint256", "uint256"], [3, now + 120])
    revert = catalogue.decode(data)
    assert revert is not None
    local = datetime.fromtimestamp(now + 120).astimezone().strftime("%H:%M:%S")
    assert catalogue.sentence(revert, now=now) == (
        f"job 3 cannot be finalized until {local} local time (in 2 min)"
    )
    data = _data("EscrowJobNotLive(uint256,uint8)", ["uint256", "uint8"], [4, 3])
    assert catalogue.sentence(catalogue.decode(data)) == "job 4 is settled, no longer open"
    assert show("tokens", 1_500_000_000_000_000_000) == "1.5 DCT"
    assert show("bps", 250) == "2.5 %"


def test_an_unknown_error_is_none_and_a_reason_string_is_itself():
    catalogue = Catalogue()
    assert catalogue.decode("0xdeadbeef") is None
    revert = catalogue.decode(_data("Error(string)", ["string"], ["too late"]))
    assert revert is not None and catalogue.sentence(revert) == "too late"


def test_relative_times_read_naturally():
    assert relative(1000 + 125, 1000) == "in 2 min"
    assert relative(1000 - 180, 1000) == "3 min ago"
    assert relative(1000 + 30, 1000) == "in 30 s"
    assert when(1000, 1000).endswith("local time (now)")


def _data(signature: str, types: list[str], values: list) -> str:
    return "0x" + (keccak(text=signature)[:4] + encode(types, values)).hex()
