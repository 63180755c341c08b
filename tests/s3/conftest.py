"""One marketplace, six storage-node processes and one `dcloud s3 serve` for the S3 tests.

Objects are stored k=3 of n=5, so two nodes may die and reads go on; with four of six
down no segment has three shards left.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents.storage.network import Network
from tests.s3.gateway import Gateway, make_key

NODES = 6


@pytest.fixture(scope="session")
def s3_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    net = Network(tmp_path_factory.mktemp("s3-network"), nodes=NODES, quota=1000 * 10**6)
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="session")
def renter_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-renter")


@pytest.fixture(scope="session")
def gateway(renter_home: Path, s3_network: Network) -> Iterator[Gateway]:
    gw = Gateway(renter_home, market=s3_network.market.url)
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def key(gateway: Gateway) -> tuple[str, str]:
    return make_key(gateway.home, "tests")


@pytest.fixture(scope="session")
def s3(gateway: Gateway, key: tuple[str, str]) -> Any:
    return gateway.client(key)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket named for the test; emptied and removed after it."""
    name = "t-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys})
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)
