"""The network a marketplace follows, as it publishes it at ``GET /v1/network``.

A client needs only the marketplace's URL and a chain URL: the marketplace publishes the
chain id and the contracts (address and ABI) it indexes, and the client checks them
against the chain before it trusts them (:func:`check_against_chain`): the chain id
must match, every contract must have code, and the registry and token sale must name
the published token. A renter who trusts no marketplace for addresses pins a
deployments file instead (``--deployments``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from web3 import Web3

from protocol.deployments import CONTRACT_NAMES, ContractInfo, Deployment
from protocol.errors import DeploymentError
from protocol.schemas import Wire

# Chains whose dev accounts and faucet exist only locally (anvil, Ganache).
DEV_CHAIN_IDS = (1337, 31337)


class PublishedContract(Wire):
    address: str = Field(description="checksummed address")
    abi: list[dict[str, Any]] = Field(description="the contract's ABI")


class NetworkInfo(Wire):
    """What a marketplace follows on chain, for clients to bind the same contracts."""

    chain_id: int = Field(description="the chain id the contracts live on")
    network: str = Field(description="the deployment's network name")
    deployed_at_block: int = Field(ge=0)
    parameters: dict[str, int] = Field(description="deployment parameters (windows, fees, ...)")
    contracts: dict[str, PublishedContract]
    matcher: str | None = Field(
        default=None, description="the key the marketplace signs assignments with"
    )
    dev_chain: bool = Field(description="a local chain with dev accounts and a faucet")


def publish(deployment: Deployment, *, matcher: str | None = None) -> NetworkInfo:
    """The public description of `deployment`."""
    return NetworkInfo(
        chain_id=deployment.chain_id,
        network=deployment.network,
        deployed_at_block=deployment.deployed_at_block,
        parameters=dict(deployment.parameters),
        contracts={
            name: PublishedContract(address=info.address, abi=info.abi)
            for name, info in deployment.contracts.items()
        },
        matcher=matcher,
        dev_chain=deployment.chain_id in DEV_CHAIN_IDS,
    )


def to_deployment(info: NetworkInfo) -> Deployment:
    """The :class:`Deployment` a client binds contracts with."""
    missing = [n for n in CONTRACT_NAMES if n not in info.contracts]
    if missing:
        raise DeploymentError(
            f"the marketplace publishes no {', '.join(missing)} on chain {info.chain_id}; "
            "it follows an incomplete deployment: redeploy, or pin a file with --deployments"
        )
    return Deployment(
        chain_id=info.chain_id,
        network=info.network,
        deployed_at_block=info.deployed_at_block,
        parameters=dict(info.parameters),
        contracts={
            name: ContractInfo(address=c.address, abi=c.abi) for name, c in info.contracts.items()
        },
    )


def check_against_chain(w3: Web3, deployment: Deployment, *, source: str) -> None:
    """Refuse a deployment the chain at `w3` does not hold.

    Raises:
        DeploymentError: another chain id, an address without code, or a registry or
            token sale that names another token than the one published.
    """
    chain_id = int(w3.eth.chain_id)
    if chain_id != deployment.chain_id:
        raise DeploymentError(
            f"{source} describes chain {deployment.chain_id} but the RPC URL serves chain "
            f"{chain_id}: point --rpc at the chain the marketplace follows"
        )
    for name in CONTRACT_NAMES:
        address = Web3.to_checksum_address(deployment.contracts[name].address)
        if not w3.eth.get_code(address):
            raise DeploymentError(
                f"{source} names {name} at {address}, but chain {chain_id} has no contract "
                "there (a reset chain, or another chain on that URL): restart or redeploy "
                "the network, then try again"
            )
    token = Web3.to_checksum_address(deployment.contracts["ComputeToken"].address)
    for name in ("ProviderRegistry", "TokenSale"):
        named = deployment.contract(w3, name).functions.token().call()
        if Web3.to_checksum_address(named) != token:
            raise DeploymentError(
                f"{source}: {name} on chain {chain_id} uses token {named}, not the published "
                f"ComputeToken {token}; do not use this network description"
            )
