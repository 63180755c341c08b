"""A marketplace and twelve storage-node processes, shared by the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.storage.files.client import StorageClient
from tests.agents.storage.network import Network, account

NODES = 12


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    net = Network(tmp_path_factory.mktemp("storage-network"), nodes=NODES)
    try:
        yield net
    finally:
        net.stop()


def make_client(home: Path, network: Network, name: str = "renter") -> StorageClient:
    return StorageClient(home=home, account=account(name), marketplace=network.market.url)


@pytest.fixture
def client(tmp_path: Path, network: Network) -> Iterator[StorageClient]:
    with make_client(tmp_path / "renter", network) as c:
        yield c
