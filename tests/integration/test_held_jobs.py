"""Held jobs on a real chain: planned for a later hour, funded held, cancelled or started.

anvil, the marketplace (its own price series, in which one hour two hours ahead is far
cheaper than every other, so the planner's choice is known) and one provider agent in
real Docker. Two renters submit jobs that may start within four hours through the SDK:
both are planned for that hour and funded held. One renter cancels while held and gets
everything back; then the chain's clock is moved past the start and the other job is
accepted, run, verified, confirmed and paid.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from agents.devnet.network import Network, ProviderSpec
from agents.provider.store import JobStore
from marketplace.energy.sources import HOUR, BundledPriceSource, floor_hour
from protocol.escrow import JobStatus
from protocol.provider_api import RECEIVED
from protocol.schemas import JobSpec
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
DEAR, CHEAP = 120.0, 5.0


def cheap_hour_series(folder: Path, cheap: datetime) -> Path:
    """The bundled files with every price DEAR except in the hour `cheap` (all regions)."""
    data = resources.files("marketplace.energy") / "data"
    for name in ("regions.csv", "carbon.csv"):
        (folder / name).write_text((data / name).read_text())
    start, end = BundledPriceSource().period
    span = int((end - start) / HOUR)
    index = int((floor_hour(cheap) - start) / HOUR) % span
    rows = list(csv.DictReader((data / "prices.csv").read_text().splitlines()))
    stamps = sorted({r["timestamp"] for r in rows})
    with (folder / "prices.csv").open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        for row in rows:
            price = CHEAP if row["timestamp"] == stamps[index] else DEAR
            out.writerow({**row, "price_eur_mwh": price})
    return folder


@pytest.fixture(scope="module")
def net(docker_engine, job_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    cheap = floor_hour(datetime.now(UTC)) + 2 * HOUR
    series = cheap_hour_series(Path(tmp_path_factory.mktemp("series")), cheap)
    with running_chain("anvil") as url:
        deploy_contracts(CHAINS["anvil"]["network"], root / "deployments.json")
        network = Network(
            root=root,
            rpc_url=url,
            deployments=root / "deployments.json",
            market_env={"DCLOUD_ENERGY_SERIES_DIR": str(series)},
        )
        try:
            network.start_marketplace()
            network.add_provider(ProviderSpec("p-frankfurt", 1, 50.11, 8.68))
            network.cheap_hour = int(cheap.timestamp())  # type: ignore[attr-defined]
            yield network
        finally:
            network.close()


def spec(word: str) -> JobSpec:
    return JobSpec.model_validate(
        {
            "image": "dcloud/busybox:1",
            "command": ["sh", "-c", f"echo {word} > /output/word.txt; echo ran"],
            "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 16},
            "time_limit_s": 30,
            "max_price_wei": TOKEN,
            "origin": {"lat": 50.0, "lon": 8.0},
            "start_by": int(time.time() + 4 * 3600),
        }
    )


def wait_for(predicate, timeout=90.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_held_jobs_cancel_in_full_or_start_at_the_planned_hour(net: Network) -> None:
    provider = net.providers[0]
    escrow = net.escrow
    keeps, cancels = net.renter(7), net.renter(8)
    before = escrow.balance_of(cancels.address)

    kept_id = keeps.submit(spec("held"))
    cancelled_id = cancels.submit(spec("cancelled"))
    for renter, job_id in ((keeps, kept_id), (cancels, cancelled_id)):
        rec = renter.record(job_id)
        assert rec["start_at"] == net.cheap_hour  # type: ignore[attr-defined]
        assert rec["plan"]["saving_pct"] > 90 and rec["plan"]["km_added"] == 0
        assert escrow.contract.functions.startsAt(job_id).call() == rec["start_at"]
        job = escrow.job(job_id)
        assert job.status == JobStatus.FUNDED and job.accepted == 0

    # The provider keeps both with their start and accepts neither before it.
    store = JobStore(provider.home / "agent.db")
    for job_id in (kept_id, cancelled_id):
        held = wait_for(lambda j=job_id: store.get(j), what=f"job {job_id} at the provider")
        assert held.state == RECEIVED and held.start_at == net.cheap_hour  # type: ignore[attr-defined]
    time.sleep(3)  # several passes of the agent's held starter
    assert escrow.job(kept_id).accepted == 0

    # Cancelled while held: the whole deposit comes back.
    deposit = escrow.job(cancelled_id).price
    cancels.cancel(cancelled_id)
    assert escrow.job(cancelled_id).status == JobStatus.CANCELLED
    assert cancels.withdraw() == deposit
    assert escrow.balance_of(cancels.address) == before

    # The chain's clock reaches the start: the provider accepts, runs and commits.
    net.time_travel(net.cheap_hour - escrow.now() + 1)  # type: ignore[attr-defined]
    paid_before = escrow.balance_of(provider.address) + escrow.credit_of(provider.address)
    view = keeps.wait(kept_id, timeout_s=120)
    assert not view.closed
    result = keeps.result(kept_id, out_dir=net.root / "held-result")
    assert result.exit_code == 0
    assert (net.root / "held-result" / "outputs" / "word.txt").read_text() == "held\n"
    keeps.confirm(kept_id)
    assert escrow.job(kept_id).status == JobStatus.SETTLED
    wait_for(
        lambda: (
            escrow.balance_of(provider.address) + escrow.credit_of(provider.address) > paid_before
        ),
        what="the provider's pay",
    )
    # The cancelled one never ran; the provider closes its record at the start.
    closed = wait_for(
        lambda: (r := store.get(cancelled_id)) is not None and r.final and r,
        what="the cancelled job's record to close",
    )
    assert closed.result_hash is None
