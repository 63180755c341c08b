"""The renter's whole path with its own image, through the SDK: `Images.push`, then
`Renter.submit` naming the image by its tag. The spec goes out pinned to the digest with
the image's size, the provider (which has never seen the image: it is gone from the
engine they share) is given the image's source with the push, pulls it from the storage
nodes and runs the job; a pinned reference the renter never pushed is refused before
anything is paid. A service deployed by tag goes the same way."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

import docker
import pytest

from agents.devnet.network import Network as Devnet
from agents.devnet.network import ProviderSpec
from agents.errors import UserError
from agents.image.images import Images
from agents.service.client import Services
from protocol.schemas import JobSpec
from protocol.services import ServiceSpec
from tests.agents.storage.network import Network as StorageNetwork
from tests.integration.chains import CHAINS, deploy_contracts, running_chain
from tests.renter_images import build_image

pytestmark = pytest.mark.integration

CHAIN_LOCK = "/tmp/dcloud-chain.lock"
TOKEN = 10**18
RENTER = 9
PULLED: list[str] = []


@pytest.fixture(scope="module")
def net(docker_engine, job_images, tmp_path_factory) -> Iterator[Devnet]:
    root = tmp_path_factory.mktemp("push-job-net")
    with open(CHAIN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one chain-starting test module at a time
        with running_chain("anvil-e2e") as url:
            deploy_contracts(CHAINS["anvil-e2e"]["network"], root / "deployments.json")
            network = Devnet(root=root, rpc_url=url, deployments=root / "deployments.json")
            try:
                network.start_marketplace()
                network.add_provider(ProviderSpec("p-push", 1, 50.11, 8.68))
                yield network
            finally:
                network.close()
                for image in PULLED:
                    with contextlib.suppress(docker.errors.NotFound):
                        docker_engine.images.remove(image, force=True)


@pytest.fixture(scope="module")
def storage_nodes(tmp_path_factory) -> Iterator[StorageNetwork]:
    nodes = StorageNetwork(tmp_path_factory.mktemp("push-job-storage"), nodes=5)
    try:
        yield nodes
    finally:
        nodes.stop()


def spec(image: str) -> JobSpec:
    return JobSpec.model_validate(
        {
            "image": image,
            "command": ["/hello.sh"],
            "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 16},
            "time_limit_s": 30,
            "max_price_wei": TOKEN,
            "replicas": 1,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )


def test_a_job_in_an_image_the_renter_pushed(net, storage_nodes, docker_engine) -> None:
    renter = net.renter(RENTER)
    net.fund(renter.address, tokens=10 * TOKEN)
    nonce = os.urandom(4).hex()
    tag = f"itest-push/app-{nonce}:1"
    digest = build_image(
        docker_engine,
        tag,
        {"hello.sh": f"#!/bin/sh\necho pushed {nonce}\n".encode()},
        cmd=["/hello.sh"],
    )
    with Images(
        home=renter.home,
        account=renter.account,
        marketplace=storage_nodes.market.url,
        docker_client=docker_engine,
        k=2,
        n=4,
    ) as images:
        pushed = images.push(tag)
    docker_engine.images.remove(tag, force=True)  # the provider has never seen it
    PULLED.append(digest)

    with pytest.raises(UserError, match="not an image you pushed"):
        renter.submit(spec(f"itest-push/other:1@sha256:{'ab' * 32}"))

    steps: list[str] = []
    job_id = renter.submit(spec(tag), progress=steps.append)
    sent = JobSpec.model_validate(renter.record(job_id)["spec"])
    assert sent.image == f"{tag}@{digest}" and sent.image_bytes == pushed.record.size
    assert any("fetching the image" in s for s in steps), steps
    renter.wait(job_id, timeout_s=120)
    result = renter.result(job_id)
    assert result.exit_code == 0
    assert f"pushed {nonce}" in result.logs.decode()


def test_a_service_in_an_image_the_renter_pushed(net, storage_nodes, docker_engine) -> None:
    renter = net.renter(RENTER)
    net.fund(renter.address, tokens=10 * TOKEN)
    nonce = os.urandom(4).hex()
    tag = f"itest-push/site-{nonce}:1"
    digest = build_image(docker_engine, tag, {"index.html": f"site {nonce}\n".encode()})
    with Images(
        home=renter.home,
        account=renter.account,
        marketplace=storage_nodes.market.url,
        docker_client=docker_engine,
        k=2,
        n=4,
    ) as images:
        pushed = images.push(tag)
    docker_engine.images.remove(tag, force=True)
    PULLED.append(digest)

    services = Services(renter)
    service = ServiceSpec.model_validate(
        {
            "name": f"pushed-{nonce}",
            "image": tag,
            "command": ["httpd", "-f", "-p", "8000", "-h", "/"],
            "port": 8000,
            "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 16},
            "max_rate_wei_per_s": 10**15,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )
    steps: list[str] = []
    up = services.deploy(service, progress=steps.append, timeout_s=120)
    assert any("fetching the image" in s for s in steps), steps
    record = services.record(service.name)
    assert record["spec"]["image"] == f"{tag}@{digest}"
    assert record["spec"]["image_bytes"] == pushed.record.size
    agent = services.status(service.name).agent or {}
    assert agent.get("state") == "healthy", agent
    assert up.lease_id == record["lease_id"]
    services.stop(service.name)
