"""A service's life on a provider agent: a lease on a real chain, a real container, the
real marketplace.

One anvil chain, one marketplace and one provider agent (real processes, real Docker)
for the module, plus a second staked provider that runs no agent (leases can name it).
The renter is a funded dev account that opens leases on LeaseEscrow and pushes the
service spec to the agent, signed, as the renter's SDK will. The tests run in file
order: the service deployed through the marketplace lives across them until the renter
closes its lease; the run-out test travels in time, so it comes last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import docker
import httpx
import pytest
from web3.logs import DISCARD

from agents.devnet.network import (
    PASSWORD,
    Network,
    ProviderSpec,
    dev_account,
    operator_account,
)
from agents.provider.services import engine as eng
from agents.wallet import Wallet
from protocol import provider_api as api
from protocol import purposes
from protocol.leases import EndReason, Leases, LeaseStatus, min_deposit
from protocol.services import ServiceSpec, service_spec_hash
from protocol.signing import sign_request
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
PYTHON = "dcloud/python:3.11"
PRICE = 10**12  # wei per CPU-second: 0.5 CPU asks 5e11 wei/s, fees divide it exactly
RATE = PRICE // 2
HOUR = 3600
RENTER, OTHER = 7, 8


ENGINE: list[docker.DockerClient] = []  # the session's engine client, for containers()


@pytest.fixture(scope="module")
def net(docker_engine, job_images, tmp_path_factory):
    ENGINE[:] = [docker_engine]
    root = tmp_path_factory.mktemp("services")
    with running_chain("anvil-e2e") as url:
        deploy_contracts(CHAINS["anvil-e2e"]["network"], root / "deployments.json")
        network = Network(root=root, rpc_url=url, deployments=root / "deployments.json")
        try:
            network.start_marketplace()
            # the marketplace's prober attests services on chain with its matcher key
            health = httpx.get(f"{network.market_url}/healthz", timeout=10).json()
            network.fund(health["chain"]["matcher"], tokens=0)
            network.add_provider(ProviderSpec("p-frankfurt", 1, 50.11, 8.68, price_wei=PRICE))
            network.stake(operator_account(9), 1000 * TOKEN)  # staked, runs no agent
            for who in (RENTER, OTHER):
                network.fund(dev_account(who).address, tokens=100 * TOKEN)
            yield network
        finally:
            network.close()  # removes the providers' services too


@pytest.fixture(scope="module")
def leases(net):
    return Leases(net.escrow.w3, net.escrow.deployment)


@pytest.fixture(scope="module")
def provider(net):
    return net.providers[0]


def spec_of(name: str, *, cpu: float = 0.5, network: bool = False) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "name": name,
            "image": PYTHON,
            "command": ["python3", "-m", "http.server", "8000"],
            "port": 8000,
            "health": {"interval_s": 0.5, "start_period_s": 30},
            "resources": {"cpu": cpu, "memory_mb": 128, "disk_mb": 16},
            "max_rate_wei_per_s": 10**15,
            "origin": {"lat": 50.0, "lon": 8.0},
            "network": network,
        }
    )


def wallet_of(net, who: int) -> Wallet:
    wallet = Wallet(net.escrow.w3, dev_account(who))
    wallet.learn_errors(net.escrow.abis())
    return wallet


def open_lease(net, leases, spec, *, provider, rate=RATE, deposit=None, who=RENTER) -> int:
    """Open a lease as renter `who` (approve, then open); its id."""
    wallet = wallet_of(net, who)
    deposit = deposit if deposit is not None else rate * HOUR
    wallet.transact(net.escrow.token.functions.approve(leases.address, deposit))
    receipt = leases.open(
        wallet.transact,
        provider=provider,
        rate_per_second=rate,
        deposit=deposit,
        spec_hash=bytes.fromhex(service_spec_hash(spec)[2:]),
    )
    (event,) = leases.contract.events.LeaseOpened().process_receipt(receipt, errors=DISCARD)
    return int(event["args"]["leaseId"])


def push(provider, lease_id: int, spec: ServiceSpec, *, who=RENTER) -> httpx.Response:
    payload = api.ServicePush(lease_id=lease_id, spec=spec).model_dump(mode="json")
    body = sign_request(dev_account(who), purpose=api.SERVICE_PUSH, payload=payload)
    return httpx.post(f"{provider.endpoint}/v1/services", json=body, timeout=60)


def signed_get(provider, path: str, *, who=RENTER, **params) -> httpx.Response:
    ts = time.time_ns() // 1_000_000
    payload = {"method": "GET", "path": path}
    body = sign_request(dev_account(who), purpose=api.FETCH, payload=payload, timestamp_ms=ts)
    headers = {
        api.SIGNER_HEADER: dev_account(who).address,
        api.TIMESTAMP_HEADER: str(ts),
        api.SIGNATURE_HEADER: body["signature"],
    }
    return httpx.get(f"{provider.endpoint}{path}", headers=headers, params=params, timeout=30)


def wait_for(predicate, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def containers(provider, lease_id: int) -> list:
    """The service containers of `provider` for the lease."""
    labels = {"label": f"{eng.AGENT_LABEL}={provider.address.lower()}"}
    for _ in range(5):  # the SDK lists, then inspects each: one removed between is gone
        try:
            found = ENGINE[0].containers.list(all=True, filters=labels)
        except docker.errors.NotFound:
            continue
        return [c for c in found if c.labels[eng.SERVICE_LABEL].endswith(f"-lease-{lease_id}")]
    raise AssertionError("containers kept vanishing while listed")


def serves(port: int, path: str = "/") -> bool:
    """Whether the service answers at `port` (any HTTP answer; 200 for "/")."""
    try:
        code = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code
        return code == 200 or (path != "/" and code < 500)
    except httpx.HTTPError:
        return False


def earned(net, leases, address: str) -> int:
    """Tokens in the wallet plus LeaseEscrow credit, read in one block."""
    block = net.escrow.w3.eth.block_number
    balance = net.escrow.token.functions.balanceOf(address).call(block_identifier=block)
    credit = leases.contract.functions.creditOf(address).call(block_identifier=block)
    return int(balance) + int(credit)


@pytest.fixture(scope="module")
def service(net, leases, provider):
    """A service deployed through the marketplace, leased and pushed: (lease id, spec,
    the provider's answer, what the provider had earned before)."""
    spec = spec_of("hello-web")
    body = sign_request(
        dev_account(RENTER), purpose=purposes.SERVICE_DEPLOY, payload=spec.model_dump(mode="json")
    )
    placed = httpx.post(f"{net.market_url}/v1/services", json=body, timeout=30)
    assert placed.status_code == 201, placed.text
    placement = placed.json()
    assert placement["provider"] == provider.address
    assert placement["rate_wei_per_s"] == RATE
    before = earned(net, leases, provider.address)
    lease_id = open_lease(net, leases, spec, provider=provider.address)
    r = push(provider, lease_id, spec)
    assert r.status_code == 202, r.text
    return lease_id, spec, api.ProviderService.model_validate(r.json()), before


def test_push_accepts_the_lease_and_serves_the_port(net, leases, provider, service):
    lease_id, _spec, answer, _ = service
    lease = leases.lease(lease_id)
    assert lease.status == LeaseStatus.RUNNING and lease.provider == provider.address
    assert answer.host_port is not None and answer.url == f"http://127.0.0.1:{answer.host_port}"
    wait_for(lambda: serves(answer.host_port), what="the service's published port")
    assert len(containers(provider, lease_id)) == 1


def test_a_repeated_push_is_idempotent(net, leases, provider, service):
    lease_id, spec, answer, _ = service
    accepted_at = leases.lease(lease_id).accepted_at
    again = push(provider, lease_id, spec)
    assert again.status_code == 202, again.text
    assert again.json()["host_port"] == answer.host_port
    assert leases.lease(lease_id).accepted_at == accepted_at
    assert len(containers(provider, lease_id)) == 1


def test_the_renter_reads_status_and_logs(net, provider, service):
    lease_id, _spec, answer, _ = service

    def healthy():
        r = signed_get(provider, f"/v1/services/{lease_id}")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["state"] == "healthy" else None

    status = wait_for(healthy, what="a healthy service")
    assert status["host_port"] == answer.host_port and status["name"] == "hello-web"
    assert serves(answer.host_port)  # http.server logs each request
    logs = wait_for(
        lambda: "GET / " in (t := signed_get(provider, f"/v1/services/{lease_id}/logs").text) and t,
        what="the request in the logs",
    )
    assert "HTTP/1.1" in logs


def test_only_the_renter_reads_a_service(net, provider, service):
    lease_id, *_ = service
    assert signed_get(provider, f"/v1/services/{lease_id}", who=OTHER).status_code == 401
    assert signed_get(provider, f"/v1/services/{lease_id}/logs", who=OTHER).status_code == 401
    assert signed_get(provider, "/v1/services/999999").status_code == 404


def test_the_marketplace_sees_the_providers_report_and_free_capacity(net, provider, service):
    _lease_id, _spec, answer, _ = service

    def reported():
        body = httpx.get(f"{net.market_url}/v1/services/hello-web", timeout=10).json()
        return body if body.get("health", {}).get("host_port") == answer.host_port else None

    wait_for(reported, what="the provider's report at the marketplace")
    health = httpx.get(f"{provider.endpoint}/v1/health", timeout=10).json()
    assert health["services_running"] == 1
    assert health["free"]["cpu"] == pytest.approx(2.0 - 0.5)

    def beat():
        body = httpx.get(f"{net.market_url}/v1/providers/{provider.address}", timeout=10).json()
        return body["free"]["cpu"] == pytest.approx(1.5)

    wait_for(beat, what="a heartbeat with the service's CPU taken")


REFUSALS = {
    "spec hash differs": (401, "VerificationError"),
    "rate below ask": (409, "RefusedError"),
    "lease for another provider": (409, "RefusedError"),
    "signer not the renter": (401, "VerificationError"),
    "network not allowed": (409, "RefusedError"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_push_is_refused_clearly_and_not_accepted(net, leases, provider, case):
    spec = spec_of(case.replace(" ", "-"), network=case == "network not allowed")
    opened, pushed, who, to = spec, spec, RENTER, provider.address
    rate = RATE
    if case == "spec hash differs":
        pushed = spec.model_copy(update={"command": ["python3", "-c", "print(1)"]})
    elif case == "rate below ask":
        rate = RATE - 1
    elif case == "lease for another provider":
        to = operator_account(9).address
    elif case == "signer not the renter":
        who = OTHER
    lease_id = open_lease(net, leases, opened, provider=to, rate=rate)
    r = push(provider, lease_id, pushed, who=who)
    status, error = REFUSALS[case]
    assert (r.status_code, r.json()["error"]) == (status, error), r.text
    assert r.json()["detail"]
    assert leases.lease(lease_id).status == LeaseStatus.OFFERED
    assert containers(provider, lease_id) == []
    assert signed_get(provider, f"/v1/services/{lease_id}").status_code == 404


def test_the_renter_follows_the_logs(net, provider, service):
    lease_id, _spec, answer, _ = service
    ts = time.time_ns() // 1_000_000
    path = f"/v1/services/{lease_id}/logs"
    payload = {"method": "GET", "path": path}
    body = sign_request(dev_account(RENTER), purpose=api.FETCH, payload=payload, timestamp_ms=ts)
    headers = {
        api.SIGNER_HEADER: dev_account(RENTER).address,
        api.TIMESTAMP_HEADER: str(ts),
        api.SIGNATURE_HEADER: body["signature"],
    }
    url = f"{provider.endpoint}{path}"
    params = {"follow": "true", "since": str(time.time() - 5)}  # lines sent from then on
    with httpx.stream("GET", url, headers=headers, params=params, timeout=30) as r:
        assert r.status_code == 200
        assert serves(answer.host_port, "/followed")
        for line in r.iter_lines():
            if "GET /followed" in line:
                break


def test_provider_status_lists_the_service(net, provider, service):
    lease_id, _spec, answer, _ = service
    env = dict(os.environ, DCLOUD_PASSWORD=PASSWORD, COLUMNS="200")
    argv = [sys.executable, "-m", "agents", "provider", "status", "--home", str(provider.home)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if "hello-web" in line)
    assert str(lease_id) in row and str(answer.host_port) in row


def test_a_restarted_agent_keeps_the_container_and_port(net, leases, provider, service):
    lease_id, _spec, answer, _ = service
    (before,) = containers(provider, lease_id)
    net.stop_provider(provider, sig=signal.SIGKILL)
    net.start_provider(provider)
    (after,) = containers(provider, lease_id)
    assert after.id == before.id
    wait_for(lambda: serves(answer.host_port), what="the same port served again")
    r = signed_get(provider, f"/v1/services/{lease_id}")
    assert r.json()["host_port"] == answer.host_port
    assert leases.lease(lease_id).status == LeaseStatus.RUNNING


def test_the_provider_settles_a_served_lease_while_it_runs(net, leases, service):
    lease_id, *_ = service
    # the marketplace's prober reports the service serving; the provider then claims
    wait_for(lambda: leases.lease(lease_id).serving_at, what="the serving report on chain")
    wait_for(lambda: leases.lease(lease_id).paid, what="a settle by the provider")


def test_closing_the_lease_stops_the_service_and_pays_exactly(net, leases, provider, service):
    lease_id, _spec, answer, before = service
    receipt = leases.close(wallet_of(net, RENTER).transact, lease_id)
    lease = leases.lease(lease_id)
    assert (lease.status, lease.reason) == (LeaseStatus.ENDED, EndReason.CLOSED_BY_RENTER)
    closed_at = int(net.escrow.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    # seconds the watchers saw it down (while the agent restarted, its port was closed)
    # are not paid
    assert lease.paid == RATE * (closed_at - lease.accepted_at - lease.down_seconds)
    wait_for(lambda: containers(provider, lease_id) == [], what="the container removed")
    assert not serves(answer.host_port)
    r = signed_get(provider, f"/v1/services/{lease_id}").json()
    assert r["state"] == "stopped" and "closed by renter" in r["detail"]
    fee = lease.paid * lease.fee_bps // 10_000
    assert earned(net, leases, provider.address) - before == lease.paid - fee
    health = httpx.get(f"{provider.endpoint}/v1/health", timeout=10).json()
    assert health["services_running"] == 0 and health["free"]["cpu"] == pytest.approx(2.0)


def test_a_lease_that_ended_while_the_agent_was_down_is_stopped_at_start(net, leases, provider):
    spec = spec_of("ended-offline")
    lease_id = open_lease(net, leases, spec, provider=provider.address)
    r = push(provider, lease_id, spec)
    assert r.status_code == 202, r.text
    net.stop_provider(provider)
    assert len(containers(provider, lease_id)) == 1  # services outlive their agent
    leases.close(wallet_of(net, RENTER).transact, lease_id)
    net.start_provider(provider)  # answers once started: the reconcile came first
    assert containers(provider, lease_id) == []
    body = signed_get(provider, f"/v1/services/{lease_id}").json()
    assert body["state"] == "stopped" and "closed by renter" in body["detail"]


def test_a_deposit_that_runs_out_ends_the_lease_and_stops_the_service(net, leases, provider):
    spec = spec_of("short-lived")
    lease_id = open_lease(net, leases, spec, provider=provider.address, deposit=min_deposit(RATE))
    r = push(provider, lease_id, spec)
    assert r.status_code == 202, r.text
    port = r.json()["host_port"]
    wait_for(lambda: serves(port), what="the service's port")
    leases.report_serving(wallet_of(net, RENTER).transact, lease_id)  # the renter attests
    net.time_travel(120)
    wait_for(lambda: leases.lease(lease_id).status == LeaseStatus.ENDED, what="the lease ended")
    lease = leases.lease(lease_id)
    assert lease.reason == EndReason.OUT_OF_FUNDS and lease.paid == min_deposit(RATE)
    wait_for(lambda: containers(provider, lease_id) == [], what="the container removed")
    body = signed_get(provider, f"/v1/services/{lease_id}").json()
    assert body["state"] == "stopped" and "out of funds" in body["detail"]
