"""A job in a renter's own image, on a real chain, a real provider agent and real storage
nodes: the provider that has never seen the image pulls it with the push and runs it
hardened; without the image's source a push is refused before anything is accepted, and
once pulled the image is held (and announced in heartbeats) for the next job.

The renter's side (funding, the push) is driven by hand here: the marketplace's
matching of pinned images and the renter's ``dcloud image push`` are other modules'.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import docker
import httpx
import pytest
from web3.logs import DISCARD

from agents.devnet.network import PASSWORD, ProviderSpec, dev_account
from agents.devnet.network import Network as Devnet
from agents.errors import RefusedError
from agents.provider.services import engine as eng
from agents.storage.files.client import StorageClient
from agents.wallet import Wallet
from protocol import provider_api as api
from protocol.assignments import unsigned
from protocol.images import ImageSource, pin
from protocol.keywrap import address_of
from protocol.leases import Leases, LeaseStatus
from protocol.schemas import JobSpec
from protocol.services import ServiceSpec, service_spec_hash
from protocol.signing import sign_request
from tests.agents.storage.network import Network as StorageNetwork
from tests.agents.storage.network import account
from tests.agents.storage.test_image_pull import push_source, saved_layers
from tests.integration.chains import CHAINS, deploy_contracts, running_chain
from tests.renter_images import build_image

pytestmark = pytest.mark.integration

CHAIN_LOCK = "/tmp/dcloud-chain.lock"
PULLED: list[str] = []
TOKEN = 10**18
RENTER = 8
PROBE = b"""#!/bin/sh
echo "uid $(id -u)"
grep '^CapEff:' /proc/self/status
cat /greeting.txt
"""


@pytest.fixture(scope="module")
def chain_lock() -> Iterator[None]:
    with open(CHAIN_LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one chain-starting test module at a time
        port = CHAINS["anvil-e2e"]["port"]
        end = time.monotonic() + 600
        while time.monotonic() < end:  # a session that takes no lock may still hold the port
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(1)
        yield


@pytest.fixture(scope="module")
def net(chain_lock, docker_engine, job_images, tmp_path_factory) -> Iterator[Devnet]:
    root = tmp_path_factory.mktemp("images-net")
    with running_chain("anvil-e2e") as url:
        deploy_contracts(CHAINS["anvil-e2e"]["network"], root / "deployments.json")
        network = Devnet(root=root, rpc_url=url, deployments=root / "deployments.json")
        try:
            network.start_marketplace()
            network.add_provider(ProviderSpec("p-images", 1, 50.11, 8.68))
            yield network
        finally:
            network.close()  # removes its services' containers too
            for image in PULLED:
                with contextlib.suppress(docker.errors.NotFound):
                    docker_engine.images.remove(image, force=True)


@pytest.fixture(scope="module")
def storage_nodes(tmp_path_factory) -> Iterator[StorageNetwork]:
    nodes = StorageNetwork(tmp_path_factory.mktemp("images-storage"), nodes=6)
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def pushed(
    docker_engine: docker.DockerClient, storage_nodes: StorageNetwork, net: Devnet, tmp_path_factory
) -> tuple[str, ImageSource]:
    """A renter's image, stored on the nodes for the provider, then gone from the engine."""
    provider = net.providers[0]
    health = httpx.get(f"{provider.endpoint}/v1/health", timeout=5).json()
    public = health["public_key"]
    assert address_of(public) == provider.address  # the key is the agent's own
    nonce = os.urandom(4).hex()
    tag = f"itest-jobs/app-{nonce}:1"
    digest = build_image(
        docker_engine,
        tag,
        {"probe.sh": PROBE, "greeting.txt": f"hello from {nonce}\n".encode()},
        cmd=["/probe.sh"],
        user="root",
    )
    config, layers = saved_layers(docker_engine, tag)
    home = tmp_path_factory.mktemp("images-renter")
    renter_key = account("images-jobs-renter")
    with StorageClient(home=home, account=renter_key, marketplace=storage_nodes.market.url) as s:
        ref = pin("itest-jobs/app:1", digest)
        grantee = _Grantee(provider.address)
        source = push_source(s, ref, config, layers, provider=grantee, public=public)  # type: ignore[arg-type]
    docker_engine.images.remove(tag, force=True)
    PULLED.append(digest)  # removed once the network's containers are gone
    return digest, source


class _Grantee:
    """The provider as push_source needs it when its public key is given: an address."""

    def __init__(self, address: str) -> None:
        self.address = address


