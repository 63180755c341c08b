"""The service's read access to the chain: stakes, and the contracts for the indexer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from marketplace.errors import ConfigurationError
from protocol.deployments import Deployment, connect, load_for
from protocol.errors import ProtocolError

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
        logger.info(
            "chain %s connected at %s",
            self.deployment.chain_id,
            rpc_url,
        )

    def now(self) -> int:
        """The chain's clock: the later of the latest block's time and the wall clock
        (a dev chain mines only on demand, and tests may move its time ahead)."""
        block = int(self.w3.eth.get_block("latest")["timestamp"])
        return max(block, int(time.time()))

    def stake(self, address: str) -> Stake:
        staked = int(self.registry.functions.stakeOf(address).call()[0])
        active = bool(self.registry.functions.isActive(address).call())
        return Stake(staked, active)
