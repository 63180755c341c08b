"""`dcloud provider`: lend a machine's CPU, memory and disk to renters' jobs."""

from __future__ import annotations

import getpass
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agents import config as files
from agents import keys
from agents.errors import UserError
from agents.network import open_deployment
from agents.origin import parse_origin
from agents.provider.config import CONFIG_FILE, ProviderConfig
from agents.units import fmt_tokens, parse_tokens
from protocol.deployments import connect
from protocol.logs import configure_logging
from protocol.schemas import Location

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

Home = Annotated[
    Path | None, typer.Option("--home", help="agent folder (default ~/.dcloud/provider)")
]


def _home(home: Path | None) -> Path:
    return files.home("provider", home)


def _config(home: Path) -> ProviderConfig:
    return files.load(home / CONFIG_FILE, ProviderConfig, init_hint="dcloud provider init")


def _password(confirm: bool = False) -> str:
    pw = os.environ.get(keys.PASSWORD_ENV)
    if pw is not None:
        return pw
    pw = getpass.getpass("keystore password: ")
    if confirm and getpass.getpass("again: ") != pw:
        raise UserError("the passwords differ; run the command again")
    return pw


@app.command()
def init(
    marketplace: Annotated[str, typer.Option(help="marketplace URL")] = "http://127.0.0.1:8700",
    rpc: Annotated[str, typer.Option(help="Ethereum JSON-RPC URL")] = "http://127.0.0.1:8545",
    endpoint: Annotated[str | None, typer.Option(help="URL renters reach this agent at")] = None,
    port: Annotated[int, typer.Option(help="port the agent listens on")] = 8800,
    host: Annotated[str, typer.Option(help="address the agent listens on")] = "127.0.0.1",
    location: Annotated[
        str | None,
        typer.Option(help="where this machine is: lat,lon or a city, e.g. Munich"),
    ] = None,
    lat: Annotated[float | None, typer.Option(min=-90, max=90, help="or give lat")] = None,
    lon: Annotated[float | None, typer.Option(min=-180, max=180, help="and lon")] = None,
    region: Annotated[
        str | None, typer.Option(help="electricity region (default: nearest)")
    ] = None,
    cpu: Annotated[float, typer.Option(help="CPU cores lent")] = 1.0,
    memory_mb: Annotated[int, typer.Option(help="memory lent, MB")] = 1024,
    gpu: Annotated[int, typer.Option(help="GPUs lent")] = 0,
    disk_mb: Annotated[int, typer.Option(help="disk lent for job outputs, MB")] = 1024,
    price_wei: Annotated[int, typer.Option(help="token wei per CPU-core-second")] = 10**12,
    images: Annotated[
        str, typer.Option(help="comma-separated images offered")
    ] = "dcloud/busybox:1,dcloud/python:3.11",
    allow_network: Annotated[bool, typer.Option(help="let jobs that ask use the network")] = False,
    image_cache_mb: Annotated[
        int, typer.Option(help="disk for renters' own images this agent pulls, MB")
    ] = 10240,
    max_image_mb: Annotated[
        int, typer.Option(help="the largest renter's image it pulls, MB (0: none)")
    ] = 2048,
    deployments: Annotated[
        str | None,
        typer.Option(help="pin a deployments file instead of the marketplace's addresses"),
    ] = None,
    private_key: Annotated[
        str | None,
        typer.Option(help="import this key instead of a new one", envvar="DCLOUD_PRIVATE_KEY"),
    ] = None,
    home: Home = None,
) -> None:
    """Create this provider's key (encrypted keystore) and its config.

    The marketplace says which chain and contracts it follows; they are checked against
    the chain at --rpc first.
    """
    folder = _home(home)
    if (folder / CONFIG_FILE).exists():
        raise UserError(f"{folder / CONFIG_FILE} exists; this provider is set up already")
    where = _where(location, lat, lon)
    try:
        cfg = ProviderConfig.model_validate(
            {
                "marketplace_url": marketplace,
                "rpc_url": rpc,
                "deployments": deployments,
                "endpoint": endpoint or f"http://{host}:{port}",
                "listen_host": host,
                "listen_port": port,
                "location": where.model_dump(),
                "region": region,
                "caps": {"cpu": cpu, "memory_mb": memory_mb, "gpu": gpu, "disk_mb": disk_mb},
                "price_wei": price_wei,
                "images": [i.strip() for i in images.split(",") if i.strip()],
                "allow_network": allow_network,
                "image_cache_mb": image_cache_mb,
                "max_image_mb": max_image_mb,
            }
        )
    except ValueError as exc:
        raise UserError(f"invalid option: {exc}") from None
    w3 = connect(cfg.rpc_url)
    with console.status(f"asking {cfg.marketplace_url} which contracts it follows"):
        d = open_deployment(
            w3, marketplace_url=cfg.marketplace_url, deployments=deployments, cache_dir=folder
        )
    account = keys.create(cfg.keystore(folder), _password(confirm=True), private_key=private_key)
    files.save(folder / CONFIG_FILE, cfg)
    console.print(f"chain {d.chain_id}, JobEscrow {d.contracts['JobEscrow'].address}")
    console.print(f"provider [bold]{account.address}[/] set up in {folder}")
    console.print("next: get tokens, then `dcloud provider stake 100` and `dcloud provider run`")


