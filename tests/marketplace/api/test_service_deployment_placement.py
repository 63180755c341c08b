"""Deployments of several containers are placed whole or not at all: their summed
resources must fit one provider, which must hold the images of every container."""

from __future__ import annotations

from typing import Any

from tests.marketplace.api.conftest import account
from tests.marketplace.api.services_helpers import deploy, free_cpu, register, service_spec

ALICE = account("alice")
P1, P2 = account("provider-stack-1"), account("provider-stack-2")


def stack(name: str = "shop", *, cpu: float, db_cpu: float, db_image: str = "busybox") -> Any:
    spec = service_spec(name, cpu=cpu + db_cpu, memory_mb=512 + 128)
    spec["alias"], spec["depends_on"] = "web", ["db"]
    spec["containers"] = [
        {"name": "db", "image": db_image, "resources": {"cpu": db_cpu, "memory_mb": 128}}
    ]
    return spec


def test_a_deployment_reserves_and_pays_for_all_its_containers(client):
    register(client, P1, cpu=4, price_wei=1000)
    body = deploy(client, ALICE, stack(cpu=1.5, db_cpu=1)).json()
    assert body["status"] == "placed" and body["provider"] == P1.address
    assert body["rate_wei_per_s"] == 2500
    assert free_cpu(client, P1) == 1.5


def test_a_deployment_whose_containers_fit_only_apart_is_not_placed(client):
    register(client, P1, cpu=2)
    assert deploy(client, ALICE, stack(cpu=1.5, db_cpu=1)).json()["status"] == "unmatched"
    assert free_cpu(client, P1) == 2  # nothing held for a part of it


def test_only_a_provider_holding_every_image_is_chosen(client):
    register(client, P1, cpu=4, images=("busybox",))  # nearer, but lacks redis
    register(client, P2, cpu=4, images=("busybox", "redis:7"), lat=50.1, lon=8.7)
    body = deploy(client, ALICE, stack(cpu=1, db_cpu=1, db_image="redis:7")).json()
    assert body["status"] == "placed" and body["provider"] == P2.address


def test_no_provider_holding_the_other_images_says_which(client):
    register(client, P1, cpu=4, images=("busybox",))
    body = deploy(client, ALICE, stack(cpu=1, db_cpu=1, db_image="redis:7")).json()
    assert body["status"] == "unmatched"
    assert "holds the images of your other containers (redis:7)" in body["reason"]
