"""Chain trouble as the agents meet it, on real anvil and Ganache 7.

A key that also sends from another process (nonce races), a revert estimated before
sending (its custom error read as a sentence with the job's deadline), the CLI's
`claim-no-show` before the deadline, and a provider whose chain is unreachable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient
from web3 import Web3
from web3.logs import DISCARD

from agents.devnet.network import PASSWORD
from agents.errors import RefusedError
from agents.provider.config import ProviderConfig
from agents.provider.jobs import JobRunner
from agents.provider.runtime import DockerRuntime
from agents.provider.server import create_app
from agents.provider.store import JobStore
from agents.renter.deadlines import revert_hint
from agents.wallet import Wallet
from protocol import provider_api as api
from protocol.deployments import connect, load_for
from protocol.escrow import Escrow
from protocol.schemas import JobSpec
from protocol.signing import sign_request
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
RENTER, PROVIDER, OTHER = 1, 2, 3
TIME = re.compile(r"\d\d:\d\d:\d\d local time \(in \d+ (s|min)\)")


def key(index):
    """A local key (as the agents hold one), funded on each chain by `chain`."""
    return Account.from_key(keccak(text=f"dcloud chain-errors test key {index}"))


@pytest.fixture(scope="module", params=["anvil", "ganache"])
def chain(request, tmp_path_factory):
    kind = request.param
    out = tmp_path_factory.mktemp(kind) / "deployments.json"
    with running_chain(kind) as url:
        deploy_contracts(CHAINS[kind]["network"], out)
        w3 = connect(url)
        escrow = Escrow(w3, load_for(w3, path=out))
        dev = {"from": w3.eth.accounts[1], "gasPrice": w3.eth.gas_price}  # unlocked, has tokens
        for index in (RENTER, PROVIDER, OTHER):
            to = key(index).address
            for tx in (
                {**dev, "to": to, "value": 10**19},
                escrow.token.functions.transfer(to, 1000 * TOKEN).build_transaction(dev),
            ):
                w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx))
        yield kind, url, out, escrow


def wallet(escrow, account):
    w = Wallet(escrow.w3, account)
    w.learn_errors(escrow.abis())
    return w


@pytest.fixture(scope="module")
def accepted_job(chain):
    """A job the renter funded for one provider, who accepted it: before its deadline."""
    _, _, _, escrow = chain
    renter, provider = wallet(escrow, key(RENTER)), wallet(escrow, key(PROVIDER))
    token, registry, c = escrow.token.functions, escrow.registry.functions, escrow.contract
    provider.transact(token.approve(escrow.registry.address, 500 * TOKEN))
    provider.transact(registry.stake(500 * TOKEN))
    renter.transact(token.approve(escrow.address, TOKEN))
    deadline = escrow.now() + escrow.windows().accept + 600
    fund = c.functions.fund(b"\x01" * 32, 0, TOKEN, deadline, 1, ([provider.address], 0, b""))
    receipt = renter.transact(fund)
    job_id = int(c.events.JobFunded().process_receipt(receipt, errors=DISCARD)[0]["args"]["jobId"])
    provider.transact(c.functions.accept(job_id))
    return job_id, renter


def test_a_wallet_recovers_when_its_key_sent_from_another_process(chain):
    _, _, _, escrow = chain
    account = key(OTHER)
    first, second = wallet(escrow, account), wallet(escrow, account)
    to = key(RENTER).address
    before = escrow.balance_of(to)
    transfer = escrow.token.functions.transfer
    first.transact(transfer(to, 1))  # `first` now counts the next nonce itself
    second.transact(transfer(to, 2))  # ...which `second` uses up from "another process"
    first.transact(transfer(to, 4))  # stale nonce: re-read and sent again
    second.transact(transfer(to, 8))
    assert escrow.balance_of(to) == before + 15
    assert escrow.w3.eth.get_transaction_count(account.address) == 4


def test_a_revert_reads_as_a_sentence_with_the_jobs_deadline(chain, accepted_job):
    _, _, _, escrow = chain
    job_id, renter = accepted_job
    renter.hint = revert_hint(escrow)
    with pytest.raises(RefusedError) as caught:
        renter.transact(escrow.contract.functions.claimNoShow(job_id))
    message = str(caught.value)
    assert message.startswith(
        f"cannot claim job {job_id} as a no-show yet: job {job_id} can be claimed as a "
        "no-show after its deadline, "
    ), message
    assert TIME.search(message), message
    assert "EscrowNotNoShow" not in message and "0x" not in message


def test_a_revert_without_a_hint_names_the_decoded_values(chain):
    _, _, _, escrow = chain
    w = wallet(escrow, key(OTHER))
    with pytest.raises(RefusedError, match=r"^job 999 is none, no longer open$"):
        w.transact(escrow.contract.functions.claimNoShow(999))


def test_cli_claim_no_show_before_the_deadline_says_when_it_opens(chain, accepted_job, tmp_path):
    _, url, deployments, _ = chain
    job_id, _ = accepted_job
    home = tmp_path / "renter"
    env = dict(
        os.environ,
        DCLOUD_PASSWORD=PASSWORD,
        DCLOUD_PRIVATE_KEY=key(RENTER).key.hex(),
    )
    cli = [sys.executable, "-m", "agents", "job"]
    where = ["--home", str(home)]
    subprocess.run(
        [*cli, "init", *where, "--rpc", url, "--deployments", str(deployments)],
        env=env,
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    proc = subprocess.run(
        [*cli, "claim-no-show", *where, str(job_id)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1, out
    assert (
        f"cannot claim job {job_id} as a no-show yet: job {job_id} can be claimed as a "
        "no-show after its deadline, "
    ) in out, out
    assert TIME.search(out), out
    assert "Traceback" not in out and "EscrowNotNoShow" not in out


def test_a_push_while_the_chain_is_unreachable_is_a_503_to_retry(chain, docker_engine, tmp_path):
    kind, _, deployments, _ = chain
    if kind != "anvil":
        pytest.skip("the provider's side does not depend on the chain's kind")
    w3 = connect(chain[1])
    escrow = Escrow(w3, load_for(w3, path=deployments))
    provider = key(PROVIDER)
    cfg = ProviderConfig.model_validate(
        {
            "marketplace_url": "http://127.0.0.1:9",
            "rpc_url": "http://127.0.0.1:9",
            "endpoint": "http://127.0.0.1:8599",
            "listen_port": 8599,
            "location": {"lat": 50.0, "lon": 8.0},
            "caps": {"cpu": 2, "memory_mb": 512, "disk_mb": 256},
            "price_wei": 1,
            "images": ["dcloud/busybox:1"],
        }
    )
    runner = JobRunner(
        cfg=cfg,
        home=tmp_path,
        wallet=Wallet(w3, provider),
        escrow=escrow,
        runtime=DockerRuntime(client=docker_engine, work_root=tmp_path / "work", agent_id="t"),
        store=JobStore(tmp_path / "agent.db"),
    )
    spec = JobSpec.model_validate(
        {
            "image": "dcloud/busybox:1",
            "command": ["true"],
            "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 16},
            "time_limit_s": 30,
            "max_price_wei": TOKEN,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )
    w3.provider = Web3.HTTPProvider("http://127.0.0.1:9")  # the chain goes away
    push = api.JobPush(chain_job_id=1, spec=spec, inputs={}).model_dump(mode="json")
    body = sign_request(
        key(RENTER), purpose=api.PUSH, payload=push, timestamp_ms=int(time.time() * 1000)
    )
    try:
        with TestClient(create_app(runner), raise_server_exceptions=False) as client:
            r = client.post("/v1/jobs", json=body)
    finally:
        runner.shutdown()
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"].isdigit()
    assert "cannot reach its chain" in r.json()["detail"]