def _where(location: str | None, lat: float | None, lon: float | None) -> Location:
    if location is not None:
        return parse_origin(location, option="--location")
    if lat is None or lon is None:
        raise UserError(
            "where is this machine? pass --location CITY (e.g. Munich) or --lat and --lon; "
            "renters are matched to nearby providers"
        )
    return Location(lat=lat, lon=lon)


def _connect(home: Path | None):  # type: ignore[no-untyped-def]
    from agents.provider.agent import open_escrow
    from agents.wallet import Wallet

    folder = _home(home)
    cfg = _config(folder)
    account = keys.load(cfg.keystore(folder), _password())
    escrow = open_escrow(cfg, folder)
    wallet = Wallet(escrow.w3, account)
    wallet.learn_errors(escrow.abis())
    return folder, cfg, escrow, wallet


@app.command()
def stake(
    amount: Annotated[str, typer.Argument(help="tokens to stake, e.g. 100")], home: Home = None
) -> None:
    """Stake tokens in the registry (a provider needs the minimum stake to be matched)."""
    _, _, escrow, wallet = _connect(home)
    wei = parse_tokens(amount)
    have = escrow.balance_of(wallet.address)
    if have < wei:
        raise UserError(f"you hold {fmt_tokens(have)}; staking {fmt_tokens(wei)} needs more tokens")
    with console.status("approving and staking"):
        wallet.transact(escrow.token.functions.approve(escrow.registry.address, wei))
        wallet.transact(escrow.registry.functions.stake(wei))
    console.print(f"staked {fmt_tokens(wei)}")


@app.command()
def unstake(
    amount: Annotated[str, typer.Argument(help="tokens to unstake")], home: Home = None
) -> None:
    """Start unbonding stake (withdraw it with `withdraw --stake` after the delay)."""
    _, _, escrow, wallet = _connect(home)
    wei = parse_tokens(amount)
    wallet.transact(escrow.registry.functions.requestUnstake(wei))
    delay = int(escrow.registry.functions.unbondingDelay().call())
    console.print(
        f"unbonding {fmt_tokens(wei)}; withdraw it after {delay} s with `withdraw --stake`"
    )


