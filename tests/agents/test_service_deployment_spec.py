"""A spec of several containers: what it must hold, and how it hashes."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from pydantic import ValidationError

from protocol.schemas import Demand
from protocol.services import ServiceSpec, main_resources, service_spec_hash, start_order

BASE: dict[str, object] = {
    "name": "shop",
    "image": "dcloud/python:3.11",
    "port": 8000,
    "resources": {"cpu": 1.0, "memory_mb": 256, "disk_mb": 32},
    "max_rate_wei_per_s": 10**12,
    "origin": {"lat": 48.14, "lon": 11.58},
}


def deployment(**kw: object) -> ServiceSpec:
    body = {
        **BASE,
        "alias": "web",
        "depends_on": ["api"],
        "containers": [
            {"name": "api", "image": "dcloud/python:3.11", "depends_on": ["db"],
             "resources": {"cpu": 0.25, "memory_mb": 64}},
            {"name": "db", "image": "dcloud/busybox:1",
             "resources": {"cpu": 0.25, "memory_mb": 64, "disk_mb": 16}},
        ],
    }  # fmt: skip
    return ServiceSpec.model_validate({**body, **kw})


def test_a_single_container_spec_hashes_as_before_deployments_existed():
    spec = ServiceSpec.model_validate(BASE)
    # the hash a spec of one container had before the deployment fields were added
    assert service_spec_hash(spec) == (
        "0x"
        + keccak(
            b'{"command":[],"env":{},"health":{"failures":3,"interval_s":5.0,"kind":"http",'
            b'"path":"/","restart_after":6,"start_period_s":60.0,"timeout_s":2.0},'
            b'"image":"dcloud/python:3.11","inputs":[],"max_rate_wei_per_s":1000000000000,'
            b'"name":"shop","network":false,"origin":{"lat":48.14,"lon":11.58},"port":8000,'
            b'"regions":null,"resources":{"cpu":1.0,"disk_mb":32,"gpu":0,"memory_mb":256}}'
        ).hex()
    )


def test_the_hash_covers_every_container():
    spec = deployment()
    other = deployment(containers=[*spec.model_dump()["containers"][:1], {
        "name": "db", "image": "dcloud/busybox:1", "command": ["true"],
        "resources": {"cpu": 0.25, "memory_mb": 64, "disk_mb": 16}}])  # fmt: skip
    assert service_spec_hash(spec) != service_spec_hash(other)


def test_containers_start_after_what_they_depend_on():
    assert start_order(deployment()) == ["db", "api", "web"]


def test_the_main_container_gets_what_the_others_leave():
    assert main_resources(deployment()) == Demand(cpu=0.5, memory_mb=128, gpu=0, disk_mb=16)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"depends_on": ["cache"]}, "web depends on 'cache', which is not a container here"),
        ({"alias": "api"}, "container names must be distinct"),
        ({"alias": None}, "names its main one (alias)"),
        ({"resources": {"cpu": 0.5, "memory_mb": 256}}, "must be the sum of its containers'"),
    ],
)
def test_a_bad_deployment_is_refused_with_why(change, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        deployment(**change)


def test_depends_on_that_goes_round_is_refused():
    with pytest.raises(ValidationError, match="depends_on goes round: web -> api -> db -> web"):
        deployment(containers=[
            {"name": "api", "image": "x:1", "depends_on": ["db"],
             "resources": {"cpu": 0.25, "memory_mb": 64}},
            {"name": "db", "image": "x:1", "depends_on": ["web"],
             "resources": {"cpu": 0.25, "memory_mb": 64}},
        ])  # fmt: skip
