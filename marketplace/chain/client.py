"""The service's read access to the chain: stakes, and the contracts for the indexer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3
from web3.contract import Contract

from marketplace.errors import ConfigurationError
from protocol.deployments import Deployment, connect, load_for
from protocol.errors import ProtocolError
from protocol.escrow import Escrow

logger = logging.getLogger(__name__)

STORAGE_ESCROW = "StorageEscrow"


@dataclass
class Stake:
    staked_wei: int
    active: bool


class ChainClient:
    """Web3 bindings of the deployed contracts on the configured chain.

    The bindings (``deployment``, ``registry``, ``escrow``, ``token``, ``storage``,
    ``jobs``) always come from one deployment: :meth:`reload` replaces them together after
    a redeploy.
    """

    def __init__(self, rpc_url: str, *, deployments: str | None = None) -> None:
        self._path = Path(deployments) if deployments else None
        try:
            self.w3: Web3 = connect(rpc_url)
            deployment = load_for(self.w3, path=self._path)
        except ProtocolError as exc:
            raise ConfigurationError(str(exc)) from None
        self._bind(deployment)
        logger.info(
            "chain %s connected at %s",
            self.deployment.chain_id,
            rpc_url,
        )

    def _bind(self, deployment: Deployment) -> None:
        self.deployment: Deployment = deployment
        self.registry: Contract = deployment.contract(self.w3, "ProviderRegistry")
        self.escrow: Contract = deployment.contract(self.w3, "JobEscrow")
        self.token: Contract = deployment.contract(self.w3, "ComputeToken")
        # Deployments written before storage deals have no StorageEscrow.
        self.storage: Contract | None = (
            deployment.contract(self.w3, STORAGE_ESCROW)
            if STORAGE_ESCROW in deployment.contracts
            else None
        )
        self.jobs = Escrow(self.w3, deployment)  # typed JobEscrow reads

    def reload(self) -> bool:
        """Re-read the deployments file and rebind every contract; True if it changed.

        Raises:
            ProtocolError: the file cannot be read or has nothing for this chain.
        """
        deployment = load_for(self.w3, path=self._path)
        if deployment == self.deployment:
            return False
        self._bind(deployment)
        logger.warning(
            "deployments reloaded: escrow at %s, deployed at block %d",
            self.escrow.address,
            deployment.deployed_at_block,
            extra={"escrow": self.escrow.address, "chain_id": deployment.chain_id},
        )
        return True

    def now(self) -> int:
        """The chain's clock (``protocol.escrow.Escrow.now``)."""
        return self.jobs.now()

    def stake(self, address: str) -> Stake:
        staked = int(self.registry.functions.stakeOf(address).call()[0])
        active = bool(self.registry.functions.isActive(address).call())
        return Stake(staked, active)