@app.command()
def withdraw(
    stake_: Annotated[
        bool, typer.Option("--stake", help="withdraw unbonded stake instead")
    ] = False,
    home: Home = None,
) -> None:
    """Withdraw earnings from the escrows, jobs' and services' (or unbonded stake with --stake)."""
    from protocol.leases import Leases

    _, _, escrow, wallet = _connect(home)
    if stake_:
        wallet.transact(escrow.registry.functions.withdrawUnstaked())
        console.print("unbonded stake withdrawn")
        return
    leases = Leases(escrow.w3, escrow.deployment)
    wallet.learn_errors([dict(i) for i in leases.contract.abi])
    total = 0
    for contract in (escrow.contract, leases.contract):
        credit = int(contract.functions.creditOf(wallet.address).call())
        if credit:
            wallet.transact(contract.functions.withdraw())
            total += credit
    console.print(f"withdrew {fmt_tokens(total)}" if total else "no earnings waiting")


@app.command()
def status(home: Home = None) -> None:
    """Stake, collateral locked, earnings, recent jobs, services and pulled images."""
    from agents.provider.images.cache import ImageStore
    from agents.provider.lease_store import LeaseStore
    from agents.provider.services.store import ServiceStore
    from agents.provider.store import JobStore
    from protocol.leases import Leases

    folder, _cfg, escrow, wallet = _connect(home)
    staked, locked, unbonding, ready = escrow.registry.functions.stakeOf(wallet.address).call()
    active = escrow.registry.functions.isActive(wallet.address).call()
    console.print(
        f"provider [bold]{wallet.address}[/] ({'active' if active else 'NOT active: stake more'})"
    )
    console.print(
        f"stake {fmt_tokens(staked)} · locked {fmt_tokens(locked)} · "
        f"unbonding {fmt_tokens(unbonding)}" + (f" (ready at {ready})" if unbonding else "")
    )
    lease_credit = Leases(escrow.w3, escrow.deployment).credit_of(wallet.address)
    console.print(
        f"earnings waiting {fmt_tokens(escrow.credit_of(wallet.address))} (jobs) · "
        f"{fmt_tokens(lease_credit)} (services) · "
        f"wallet {fmt_tokens(escrow.balance_of(wallet.address))}"
    )
    store = JobStore(folder / "agent.db")
    table = Table("job", "state", "detail", "exit", title="jobs")
    for rec in store.all(limit=20):
        table.add_row(
            str(rec.chain_job_id), rec.state, rec.detail, str(rec.run.get("exit_code", ""))
        )
    console.print(table)
    leases, services = LeaseStore(folder / "leases.db"), ServiceStore(folder / "services.db")
    table = Table("service", "lease", "state", "port", "restarts", "uptime", "detail")
    table.title = "services"
    for lease in leases.all(limit=20):
        srv = services.get(lease.key) if lease.live else None
        state = srv.state if srv else lease.state
        port = str(srv.host_port) if srv else ""
        restarts = str(srv.restarts) if srv else ""
        uptime = f"{srv.uptime():.0f} s" if srv else ""
        detail = (srv.last_error if srv else "") or lease.detail
        table.add_row(lease.name, str(lease.lease_id), state, port, restarts, uptime, detail)
    console.print(table)
    leases.close()
    services.close()
    pulled = ImageStore(folder / "images.db")
    table = Table("image", "digest", "MB", "last used", title="renters' images pulled")
    for image in pulled.all()[:20]:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(image.last_used))
        size = f"{image.bytes / 2**20:.1f}"
        table.add_row(image.ref.split("@")[0], image.digest[:19], size, used)
    console.print(table)
    pulled.close()


@app.command()
def run(home: Home = None) -> None:
    """Run the agent: heartbeats, jobs in Docker, commits, reveals, payouts (Ctrl-C stops)."""
    from agents.provider.agent import ProviderAgent

    configure_logging()
    folder = _home(home)
    cfg = _config(folder)
    account = keys.load(cfg.keystore(folder), _password())
    agent = ProviderAgent(home=folder, cfg=cfg, account=account)
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    agent.start()
    console.print(
        f"provider {account.address} serving {cfg.endpoint} (Ctrl-C stops)", style="green"
    )
    try:
        agent.wait()
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
