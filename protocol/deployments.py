"""Read the contract addresses and ABIs that ``brownie run deploy`` writes.

The file maps chain ids (as strings) to one entry each::

    {"31337": {"chain_id": 31337, "network": "...", "deployed_at_block": 1,
               "parameters": {...}, "contracts": {"JobEscrow": {"address": "0x..", "abi": [...]}}}}

Services never hard-code addresses: they call :func:`load_deployment` with the
chain id their RPC endpoint reports and bind contracts with :meth:`Deployment.contract`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from protocol.errors import ChainError, DeploymentError

logger = logging.getLogger(__name__)

ENV_PATH = "DCLOUD_DEPLOYMENTS"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "deployments" / "local.json"
CONTRACT_NAMES = (
    "ComputeToken",
    "TokenSale",
    "ProviderRegistry",
    "JobEscrow",
    "StorageEscrow",
    "LeaseEscrow",
)


@dataclass(frozen=True)
class ContractInfo:
    """One deployed contract: its address and ABI."""

    address: str
    abi: list[dict[str, Any]]


@dataclass(frozen=True)
class Deployment:
    """Everything deployed on one chain."""

    chain_id: int
    network: str
    deployed_at_block: int
    parameters: dict[str, int]
    contracts: dict[str, ContractInfo] = field(repr=False)

    def contract(self, w3: Web3, name: str) -> Contract:
        """Bind contract `name` on `w3`; raises DeploymentError for an unknown name."""
        info = self.contracts.get(name)
        if info is None:
            known = ", ".join(sorted(self.contracts))
            raise DeploymentError(
                f"no contract named {name!r} on chain {self.chain_id} (deployed: {known}); "
                "redeploy with `tools/brownie run deploy`"
            )
        return w3.eth.contract(address=Web3.to_checksum_address(info.address), abi=info.abi)


def deployments_path() -> Path:
    """The deployments file: ``$DCLOUD_DEPLOYMENTS`` or ``deployments/local.json``."""
    return Path(os.environ.get(ENV_PATH, DEFAULT_PATH))


def load_deployment(chain_id: int, *, path: Path | None = None) -> Deployment:
    """Return the deployment for `chain_id` from the deployments file."""
    path = path or deployments_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeploymentError(
            f"no deployments file at {path}: deploy first (`tools/brownie run deploy`) "
            f"or set {ENV_PATH} to the file it wrote"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DeploymentError(
            f"cannot read deployments file {path} ({exc}); redeploy to rewrite it"
        ) from None
    entry = data.get(str(chain_id)) if isinstance(data, dict) else None
    if entry is None:
        chains = ", ".join(sorted(data)) if isinstance(data, dict) else "none"
        raise DeploymentError(
            f"nothing deployed on chain {chain_id} in {path} (chains there: {chains}); "
            "run `tools/brownie run deploy --network <network of that chain>`"
        )
    try:
        contracts = {
            name: ContractInfo(address=c["address"], abi=c["abi"])
            for name, c in entry["contracts"].items()
        }
        return Deployment(
            chain_id=int(entry["chain_id"]),
            network=str(entry.get("network", "")),
            deployed_at_block=int(entry.get("deployed_at_block", 0)),
            parameters={k: int(v) for k, v in entry.get("parameters", {}).items()},
            contracts=contracts,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeploymentError(
            f"deployments file {path} has a malformed entry for chain {chain_id} ({exc!r}); "
            "redeploy to rewrite it"
        ) from None


def connect(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A connected Web3 for `rpc_url`; raises ChainError when nothing answers.

    The chain id is asked once and kept: web3 checks it before every call and estimate,
    which otherwise doubles the requests a call makes."""
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    w3 = Web3(provider)
    if not w3.is_connected():
        raise ChainError(
            f"no Ethereum node answers at {rpc_url}: start one (`make demo` starts anvil) "
            "or set DCLOUD_RPC_URL"
        )
    return w3


def load_for(w3: Web3, *, path: Path | None = None) -> Deployment:
    """The deployment for the chain `w3` is connected to."""
    return load_deployment(w3.eth.chain_id, path=path)
