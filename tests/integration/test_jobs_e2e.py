"""A job's whole life on a real chain in real containers, and the faults around it.

One anvil chain, one marketplace and three provider agents (real processes, real Docker)
for the module; renters are the chain's funded dev accounts driven through the SDK or the
`dcloud` CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from agents.devnet.network import PASSWORD, Network, ProviderSpec, dev_account
from agents.errors import RefusedError
from agents.provider.agent import ProviderAgent
from agents.provider.store import JobStore
from agents.renter import disputes
from protocol.escrow import JobStatus, ReplicaState, commitment
from protocol.schemas import JobSpec
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

BUSYBOX = "dcloud/busybox:1"
TOKEN = 10**18
# Three providers in one electricity region's neighbourhood (Frankfurt, Paris, Amsterdam).
PROVIDERS = [
    ProviderSpec("p-frankfurt", 1, 50.11, 8.68),
    ProviderSpec("p-paris", 2, 48.86, 2.35),
    ProviderSpec("p-amsterdam", 3, 52.37, 4.90),
]
RENTER = 7


@pytest.fixture(scope="module")
def net(docker_engine, job_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("net")
    with running_chain("anvil-e2e") as url:
        deploy_contracts(CHAINS["anvil-e2e"]["network"], root / "deployments.json")
        network = Network(root=root, rpc_url=url, deployments=root / "deployments.json")
        try:
            network.start_marketplace()
            for spec in PROVIDERS:
                network.add_provider(spec)
            yield network
        finally:
            network.close()


def spec(command, *, replicas=1, time_limit=30, memory_mb=64, regions=None, image=BUSYBOX):
    return JobSpec.model_validate(
        {
            "image": image,
            "command": command,
            "resources": {"cpu": 0.5, "memory_mb": memory_mb, "disk_mb": 16},
            "time_limit_s": time_limit,
            "max_price_wei": TOKEN,
            "replicas": replicas,
            "origin": {"lat": 50.0, "lon": 8.0},
            "regions": regions,
        }
    )


def provider_of(net, address):
    return next(p for p in net.providers if p.address == address)


def stake_of(net, address):
    return int(net.escrow.registry.functions.stakeOf(address).call()[0])


def wait_for(predicate, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_cli_job_runs_in_a_container_is_verified_and_pays_the_provider(net, tmp_path):
    home = tmp_path / "renter"
    env = dict(
        os.environ,
        DCLOUD_PASSWORD=PASSWORD,
        DCLOUD_PRIVATE_KEY=dev_account(RENTER).key.hex(),
    )
    cli = [sys.executable, "-m", "agents", "job"]
    init = [
        *cli,
        "init",
        "--home",
        str(home),
        "--marketplace",
        net.market_url,
        "--rpc",
        net.rpc_url,
        "--origin",
        "Frankfurt",
    ]
    # no deployments file: the marketplace says which contracts it follows
    done = subprocess.run(init, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chain 31337" in done.stdout
    (tmp_path / "words.txt").write_text("energy aware cloud\n")
    out = tmp_path / "result"
    submit = [
        *cli,
        "submit",
        "--home",
        str(home),
        "--image",
        BUSYBOX,
        "--cpu",
        "0.5",
        "--memory-mb",
        "64",
        "--time-limit",
        "30",
        "--max-price",
        "1",
        "--input",
        str(tmp_path / "words.txt"),
        "--out",
        str(out),
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < /input/words.txt > /output/upper.txt; echo done",
    ]
    before = {p.address: net.escrow.balance_of(p.address) for p in net.providers}
    proc = subprocess.run(
        submit, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified" in proc.stdout
    assert (out / "outputs" / "upper.txt").read_text() == "ENERGY AWARE CLOUD\n"
    assert (out / "logs.txt").read_text() == "done\n"
    result = json.loads((out / "result.json").read_text())
    job = net.escrow.job(result["job_id"])
    assert job.status == JobStatus.SETTLED
    # the provider's agent withdraws its pay: its token balance grows by price less fee
    fee = net.escrow.windows().fee_bps
    paid = job.price - job.price * fee // 10_000
    wait_for(
        lambda: net.escrow.balance_of(result["provider"]) == before[result["provider"]] + paid,
        what="the provider's payout",
    )
    status = subprocess.run(
        [*cli, "status", str(result["job_id"]), "--home", str(home)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0 and "settled" in status.stdout


def test_providers_keys_are_never_the_chains_unlocked_dev_accounts(net):
    # a renter choosing "dev account #N" in the dashboard must never act as a provider
    unlocked = set(net.escrow.w3.eth.accounts)
    assert unlocked and not unlocked & {p.address for p in net.providers}


def test_cli_refuses_a_malformed_spec_and_takes_no_funds(net, tmp_path):
    env = dict(os.environ, DCLOUD_PASSWORD=PASSWORD, DCLOUD_PRIVATE_KEY=dev_account(8).key.hex())
    home = tmp_path / "renter"
    base = [sys.executable, "-m", "agents", "job"]
    subprocess.run(
        [
            *base,
            "init",
            "--home",
            str(home),
            "--marketplace",
            net.market_url,
            "--rpc",
            net.rpc_url,
            "--deployments",
            str(net.deployments),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    before = net.escrow.balance_of(dev_account(8).address)
    bad = subprocess.run(
        [
            *base,
            "submit",
            "--home",
            str(home),
            "--image",
            BUSYBOX,
            "--cpu",
            "-1",
            "--time-limit",
            "10",
            "--max-price",
            "1",
            "--origin",
            "50,8",
            "--memory-mb",
            "64",
            "--",
            "true",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "resources.cpu" in bad.stderr and "Traceback" not in bad.stderr
    assert net.escrow.balance_of(dev_account(8).address) == before


def test_an_image_no_provider_holds_is_refused_before_paying(net):
    renter = net.renter(RENTER)
    before = net.escrow.balance_of(renter.address)
    with pytest.raises(RefusedError, match="image"):
        renter.submit(spec(["true"], image="dcloud/not-here:1"))
    assert net.escrow.balance_of(renter.address) == before


def test_a_container_over_its_limits_is_a_reported_failure_not_a_hang(net):
    renter = net.renter(RENTER)
    hog = spec(["sh", "-c", "x=a; while true; do x=$x$x; done"], memory_mb=16, time_limit=20)
    job_id = renter.submit(hog)
    renter.wait(job_id, timeout_s=120)
    res = renter.result(job_id)
    assert res.exit_code == 137
    assert "memory" in res.detail or "OOM" in res.detail
    sleeper = spec(["sleep", "60"], time_limit=2)
    job_id = renter.submit(sleeper)
    renter.wait(job_id, timeout_s=120)
    res = renter.result(job_id)
    assert res.exit_code != 0 and "time limit" in res.detail
    renter.confirm(job_id)
    assert net.escrow.job(job_id).status == JobStatus.SETTLED


def test_marketplace_restart_mid_flow_loses_nothing(net):
    renter = net.renter(RENTER)
    job_id = renter.submit(spec(["sh", "-c", "sleep 3; echo survived > /output/out.txt"]))
    net.stop_marketplace(sig=signal.SIGKILL)
    net.start_marketplace()
    renter.wait(job_id, timeout_s=120)
    assert renter.result(job_id).files["out.txt"] == b"survived\n"
    renter.confirm(job_id)
    marketplace_id = renter.record(job_id)["marketplace_id"]

    def settled():
        r = renter.market.get(f"/v1/jobs/{marketplace_id}")
        return r["chain"] and r["chain"]["state"] == "settled"

    wait_for(settled, what="the restarted marketplace to index the settlement")


def test_three_replicas_one_wrong_result_is_slashed_and_the_renter_gets_the_majority(net):
    cheat = net.add_provider(ProviderSpec("p-cheat", 4, 50.94, 6.96, fault="wrong-result"))
    # only the cheat and two honest providers can be chosen: stop the third
    honest_off = net.providers[2]
    net.stop_provider(honest_off)
    net.wait_registered(honest_off, online=False)
    try:
        renter = net.renter(RENTER)
        job_id = renter.submit(spec(["sh", "-c", "echo 42 > /output/answer.txt"], replicas=3))
        chosen = {a["provider"] for a in renter.record(job_id)["assignments"]}
        assert cheat.address in chosen
        stakes = {a: stake_of(net, a) for a in chosen}
        renter.wait(job_id, timeout_s=120)
        res = renter.result(job_id)
        assert res.files == {"answer.txt": b"42\n"} and res.provider != cheat.address
        renter.confirm(job_id)
        job = net.escrow.job(job_id)
        states = {r.provider: r.state for r in net.escrow.replicas(job)}
        assert states[cheat.address] == ReplicaState.SLASHED
        assert stake_of(net, cheat.address) == stakes[cheat.address] - job.collateral
        for honest in chosen - {cheat.address}:
            assert states[honest] == ReplicaState.PAID
            assert stake_of(net, honest) == stakes[honest]
    finally:
        net.stop_provider(cheat)
        net.wait_registered(cheat, online=False)
        net.start_provider(honest_off)


def test_dispute_of_a_wrong_single_result_slashes_it_with_two_drawn_verifiers(net, tmp_path):
    """A cheating sole provider commits a self-consistent wrong result; the renter cannot
    tell from the files, disputes, and the two verifiers the marketplace draws outvote it."""
    cheat = net.add_provider(ProviderSpec("p-cheat-solo", 5, 50.0, 8.0, fault="wrong-result"))
    honest = list(net.providers[:3])
    for p in honest:  # only the cheat can take the job itself
        net.stop_provider(p)
        net.wait_registered(p, online=False)
    try:
        renter = net.renter(RENTER)
        job_id = renter.submit(spec(["sh", "-c", "echo 42 > /output/answer.txt"]))
        assert renter.record(job_id)["assignments"][0]["provider"] == cheat.address
        renter.wait(job_id, timeout_s=120)
        job = net.escrow.job(job_id)
        original = net.escrow.replicas(job)[0]
        assert job.hidden and original.state == ReplicaState.COMMITTED
        # nothing on chain tells a verifier what the original's result is
        lied = renter.result(job_id)
        assert "tampered.txt" in lied.files
        digest = bytes.fromhex(lied.result_hash[2:])
        assert original.hash == commitment(digest, lied.salt, cheat.address) != digest
        for p in honest:
            net.start_provider(p)
            net.wait_registered(p)
        stake_before = stake_of(net, cheat.address)
        verifiers = disputes.dispute(renter, job_id)
        drawn = {v["provider"] for v in verifiers}
        assert len(drawn) == 2 and cheat.address not in drawn and renter.address not in drawn
        assert drawn <= {p.address for p in honest}
        renter.wait(job_id, timeout_s=180)
        res = renter.result(job_id, out_dir=tmp_path / "verdict")
        assert res.files == {"answer.txt": b"42\n"} and res.provider in drawn
        renter.confirm(job_id)
        job = net.escrow.job(job_id)
        states = {r.provider: r.state for r in net.escrow.replicas(job)}
        assert states[cheat.address] == ReplicaState.SLASHED
        assert all(states[v] == ReplicaState.PAID for v in drawn)
        assert stake_of(net, cheat.address) == stake_before - job.collateral
    finally:
        net.stop_provider(cheat)
        net.wait_registered(cheat, online=False)
        for p in honest:
            if p.proc is None or not p.proc.alive():
                net.start_provider(p)


def test_provider_killed_mid_job_renter_claims_no_show_and_restart_does_not_rerun(net):
    renter = net.renter(RENTER)
    job_id = renter.submit(spec(["sh", "-c", "sleep 25; echo late > /output/x"], time_limit=30))
    provider = provider_of(net, renter.record(job_id)["assignments"][0]["provider"])
    store_path = provider.home / "agent.db"
    wait_for(
        lambda: (
            (JobStore(store_path).get(job_id) or None)
            and JobStore(store_path).get(job_id).state == "running"
        ),
        what="the container to start",
    )
    net.stop_provider(provider, sig=signal.SIGKILL)
    stake_before = stake_of(net, provider.address)
    balance_before = net.escrow.balance_of(renter.address)
    job = net.escrow.job(job_id)
    net.time_travel(job.deadline - net.escrow.now() + 1)
    credit_before = net.escrow.credit_of(renter.address)
    renter.claim_no_show(job_id)
    refunded = net.escrow.credit_of(renter.address) - credit_before
    renter.withdraw()
    job = net.escrow.job(job_id)
    assert job.status == JobStatus.SETTLED
    assert stake_of(net, provider.address) == stake_before - job.collateral
    # the deposit comes back as escrow credit; the slashed collateral (less the
    # treasury's share) is paid to the renter by the registry directly
    share_bps = int(net.escrow.registry.functions.treasury().call()[1])
    to_renter = job.collateral - job.collateral * share_bps // 10_000
    assert refunded == job.price
    assert net.escrow.balance_of(renter.address) == (
        balance_before + credit_before + refunded + to_renter
    )

    net.start_provider(provider)
    wait_for(
        lambda: JobStore(store_path).get(job_id).state == "settled", what="the restart to settle"
    )
    rec = JobStore(store_path).get(job_id)
    assert rec.detail.startswith("slashed") and rec.result_hash is None  # never re-run
    import docker

    client = docker.from_env()
    key = f"31337-{net.escrow.address[2:10].lower()}-{job_id}"
    assert not client.containers.list(all=True, filters={"label": f"dcloud.job={key}"})
    with pytest.raises(RefusedError):
        renter.claim_no_show(job_id)  # no double claim


def test_the_funding_watcher_finds_a_job_only_at_the_provider_it_names(net):
    renter = net.renter(RENTER)
    start = net.escrow.w3.eth.block_number + 1
    job_id = renter.submit(spec(["sh", "-c", "echo watched > /output/out.txt"]))
    end = net.escrow.w3.eth.block_number
    named = renter.view(job_id, ask_providers=False).replicas[0].provider

    def found_by(address):
        agent = SimpleNamespace(escrow=net.escrow, wallet=SimpleNamespace(address=address))
        return ProviderAgent._funded_here(agent, start, end)

    assert found_by(named) == [(job_id, renter.address)]
    for other in (p.address for p in net.providers if p.address != named):
        assert found_by(other) == []
    renter.wait(job_id, timeout_s=120)
    renter.confirm(job_id)
