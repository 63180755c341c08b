"""The marketplace on a real chain: stake gates matching, the chain drives job state."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.settings import Settings
from protocol.deployments import connect, load_for
from tests.integration.chains import CHAINS, deploy_contracts, running_chain
from tests.marketplace.api.conftest import job_spec, registration, signed

pytestmark = pytest.mark.integration

TOKEN = 10**18
REGISTER, HEARTBEAT, SUBMIT = (
    "dcloud/provider.register",
    "dcloud/provider.heartbeat",
    "dcloud/job.submit",
)
# anvil's first dev keys (its well-known default mnemonic)
KEYS = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    out = tmp_path_factory.mktemp("mkt") / "deployments.json"
    with running_chain("anvil") as url:
        deploy_contracts(CHAINS["anvil"]["network"], out)
        yield url, out


def _send(w3, call, sender):
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    assert receipt.status == 1


def _until(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_stake_gates_matching_and_the_chain_drives_job_state(chain, tmp_path):
    url, deployments = chain
    w3 = connect(url)
    d = load_for(w3, path=deployments)
    token, registry, escrow = (
        d.contract(w3, n) for n in ("ComputeToken", "ProviderRegistry", "JobEscrow")
    )
    provider, renter = Account.from_key(KEYS[0]), Account.from_key(KEYS[1])
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        rpc_url=url,
        deployments=deployments,
        batch_window_ms=20,
        indexer_poll_s=0.1,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post(
            "/v1/providers", json=signed(provider, REGISTER, registration(lat=50.1, lon=8.7))
        )
        assert r.status_code == 201 and r.json()["stake_active"] is False
        assert r.json()["stake_verified"] is True
        spec = job_spec(lat=50.0, lon=8.0)
        unmatched = client.post("/v1/jobs", json=signed(renter, SUBMIT, spec)).json()
        assert unmatched["status"] == "unmatched"

        _send(w3, token.functions.approve(registry.address, 500 * TOKEN), provider.address)
        _send(w3, registry.functions.stake(500 * TOKEN), provider.address)
        hb = {"free": registration(lat=0, lon=0)["free"]}
        r = client.post("/v1/providers/heartbeat", json=signed(provider, HEARTBEAT, hb))
        assert r.json()["stake_active"] is True

        job = client.post("/v1/jobs", json=signed(renter, SUBMIT, spec)).json()
        assert job["status"] == "matched"
        assert job["assignments"][0]["provider"] == provider.address

        price = job["price_wei"]
        _send(w3, token.functions.approve(escrow.address, price), renter.address)
        deadline = w3.eth.get_block("latest")["timestamp"] + 3600
        _send(
            w3,
            escrow.functions.fund(
                bytes.fromhex(job["spec_hash"][2:]),
                0,
                price,
                deadline,
                1,
                ([provider.address], 0, b""),
            ),
            renter.address,
        )
        assert _until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "funded")
        _send(w3, escrow.functions.accept(1), provider.address)
        assert _until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "accepted")
        detail = client.get(f"/v1/jobs/{job['id']}").json()
        assert [e["name"] for e in detail["events"]] == ["JobFunded", "JobAccepted"]
        (slot,) = detail["chain"]["slots"]
        assert (slot["slot"], slot["provider"], slot["state"]) == (0, provider.address, "accepted")
        assert slot["updated_block"] == detail["events"][1]["block_number"]
        health = client.get("/healthz").json()
        assert health["chain"]["status"] in {"following", "catching up"}
