"""Which contracts an agent talks to: the ones its marketplace follows, checked on chain.

A client needs only the marketplace's URL and a chain URL. :func:`open_deployment`
asks the marketplace (``GET /v1/network``), checks what it says against the chain
(:func:`protocol.network.check_against_chain`) and keeps a copy in the agent's folder,
so a marketplace that is down for a moment does not stop a renter from confirming or
withdrawing. A deployments file given explicitly (``--deployments``) wins and is
checked the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
from pydantic import ValidationError
from web3 import Web3

from agents.errors import UserError
from agents.market import describe
from protocol.deployments import Deployment, load_for
from protocol.errors import ProtocolError
from protocol.network import NetworkInfo, check_against_chain, to_deployment

logger = logging.getLogger(__name__)

NETWORK_PATH = "/v1/network"
CACHE_FILE = "network-{chain_id}.json"


def open_deployment(
    w3: Web3,
    *,
    marketplace_url: str,
    deployments: str | Path | None,
    cache_dir: Path,
    timeout: float = 10.0,
) -> Deployment:
    """The deployment this agent uses on `w3`'s chain.

    Raises:
        UserError: the marketplace cannot say (unreachable with no copy kept, follows no
            chain) or what it says does not hold on the chain.
    """
    try:
        if deployments:
            deployment = load_for(w3, path=Path(deployments))
            check_against_chain(w3, deployment, source=f"the deployments file {deployments}")
            return deployment
        info = _ask(marketplace_url, w3, cache_dir, timeout)
        deployment = to_deployment(info)
        check_against_chain(w3, deployment, source=f"the marketplace at {marketplace_url}")
    except ProtocolError as exc:
        raise UserError(str(exc)) from None
    _keep(cache_dir, info)
    return deployment


def fetch_network(marketplace_url: str, *, timeout: float = 10.0) -> NetworkInfo:
    """What the marketplace at `marketplace_url` publishes.

    Raises:
        UserError: it follows no chain, or answers something that is not a network.
        httpx.HTTPError: it cannot be reached.
    """
    r = httpx.get(marketplace_url.rstrip("/") + NETWORK_PATH, timeout=timeout)
    if r.status_code == 404:
        raise UserError(
            f"the marketplace at {marketplace_url} follows no chain ({describe(r)}); "
            "pass the deployments file with --deployments"
        )
    if r.status_code != 200:
        raise UserError(
            f"the marketplace at {marketplace_url} did not say which contracts it follows "
            f"({describe(r)}); check the URL"
        )
    try:
        return NetworkInfo.model_validate(r.json())
    except (ValueError, ValidationError):
        raise UserError(
            f"{marketplace_url} answered {NETWORK_PATH} with something that is not a dcloud "
            "network description; check that the URL is a dcloud marketplace"
        ) from None


def _ask(marketplace_url: str, w3: Web3, cache_dir: Path, timeout: float) -> NetworkInfo:
    try:
        return fetch_network(marketplace_url, timeout=timeout)
    except httpx.HTTPError as exc:
        kept = _kept(cache_dir, int(w3.eth.chain_id))
        if kept is None:
            raise UserError(
                f"the marketplace at {marketplace_url} is not reachable "
                f"({exc.__class__.__name__}) and no copy of its contract addresses is kept "
                "here yet; check the URL or start it (`make demo` starts one)"
            ) from None
        logger.warning("marketplace unreachable; using the contract addresses kept earlier")
        return kept


def _kept(cache_dir: Path, chain_id: int) -> NetworkInfo | None:
    path = cache_dir / CACHE_FILE.format(chain_id=chain_id)
    try:
        return NetworkInfo.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None


def _keep(cache_dir: Path, info: NetworkInfo) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / CACHE_FILE.format(chain_id=info.chain_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.model_dump_json())
    tmp.replace(path)
