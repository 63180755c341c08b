"""`dcloud devnet up`: the whole local network from nothing, a demo, and a clean stop.

Brings up, each as a child process with its log in ``<home>/logs``: the Docker engine
(``tools/dockerd.sh``, held for this process), a chain (anvil by default, Ganache 7 with
``--chain ganache``; its state kept in ``<home>``), the contracts (deployed once and
reused while the chain state has them), the marketplace with its dashboard, six provider
agents and eight storage nodes in real cities across several price regions, each with
its own key and stake. Then it runs demo jobs and stores a demo file, prints who ran
what where, for how much and at which energy level, and stays up until Ctrl-C (or
``dcloud devnet down``), which stops every process it started by PID.

``<home>/devnet.json`` records the running network's PIDs: a second ``up`` finds it
alive and does not start another one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from agents import keys
from agents.devnet.demo import RENTER_KEY, run_demo
from agents.devnet.localchain import (
    DEVNET_BLOCK_TIME_S,
    BlockTicker,
    contracts_fingerprint,
    deploy,
    docker_engine,
    start_chain,
)
from agents.devnet.network import (
    ANVIL_MNEMONIC,
    PASSWORD,
    TOKEN,
    Network,
    ProviderSpec,
    dev_account,
    operator_account,
)
from agents.devnet.procs import Proc, port_open, python, spawn, wait_http
from agents.errors import UserError
from protocol.deployments import connect, load_for
from protocol.errors import ProtocolError

STATE_FILE = "devnet.json"
CONTRACTS_FINGERPRINT = "contracts.sha256"  # of the sources the devnet was deployed from
MARKET_PORT = 8700
GATEWAY_PORT = 8790
SERVICE_GATEWAY_PORT = 8780  # services at http://NAME.apps.localhost:8780/
# A service down this long fails on the devnet (the contract default is 120 s): a demo
# failover then takes well under half a minute.
DEVNET_LEASE_GRACE_S = 10
CHAINS = {
    "anvil": {"port": 8545, "network": "dcloud-devnet", "mnemonic": None},
    # Ganache gets anvil's (valid BIP-39) mnemonic, so both chains have the same dev keys
    "ganache": {"port": 8546, "network": "dcloud-devnet-ganache", "mnemonic": None},
}
# Six providers across European price regions, eight storage nodes around the world.
PROVIDERS = [
    ("oslo", 59.91, 10.75),
    ("paris", 48.86, 2.35),
    ("frankfurt", 50.11, 8.68),
    ("madrid", 40.42, -3.70),
    ("warsaw", 52.23, 21.01),
    ("london", 51.51, -0.13),
]
NODES = [
    ("stockholm", 59.33, 18.07),
    ("rome", 41.90, 12.50),
    ("new-york", 40.71, -74.01),
    ("san-francisco", 37.77, -122.42),
    ("tokyo", 35.68, 139.69),
    ("sydney", -33.87, 151.21),
    ("singapore", 1.35, 103.82),
    ("sao-paulo", -23.55, -46.63),
]
NODE_KEYS = range(11, 19)
ACCOUNTS = 30


@dataclass
class Options:
    home: Path
    chain: str = "anvil"
    demo: bool = True
    stay: bool = True


def running(home: Path) -> dict[str, Any] | None:
    """The recorded network if any of its processes still runs."""
    try:
        state = json.loads((home / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    alive = [p for p in state.get("pids", {}).values() if _alive(int(p))]
    return state if alive else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(home: Path, console: Console) -> bool:
    """Stop every process a recorded network started (by PID); False if none ran."""
    state = running(home)
    if state is None:
        (home / STATE_FILE).unlink(missing_ok=True)
        return False
    owner = int(state.get("owner", 0))
    if owner and owner != os.getpid() and _alive(owner):
        os.kill(owner, signal.SIGTERM)  # the `up` process stops its children in order
        end = time.monotonic() + 60
        while _alive(owner) and time.monotonic() < end:
            time.sleep(0.2)
    for name, pid in reversed(list(state["pids"].items())):
        if _alive(int(pid)):
            console.print(f"stopping {name} (pid {pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGTERM)
    end = time.monotonic() + 20
    while any(_alive(int(p)) for p in state["pids"].values()) and time.monotonic() < end:
        time.sleep(0.2)
    for pid in state["pids"].values():
        if _alive(int(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)
    docker_engine("stop", holder=owner or os.getpid())
    (home / STATE_FILE).unlink(missing_ok=True)
    return True


class Devnet:
    def __init__(self, opts: Options, console: Console) -> None:
        self.opts = opts
        self.home = opts.home
        self.logs = self.home / "logs"
        self.console = console
        self.procs: list[Proc] = []
        self.net: Network | None = None
        self.ticker: BlockTicker | None = None
        self.stop = threading.Event()
        spec = CHAINS[opts.chain]
        self.port = int(spec["port"])  # type: ignore[call-overload]
        self.mnemonic = str(spec["mnemonic"] or ANVIL_MNEMONIC)
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.deployments = self.home / "deployments.json"

    # ------------------------------------------------------------------ up

    def up(self) -> None:
        if running(self.home) is not None:
            state = running(self.home) or {}
            self.console.print(
                f"a devnet is already running from {self.home} (marketplace "
                f"{state.get('market_url')}); stop it with `dcloud devnet down`"
            )
            return
        self._set_aside_stale_state()
        self.home.mkdir(parents=True, exist_ok=True)
        for port in (MARKET_PORT, SERVICE_GATEWAY_PORT):
            if port_open(port):
                raise UserError(f"port {port} is busy: stop what listens there first")
        try:
            with self._progress() as progress:
                self._step(
                    progress, "Docker engine", lambda: docker_engine("start", holder=os.getpid())
                )
                self._step(progress, f"chain ({self.opts.chain}, port {self.port})", self._chain)
                self._step(progress, "contracts", self._contracts)
                self._step(progress, "marketplace and dashboard", self._marketplace)
                self._step(progress, "6 provider agents (keys, stake, Docker)", self._providers)
                self._step(progress, "8 storage nodes", self._nodes)
                self._step(
                    progress,
                    f"service gateway (nginx, port {SERVICE_GATEWAY_PORT})",
                    self._service_gateway,
                )
            if self.opts.demo:
                self.demo()
            self._gateway()
            self._record()
            market = f"http://127.0.0.1:{MARKET_PORT}"
            self.console.print(
                f"\n[bold green]devnet up[/]: dashboard {market}/dashboard · API {market}/docs · "
                f"chain {self.rpc_url} · file gateway http://127.0.0.1:{GATEWAY_PORT} · "
                f"services http://NAME.apps.localhost:{SERVICE_GATEWAY_PORT}/ · "
                f"logs in {self.logs}"
            )
            if self.opts.stay:
                self.console.print("Ctrl-C (or `dcloud devnet down`) stops it; state is kept.")
                # Ctrl-C, `down` (SIGTERM) or a closed terminal all stop the network; set
                # explicitly, since a shell that starts us in the background ignores SIGINT
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, lambda *_: self.stop.set())
                with contextlib.suppress(KeyboardInterrupt):
                    while not self.stop.wait(0.5):
                        pass
        finally:
            self.teardown()

    def _set_aside_stale_state(self) -> None:
        """A devnet made from other contract sources (an older checkout) is moved aside, not
        resumed: its chain holds contracts this code may not speak to."""
        made = self.home / CONTRACTS_FINGERPRINT
        if not self.deployments.exists():
            return
        if made.exists() and made.read_text().strip() == contracts_fingerprint():
            return
        aside = self.home.with_name(f"{self.home.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        self.home.rename(aside)
        self.console.print(
            f"the devnet state in {self.home} was made from other contract sources; it is "
            f"kept in {aside} and a fresh devnet starts"
        )

    def _progress(self) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
        )

    def _step(self, progress: Progress, label: str, fn: Any) -> None:
        task = progress.add_task(label, total=1)
        fn()
        progress.update(task, completed=1, description=f"[green]✓[/] {label}")

    def _chain(self) -> None:
        state = self.home / ("anvil-state.json" if self.opts.chain == "anvil" else "ganache-db")
        if self.opts.chain == "ganache":
            state.mkdir(exist_ok=True)
        proc = start_chain(
            self.opts.chain,
            self.port,
            logs=self.logs,
            state=state,
            accounts=ACCOUNTS,
            mnemonic=self.mnemonic,
            block_time_s=DEVNET_BLOCK_TIME_S,
        )
        self.procs.append(proc)
        if self.opts.chain == "ganache":  # anvil mines at that interval by itself
            self.ticker = BlockTicker(self.rpc_url, DEVNET_BLOCK_TIME_S).start()

    def _contracts(self) -> None:
        w3 = connect(self.rpc_url)
        with contextlib.suppress(ProtocolError):
            d = load_for(w3, path=self.deployments)
            if w3.eth.get_code(d.contract(w3, "JobEscrow").address):
                return  # this chain state still holds them
        deploy(
            str(CHAINS[self.opts.chain]["network"]),
            self.deployments,
            logs=self.logs,
            DCLOUD_CHALLENGE_WINDOW="60",
            DCLOUD_LEASE_GRACE=str(DEVNET_LEASE_GRACE_S),
        )
        (self.home / CONTRACTS_FINGERPRINT).write_text(contracts_fingerprint() + "\n")

    def _marketplace(self) -> None:
        self.net = Network(
            root=self.home,
            rpc_url=self.rpc_url,
            deployments=self.deployments,
            mnemonic=self.mnemonic,
            heartbeat_s=2.0,
            poll_s=0.1,
            offline_after_s=8.0,
            market_port=MARKET_PORT,
        )
        self.net.start_marketplace()
        assert self.net.market is not None
        self.procs.append(self.net.market)

    def _providers(self) -> None:
        assert self.net is not None
        for i, (city, lat, lon) in enumerate(PROVIDERS):
            price = 10**12 * (1 + i % 3)
            p = self.net.add_provider(
                ProviderSpec(f"provider-{city}", i + 1, lat, lon, price_wei=price, cpu=1.0)
            )
            assert p.proc is not None
            self.procs.append(p.proc)

    def _nodes(self) -> None:
        from agents.storage.node.run import init_node

        assert self.net is not None
        for key, (city, lat, lon) in zip(NODE_KEYS, NODES, strict=True):
            where = self.home / "nodes" / city
            # staked like providers, so the node can take StorageEscrow deals and be audited
            self.net.stake(operator_account(key, self.mnemonic), 200 * TOKEN)
            if not (where / "node.json").exists():
                account = operator_account(key, self.mnemonic)
                keys.create(where / "keystore.json", PASSWORD, private_key=account.key.hex())
                init_node(
                    where,
                    password=PASSWORD,
                    quota_bytes=64 * 2**20,
                    lat=lat,
                    lon=lon,
                    marketplace=self.net.market_url,
                    heartbeat_s=2.0,
                    rpc_url=self.rpc_url,
                )
            env = {"DCLOUD_PASSWORD": PASSWORD, "DCLOUD_DEPLOYMENTS": str(self.deployments)}
            proc = spawn(
                f"node-{city}",
                python("-m", "agents", "node", "run", "--home", str(where)),
                logs=self.logs,
                env=env,
            )
            self.procs.append(proc)
            cfg = json.loads((where / "node.json").read_text())
            wait_http(proc, f"{cfg['endpoint'].rstrip('/')}/v1/health")

    def _gateway(self) -> None:
        """The renter's local file gateway, so the dashboard's storage page can use it."""
        home = self.home / "renter-files"
        if not (home / "key.json").exists():
            account = dev_account(RENTER_KEY, self.mnemonic)
            keys.create(home / "key.json", PASSWORD, private_key=account.key.hex())
        argv = python("-m", "agents", "file", "serve", "--home", str(home))
        argv += ["--marketplace", f"http://127.0.0.1:{MARKET_PORT}", "--k", "4", "--n", "8"]
        argv += ["--port", str(GATEWAY_PORT), "--health-every", "10"]
        proc = spawn("file-gateway", argv, logs=self.logs, env={"DCLOUD_PASSWORD": PASSWORD})
        self.procs.append(proc)
        wait_http(proc, f"http://127.0.0.1:{GATEWAY_PORT}/v1/info")

    def _service_gateway(self) -> None:
        """The ingress gateway: NAME.apps.localhost and /apps/NAME/ to where it runs now."""
        argv = python("-m", "agents", "gateway", "run", "--home", str(self.home / "gateway"))
        argv += ["--marketplace", f"http://127.0.0.1:{MARKET_PORT}"]
        argv += ["--port", str(SERVICE_GATEWAY_PORT), "--domain", "localhost"]
        proc = spawn("service-gateway", argv, logs=self.logs)
        self.procs.append(proc)
        wait_http(proc, f"http://127.0.0.1:{SERVICE_GATEWAY_PORT}/.well-known/dcloud-gateway")

    def _record(self) -> None:
        state = {
            "owner": os.getpid(),
            "chain": self.opts.chain,
            "rpc_url": self.rpc_url,
            "market_url": f"http://127.0.0.1:{MARKET_PORT}",
            "pids": {p.name: p.pid for p in self.procs},
            "started_at": time.time(),
        }
        (self.home / STATE_FILE).write_text(json.dumps(state, indent=2))

    # ------------------------------------------------------------------ demo

    def demo(self) -> None:
        assert self.net is not None
        run_demo(
            self.net,
            home=self.home,
            console=self.console,
            progress=self._progress,
            gateway_url=f"http://127.0.0.1:{SERVICE_GATEWAY_PORT}",
        )

    # ------------------------------------------------------------------ down

    def teardown(self) -> None:
        if self.net is not None:
            self.net.close()
        if self.ticker is not None:
            self.ticker.stop()
        for proc in reversed(self.procs):
            self.console.print(f"stopping {proc.name} (pid {proc.pid})")
            proc.stop()
        docker_engine("stop", holder=os.getpid())
        (self.home / STATE_FILE).unlink(missing_ok=True)
