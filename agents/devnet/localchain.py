"""A local chain for a devnet, test or benchmark: started by PID, contracts deployed by brownie.

Brownie runs in its own environment (``tools/brownie``), so deployment is a subprocess
that writes the deployments file the rest of dcloud reads.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from agents.devnet.procs import Proc, port_open, spawn
from agents.errors import AgentError

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
GANACHE_MNEMONIC = "brownie"


def chain_argv(
    kind: str,
    port: int,
    *,
    state: Path | None = None,
    accounts: int = 10,
    mnemonic: str = GANACHE_MNEMONIC,
) -> list[str]:
    if kind == "anvil":
        argv = [str(BIN / "anvil"), "--port", str(port), "--accounts", str(accounts)]
        argv += ["--block-base-fee-per-gas", "0", "--gas-limit", "30000000", "--silent"]
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
) -> Proc:
    """Start a chain; `mnemonic` sets Ganache's dev accounts (anvil always uses its own)."""
    if port_open(port):
        raise AgentError(f"port {port} is busy: stop whatever listens there first")
    argv = chain_argv(kind, port, state=state, accounts=accounts, mnemonic=mnemonic)
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