def job_spec(ref: str, size: int) -> JobSpec:
    return JobSpec.model_validate(
        {
            "image": ref,
            "image_bytes": size,
            "command": ["/probe.sh"],
            "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 16},
            "time_limit_s": 30,
            "max_price_wei": TOKEN,
            "replicas": 1,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )


def fund_and_push(net: Devnet, spec: JobSpec, source: ImageSource | None) -> int:
    """Fund the job naming the provider, record it as the SDK does, push it with `source`."""
    renter = net.renter(RENTER)
    provider = net.providers[0]
    price = TOKEN // 100
    job_id = renter._fund(spec, price, unsigned([provider.address]))
    assignment = {
        "slot": 0,
        "provider": provider.address,
        "endpoint": provider.endpoint,
        "cost_wei": str(price),
    }
    renter.save(
        job_id,
        {
            "job_id": job_id,
            "marketplace_id": None,
            "spec": spec.model_dump(mode="json"),
            "price_wei": price,
            "assignments": [assignment],
            "submitted_at": time.time(),
        },
    )
    push = api.JobPush(chain_job_id=job_id, spec=spec, image=source)
    renter._push(assignment, push.model_dump(mode="json"))
    return job_id


def test_a_job_in_a_renters_image_is_pulled_run_hardened_and_then_held(net, pushed):
    digest, source = pushed
    spec = job_spec(source.ref, source.size)
    renter = net.renter(RENTER)
    with pytest.raises(RefusedError, match="push the image with the job"):
        fund_and_push(net, spec, None)  # not held, no source: refused before any accept

    job_id = fund_and_push(net, spec, source)
    renter.wait(job_id, timeout_s=120)
    result = renter.result(job_id)
    logs = result.logs.decode()
    assert result.exit_code == 0, logs
    assert "uid 65534" in logs and "CapEff:\t0000000000000000" in logs
    assert "hello from" in logs

    again = fund_and_push(net, spec, None)  # held now: no source needed
    renter.wait(again, timeout_s=120)
    assert renter.result(again).exit_code == 0

    provider = net.providers[0]
    end = time.monotonic() + 30
    while time.monotonic() < end:  # the next heartbeat announces the digest
        listed = httpx.get(f"{net.market_url}/v1/providers/{provider.address}").json()
        if digest in listed.get("images", []):
            break
        time.sleep(0.5)
    assert digest in listed.get("images", []), listed


def test_a_service_in_a_renters_image_runs_from_its_id_as_65534(net, pushed, docker_engine):
    digest, source = pushed
    provider = net.providers[0]
    renter = dev_account(RENTER)
    net.fund(renter.address, tokens=100 * TOKEN)
    spec = ServiceSpec.model_validate(
        {
            "name": f"img-{os.urandom(3).hex()}",
            "image": source.ref,
            "image_bytes": source.size,
            "command": ["httpd", "-f", "-p", "8000", "-h", "/"],
            "port": 8000,
            "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 16},
            "max_rate_wei_per_s": 10**15,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )
    leases = Leases(net.escrow.w3, net.escrow.deployment)
    wallet = Wallet(net.escrow.w3, renter)
    wallet.learn_errors(net.escrow.abis())
    rate, deposit = 10**12, 10**12 * 3600
    wallet.transact(net.escrow.token.functions.approve(leases.address, deposit))
    receipt = leases.open(
        wallet.transact,
        provider=provider.address,
        rate_per_second=rate,
        deposit=deposit,
        spec_hash=bytes.fromhex(service_spec_hash(spec)[2:]),
    )
    (event,) = leases.contract.events.LeaseOpened().process_receipt(receipt, errors=DISCARD)
    lease_id = int(event["args"]["leaseId"])
    payload = api.ServicePush(lease_id=lease_id, spec=spec, image=source).model_dump(mode="json")
    body = sign_request(renter, purpose=api.SERVICE_PUSH, payload=payload)
    answer = httpx.post(f"{provider.endpoint}/v1/services", json=body, timeout=120)
    assert answer.status_code == 202, answer.text
    assert leases.lease(lease_id).status == LeaseStatus.RUNNING
    found = docker_engine.containers.list(
        all=True, filters={"label": f"{eng.AGENT_LABEL}={provider.address.lower()}"}
    )
    (container,) = [c for c in found if c.labels[eng.SERVICE_LABEL].endswith(f"-lease-{lease_id}")]
    assert container.attrs["Image"] == digest  # made from the image id, not a name
    assert container.attrs["Config"]["Image"] == digest
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "65534:65534"
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert "no-new-privileges" in host["SecurityOpt"]


def test_provider_status_lists_the_pulled_images(net, pushed):
    digest, _ = pushed
    provider = net.providers[0]
    done = subprocess.run(
        [sys.executable, "-m", "agents", "provider", "status", "--home", str(provider.home)],
        env={**os.environ, "DCLOUD_PASSWORD": PASSWORD, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "renters' images pulled" in done.stdout
    assert "itest-jobs/app:1" in done.stdout and digest[:19] in done.stdout
