"""Start and stop real local chains (anvil, Ganache 7) for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"

# Ports match the brownie networks that tools/setup.sh defines, so brownie
# attaches to the chain a test started instead of launching its own.
CHAINS = {
    "anvil": {"port": 8557, "network": "dcloud-test", "chain_id": 31337},
    "ganache": {"port": 8558, "network": "dcloud-ganache", "chain_id": 1337},
    # the job tests' own anvil, so they never wait for another module's chain
    "anvil-e2e": {"port": 8554, "network": "dcloud-e2e", "chain_id": 31337},
}


def _command(kind: str, port: int) -> list[str]:
    if kind.startswith("anvil"):
        return [
            str(BIN / "anvil"),
            "--port",
            str(port),
            "--accounts",
            "10",
            "--block-base-fee-per-gas",
            "0",
            "--gas-limit",
            "30000000",
            "--silent",
        ]
    return [
        str(BIN / "ganache"),
        "--port",
        str(port),
        "--hardfork",
        "istanbul",
        "--wallet.mnemonic",
        "brownie",
        "--wallet.totalAccounts",
        "10",
        "--miner.blockGasLimit",
        "30000000",
        "--logging.quiet",
    ]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def deploy_contracts(network: str, out: Path, **env: str) -> str:
    """`brownie run deploy` onto the chain of brownie network `network`; return its output.

    Writes the deployments file to `out`; `env` adds DCLOUD_* deploy parameters
    (the challenge window defaults to 30 s so tests can time-travel past it).
    """
    full_env = dict(os.environ, DCLOUD_DEPLOYMENTS=str(out), DCLOUD_CHALLENGE_WINDOW="30")
    full_env.update(env)
    proc = subprocess.run(
        [str(ROOT / "tools" / "brownie"), "run", "deploy", "--network", network],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@contextlib.contextmanager
def running_chain(kind: str) -> Iterator[str]:
    """Run a fresh chain of `kind` for the duration of the block; yield its RPC URL."""
    port = CHAINS[kind]["port"]
    if _port_open(port):
        raise RuntimeError(f"port {port} is busy: stop whatever listens there and rerun the tests")
    proc = subprocess.Popen(
        _command(kind, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _port_open(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited at start: {proc.stderr.read().decode()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not open port {port} within 30 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
