"""What the service tests share: an ingress gateway that follows a marketplace's routes,
and a renter's service SDK on a devnet network."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from agents.devnet.network import Network, ProviderSpec, dev_account
from agents.devnet.procs import free_port
from agents.ingress import Controller, Nginx
from agents.renter.client import Renter
from agents.service import Services
from agents.service.gateway import Gateway
from tests.integration.chains import CHAINS, deploy_contracts, running_chain


@contextlib.contextmanager
def gateway_for(market_url: str, folder: Path) -> Iterator[Nginx]:
    """nginx on a free port, its routes polled from the marketplace every 0.3 s."""
    gw = Nginx(folder, port=free_port())
    gw.start()
    controller = Controller(gw, market_url, interval_s=0.3).start()
    try:
        yield gw
    finally:
        controller.stop()
        gw.stop()


@contextlib.contextmanager
def services_of(net: Network, key_index: int, home: Path, gateway: Nginx) -> Iterator[Services]:
    """Dev account `key_index`'s services on `net`, its folder `home`."""
    renter = Renter(
        account=dev_account(key_index),
        marketplace_url=net.market_url,
        rpc_url=net.rpc_url,
        deployments=str(net.deployments),
        home=home,
    )
    try:
        yield Services(renter, gateway=Gateway(gateway.url))
    finally:
        renter.close()


@contextlib.contextmanager
def service_network(root: Path, providers: list[ProviderSpec], **deploy: str) -> Iterator[Network]:
    """The service tests' own anvil with the contracts (`deploy` adds DCLOUD_* deploy
    parameters), a marketplace and `providers`' agents; all stopped by PID afterwards."""
    with running_chain("anvil-e2e") as url:
        deploy_contracts(CHAINS["anvil-e2e"]["network"], root / "deployments.json", **deploy)
        network = Network(root=root, rpc_url=url, deployments=root / "deployments.json")
        try:
            network.start_marketplace()
            for spec in providers:
                network.add_provider(spec)
            yield network
        finally:
            network.close()
