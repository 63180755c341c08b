"""A local chain for a devnet, test or benchmark: started by PID, contracts deployed by brownie.

Brownie runs in its own environment (``tools/brownie``), so deployment is a subprocess
that writes the deployments file the rest of dcloud reads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import threading
import time
from pathlib import Path

from web3 import Web3

from agents.devnet.procs import Proc, port_open, spawn
from agents.errors import AgentError

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
GANACHE_MNEMONIC = "brownie"
# A devnet's chain mines at least this often, as a real chain does (Ethereum: 12 s).
DEVNET_BLOCK_TIME_S = 2

logger = logging.getLogger(__name__)


def chain_argv(
    kind: str,
    port: int,
    *,
    state: Path | None = None,
    accounts: int = 10,
    mnemonic: str = GANACHE_MNEMONIC,
    block_time_s: int | None = None,
) -> list[str]:
    """The command line of a local chain. With `block_time_s`, anvil also mines a block at
    that interval when no transaction arrives (transactions are still mined at once), so
    its clock moves as a real chain's does; Ganache needs a :class:`BlockTicker`."""
    if kind == "anvil":
        argv = [str(BIN / "anvil"), "--port", str(port), "--accounts", str(accounts)]
        argv += ["--block-base-fee-per-gas", "0", "--gas-limit", "30000000", "--silent"]
        if block_time_s:
            argv += ["--block-time", str(block_time_s), "--mixed-mining"]
        if state is not None:
            argv += ["--state", str(state)]
        return argv
    if kind == "ganache":
        argv = [str(BIN / "ganache"), "--port", str(port), "--hardfork", "istanbul"]
        argv += ["--wallet.mnemonic", mnemonic, "--wallet.totalAccounts", str(accounts)]
        argv += ["--miner.blockGasLimit", "30000000", "--logging.quiet"]
        if state is not None:
            argv += ["--database.dbPath", str(state)]
        return argv
    raise AgentError(f"unknown chain {kind!r}; use anvil or ganache")


def start_chain(
    kind: str,
    port: int,
    *,
    logs: Path,
    state: Path | None = None,
    accounts: int = 10,
    mnemonic: str = GANACHE_MNEMONIC,
    block_time_s: int | None = None,
) -> Proc:
    """Start a chain; `mnemonic` sets Ganache's dev accounts (anvil always uses its own)."""
    if port_open(port):
        raise AgentError(f"port {port} is busy: stop whatever listens there first")
    argv = chain_argv(
        kind, port, state=state, accounts=accounts, mnemonic=mnemonic, block_time_s=block_time_s
    )
    proc = spawn(f"chain-{kind}", argv, logs=logs)
    end = time.monotonic() + 30
    while not port_open(port):
        if not proc.alive():
            raise AgentError(f"{kind} exited at start:\n{proc.tail()}")
        if time.monotonic() > end:
            proc.stop()
            raise AgentError(f"{kind} did not open port {port} within 30 s")
        time.sleep(0.05)
    return proc


class BlockTicker:
    """Mines an empty block whenever the newest one is `interval_s` old, for a chain that
    mines only when a transaction arrives (Ganache), so its clock keeps moving: deadlines
    pass and claims that wait on them can be made without some other transaction."""

    def __init__(self, rpc_url: str, interval_s: float) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 5}))
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="block-ticker", daemon=True)

    def start(self) -> BlockTicker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval_s / 4):
            try:
                newest = int(self.w3.eth.get_block("latest")["timestamp"])
                if time.time() - newest >= self.interval_s:
                    self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            except Exception as exc:  # the chain stopping first is normal at teardown
                logger.debug("block ticker: %s", exc)


def contracts_fingerprint() -> str:
    """sha256 over the contracts' sources (path and bytes): a devnet deployed from other
    sources holds contracts this code may not speak to."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "contracts").rglob("*.sol")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def deploy(network: str, out: Path, *, logs: Path, **params: str) -> None:
    """``tools/brownie run deploy`` on brownie network `network`, writing `out`."""
    env = dict(os.environ, DCLOUD_DEPLOYMENTS=str(out), **params)
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "deploy.log", "ab") as fh:
        proc = subprocess.run(
            [str(ROOT / "tools" / "brownie"), "run", "deploy", "--network", network],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    if proc.returncode != 0:
        tail = (logs / "deploy.log").read_text(errors="replace")[-2000:]
        raise AgentError(f"deploying the contracts failed:\n{tail}")


def docker_engine(action: str, *, holder: int) -> None:
    """``tools/dockerd.sh start|stop --for holder``: hold a Docker engine (starting one by
    PID if none answers) or release the hold (stopping the engine if the script started it
    and nobody else holds it). A failed start raises; a failed stop is ignored."""
    done = subprocess.run(
        [str(ROOT / "tools" / "dockerd.sh"), action, "--for", str(holder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if action == "start" and done.returncode != 0:
        raise AgentError(f"the Docker engine could not be started:\n{done.stdout}{done.stderr}")
