"""The service's read access to the chain: stakes, and the contracts for the indexer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from marketplace.errors import ConfigurationError
from protocol.deployments import Deployment, connect, load_for
from protocol.errors import ProtocolError
from protocol.escrow import Escrow

logger = logging.getLogger(__name__)


@dataclass
class Stake:
    staked_wei: int
    active: bool


class ChainClient:
    """Web3 bindings of the deployed contracts on the configured chain."""

    def __init__(self, rpc_url: str, *, deployments: str | None = None) -> None:
        from pathlib import Path

        try:
            self.w3: Web3 = connect(rpc_url)
            self.deployment: Deployment = load_for(
                self.w3, path=Path(deployments) if deployments else None
            )
        except ProtocolError as exc:
            raise ConfigurationError(str(exc)) from None
        self.registry: Contract = self.deployment.contract(self.w3, "ProviderRegistry")
        self.escrow: Contract = self.deployment.contract(self.w3, "JobEscrow")
        self.token: Contract = self.deployment.contract(self.w3, "ComputeToken")
        self.jobs = Escrow(self.w3, self.deployment)  # typed JobEscrow reads
        logger.info(
            "chain %s connected at %s",
            self.deployment.chain_id,
            rpc_url,
        )

    def now(self) -> int:
        """The chain's clock (``protocol.escrow.Escrow.now``)."""
        return self.jobs.now()

    def stake(self, address: str) -> Stake:
        staked = int(self.registry.functions.stakeOf(address).call()[0])
        active = bool(self.registry.functions.isActive(address).call())
        return Stake(staked, active)
