"""Failover: from killing a service's provider agent to the first 200 through its name again.

Runs inside :func:`bench.servicedeploy.measure`'s network (anvil, the marketplace with its
prober and watchers, provider agents, the nginx gateway), with the devnet's grace period
(``agents.devnet.up.DEVNET_LEASE_GRACE_S``) and its prober interval. Each run deploys a
site, waits until the lease is reported serving on chain, SIGKILLs the agent of the
provider serving it, and times until the gateway answers 200 for the same Host name from
the lease the failover opened (the watchers see it down, post quorum-signed down reports,
the lease fails past the grace period, the marketplace moves it, the new provider starts
and accepts, the prober reports it serving, the gateway follows the route). The killed
agent is started again before the next run.

Row ``failover``: ``p50_s``/``p99_s`` over the runs (target <= 30 s on the devnet), and
``gas_per_report``: the gas of the marketplace's ``reportDown`` transactions over the
reports they counted (one lease per batch here; the gas bench has a batch of 40).
"""

from __future__ import annotations

import signal
import statistics
import time
from typing import Any

import httpx
from web3.logs import DISCARD

from agents.devnet.network import Network
from agents.service import Services
from protocol.leases import Leases
from protocol.services import ServiceSpec

TIMEOUT_S = 120.0


def measure(
    net: Network, sdk: Services, gateway_port: int, spec: ServiceSpec, runs: int
) -> dict[str, Any]:
    """The ``failover`` row: `runs` kills of the provider serving a fresh copy of `spec`
    (without inputs, which a failover cannot carry)."""
    leases = Leases(net.escrow.w3, net.escrow.deployment)
    times: list[float] = []
    gas: list[float] = []
    for i in range(runs):
        seconds, used = _one(net, sdk, leases, gateway_port, spec, f"failover-{i}")
        times.append(seconds)
        gas.extend(used)
    ordered = sorted(times)
    return {
        "metric": "failover",
        "runs": runs,
        "p50_s": round(statistics.median(ordered), 3),
        "p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "gas_per_report": round(statistics.mean(gas)) if gas else None,
    }


def _one(
    net: Network, sdk: Services, leases: Leases, gateway_port: int, spec: ServiceSpec, name: str
) -> tuple[float, list[float]]:
    """Seconds from the kill to the first 200 by name; gas per report of its down reports."""
    command = ["python3", "-m", "http.server", str(spec.port), "--directory", "/tmp"]
    up = sdk.deploy(
        spec.model_copy(update={"name": name, "inputs": [], "command": command}), deposit=10**18
    )
    _wait(lambda: leases.lease(up.lease_id).serving_at, "the serving report")
    dead = next(p for p in net.providers if p.address == up.provider)
    url = f"http://127.0.0.1:{gateway_port}/"
    host = {"host": f"{name}.apps.localhost:{gateway_port}"}
    t0 = time.perf_counter()
    net.stop_provider(dead, sig=signal.SIGKILL)

    def back() -> bool:
        moved = [new for old, new, _ in leases.failovers() if old == up.lease_id]
        return bool(moved) and _answers(url, host)

    _wait(back, "the name answering from the new provider", every=0.05)
    seconds = time.perf_counter() - t0
    used = _gas_per_report(net, leases, up.lease_id)
    net.start_provider(dead)
    sdk.stop(name)
    return seconds, used


def _answers(url: str, headers: dict[str, str]) -> bool:
    """A 200 through the gateway (the killed provider cannot answer: this is the new one)."""
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _gas_per_report(net: Network, leases: Leases, lease_id: int) -> list[float]:
    """Gas per counted report of each reportDown transaction that counted `lease_id`."""
    w3 = net.escrow.w3
    logs = leases.contract.events.LeaseDown().get_logs(
        from_block=net.escrow.deployment.deployed_at_block, argument_filters={"leaseId": lease_id}
    )
    out = []
    for tx in {log["transactionHash"] for log in logs}:
        receipt = w3.eth.get_transaction_receipt(tx)
        counted = len(leases.contract.events.LeaseDown().process_receipt(receipt, errors=DISCARD))
        out.append(int(receipt["gasUsed"]) / max(1, counted))
    return out


def _wait(check: Any, what: str, *, every: float = 0.25) -> Any:
    end = time.monotonic() + TIMEOUT_S
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise RuntimeError(f"timed out after {TIMEOUT_S:.0f} s waiting for {what}")
