"""A client needs only the marketplace's URL and a chain URL: the marketplace publishes the
contracts it follows (GET /v1/network) and the client checks them against the chain."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from agents.errors import UserError
from agents.network import open_deployment
from marketplace.app import create_app
from marketplace.settings import Settings
from protocol.deployments import connect, load_for
from protocol.errors import DeploymentError
from protocol.network import NetworkInfo, check_against_chain, to_deployment
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    out = tmp_path_factory.mktemp("net") / "deployments.json"
    with running_chain("anvil") as url:
        deploy_contracts(CHAINS["anvil"]["network"], out)
        yield url, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The marketplace app served over real HTTP on a free loopback port."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the marketplace did not start")
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _settings(tmp_path: Path, url: str | None, deployments: Path | None) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        rpc_url=url,
        deployments=deployments,
        indexer_poll_s=0.2,
    )


def test_the_marketplace_publishes_what_it_follows_and_a_client_binds_it(chain, tmp_path):
    url, deployments = chain
    w3 = connect(url)
    pinned = load_for(w3, path=deployments)
    with serving(_settings(tmp_path, url, deployments)) as market:
        d = open_deployment(w3, marketplace_url=market, deployments=None, cache_dir=tmp_path)
    assert d.chain_id == 31337
    for name, info in pinned.contracts.items():
        assert d.contracts[name].address == info.address
    assert (tmp_path / "network-31337.json").exists()
    # the marketplace is gone: the copy kept at the last check serves
    gone = f"http://127.0.0.1:{_free_port()}"
    again = open_deployment(w3, marketplace_url=gone, deployments=None, cache_dir=tmp_path)
    assert again.contracts["JobEscrow"].address == pinned.contracts["JobEscrow"].address
    # ... but a client that never reached it says so
    with pytest.raises(UserError, match="not reachable"):
        open_deployment(w3, marketplace_url=gone, deployments=None, cache_dir=tmp_path / "new")


def test_the_published_network_names_the_chain_the_matcher_and_dev_status(chain, tmp_path):
    url, deployments = chain
    with TestClient(create_app(_settings(tmp_path, url, deployments))) as client:
        body = client.get("/v1/network").json()
    info = NetworkInfo.model_validate(body)
    assert info.chain_id == 31337 and info.dev_chain is True
    assert info.matcher is not None and info.matcher.startswith("0x")
    assert {"ComputeToken", "JobEscrow", "StorageEscrow"} <= set(info.contracts)


def test_a_marketplace_without_a_chain_says_so(tmp_path, chain):
    url, _ = chain
    w3 = connect(url)
    with (
        serving(_settings(tmp_path, None, None)) as market,
        pytest.raises(UserError, match="follows no chain"),
    ):
        open_deployment(w3, marketplace_url=market, deployments=None, cache_dir=tmp_path)


def test_a_description_the_chain_does_not_hold_is_refused(chain, tmp_path):
    url, deployments = chain
    w3 = connect(url)
    with TestClient(create_app(_settings(tmp_path, url, deployments))) as client:
        good = NetworkInfo.model_validate(client.get("/v1/network").json())

    other_chain = good.model_copy(update={"chain_id": 1})
    with pytest.raises(DeploymentError, match="serves chain 31337"):
        check_against_chain(w3, to_deployment(other_chain), source="test")

    contracts = dict(good.contracts)
    contracts["JobEscrow"] = contracts["JobEscrow"].model_copy(
        update={"address": "0x000000000000000000000000000000000000dEaD"}
    )
    no_code = good.model_copy(update={"contracts": contracts})
    with pytest.raises(DeploymentError, match="no contract there"):
        check_against_chain(w3, to_deployment(no_code), source="test")

    contracts = dict(good.contracts)
    contracts["ComputeToken"] = contracts["ComputeToken"].model_copy(
        update={"address": good.contracts["JobEscrow"].address}
    )
    wrong_token = good.model_copy(update={"contracts": contracts})
    with pytest.raises(DeploymentError, match="uses token"):
        check_against_chain(w3, to_deployment(wrong_token), source="test")

    incomplete = good.model_copy(
        update={"contracts": {k: v for k, v in good.contracts.items() if k != "TokenSale"}}
    )
    with pytest.raises(DeploymentError, match="publishes no TokenSale"):
        to_deployment(incomplete)
