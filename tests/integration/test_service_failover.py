"""A provider dies under a live service: the marketplace's watchers see it down and post it
on chain, the lease stops accruing, fails past the grace period, and the service comes
back on the other provider under the same name, paid from the same deposit; the money is
checked to the wei. Real chain (anvil), marketplace, two provider agents (real Docker)
and the ingress gateway (real nginx)."""

from __future__ import annotations

import hashlib
import json
import signal
import time

import httpx
import pytest

from agents.devnet.network import Network, ProviderSpec, dev_account
from agents.devnet.procs import python, spawn
from agents.errors import RefusedError
from agents.ingress import Nginx
from protocol import provider_api as api
from protocol import purposes
from protocol.leases import DEV_WATCHER, DEV_WATCHER_KEY, EndReason, Leases, LeaseStatus
from protocol.services import ServiceSpec
from protocol.signing import sign_request
from tests.agents.storage.network import Node
from tests.integration.services_net import gateway_for, service_network, services_of

pytestmark = pytest.mark.integration

RENTER, SOLO_RENTER = 7, 9
GRACE_S = 6
RATE = 5 * 10**11  # 10**12 wei per CPU-second, times 0.5 CPU
DEPOSIT = 10**18
SLASH_BPS = 5000


@pytest.fixture(scope="module")
def net(docker_engine, job_images, tmp_path_factory):
    providers = [
        ProviderSpec("p-frankfurt", 1, 50.11, 8.68),
        ProviderSpec("p-paris", 2, 48.86, 2.35),
    ]
    root = tmp_path_factory.mktemp("failover")
    with service_network(root, providers, DCLOUD_LEASE_GRACE=str(GRACE_S)) as network:
        yield network


@pytest.fixture(scope="module")
def gateway(net, tmp_path_factory):
    with gateway_for(net.market_url, tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture(scope="module")
def sdk(net, gateway, tmp_path_factory):
    with services_of(net, RENTER, tmp_path_factory.mktemp("renter"), gateway) as services:
        yield services


PAGE = b"<h1>still here</h1>\n"


# The site with a state: at its first start it copies its page from /input and notes when
# it was born in /data, then serves /data; snapshots carry /data to the next provider.
SITE = """
import os, shutil, time, functools, http.server
if not os.path.exists("/data/born"):
    shutil.copy("/input/index.html", "/data/index.html")
    with open("/data/born.tmp", "w") as fh:
        fh.write(str(time.time_ns()))
    os.rename("/data/born.tmp", "/data/born")
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/data")
http.server.ThreadingHTTPServer(("", 8000), handler).serve_forever()
"""


def spec(name: str, *, page: bool = False) -> ServiceSpec:
    """With `page`: the site above, its page an input file (its failover copy is left at
    the marketplace), /data snapshotted every 5 s; else an empty folder served."""
    inputs = [{"path": "index.html", "size": len(PAGE), "sha256": hashlib.sha256(PAGE).hexdigest()}]
    command = ["python3", "-c", SITE] if page else ["python3", "-m", "http.server", "8000"]
    return ServiceSpec.model_validate(
        {
            "name": name,
            "image": "dcloud/python:3.11",
            "command": command + ([] if page else ["--directory", "/tmp"]),
            "snapshot_s": 5 if page else None,
            "inputs": inputs if page else [],
            "port": 8000,
            "health": {"interval_s": 1, "start_period_s": 5},
            "resources": {"cpu": 0.5, "memory_mb": 128, "disk_mb": 16},
            "max_rate_wei_per_s": 10**12,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )


def wait_for(what: str, check, timeout: float = 90.0, every: float = 0.25):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def answers(gateway: Nginx, name: str) -> bool:
    """Whether `name` answers 200 through the gateway by its host name (as a browser
    asks for NAME.apps.localhost; sent as a Host header, no DNS needed here)."""
    host = f"{name}.apps.localhost:{gateway.url.rsplit(':', 1)[1]}"
    try:
        return httpx.get(f"{gateway.url}/", headers={"Host": host}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_page_comes_back_with_the_service(failover, gateway):
    """The renter's input file came with the failover (its copy at the marketplace)."""
    assert httpx.get(f"{gateway.url}/apps/web/index.html").content == PAGE


def test_data_comes_back_from_the_newest_snapshot(failover, gateway):
    """/data was restored on the new provider before the site started: it kept its birth
    note instead of writing a new one."""
    assert born(gateway) == failover["born"]


@pytest.fixture(scope="module")
def solo(net, gateway, tmp_path_factory):
    """A second renter, whose service agreed to no failover."""
    with services_of(net, SOLO_RENTER, tmp_path_factory.mktemp("solo"), gateway) as services:
        yield services


@pytest.fixture(scope="module")
def watcher(net, gateway):
    """`dcloud watch run`, an independent watcher looking through the gateway (the dev
    watcher's key; the marketplace holds it too on a devnet, so its co-signatures are
    accepted and not needed)."""
    proc = spawn(
        "watcher",
        python("-m", "agents", "watch", "run", "--marketplace", net.market_url,
               "--gateway", gateway.url, "--interval", "0.5"),
        logs=net.logs,
        env={"DCLOUD_WATCHER_KEY": DEV_WATCHER_KEY},
    )  # fmt: skip
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def storage(net, tmp_path_factory):
    """Four storage nodes on the marketplace: where snapshots of /data go."""
    folder = tmp_path_factory.mktemp("storage")
    places = [(59.33, 18.07), (41.90, 12.50), (40.71, -74.0), (35.68, 139.69)]
    nodes = [
        Node(folder / f"node{i}", name=f"failover-node-{i}", market=net.market_url,
             quota=50 * 10**6, place=place)
        for i, place in enumerate(places)
    ]  # fmt: skip
    for node in nodes:
        node.start()
    try:
        for node in nodes:
            node.wait_ready()
        wait_for("the nodes registered", lambda: len(storage_nodes(net)) >= len(nodes))
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def storage_nodes(net: Network) -> list[dict[str, object]]:
    items: list[dict[str, object]] = httpx.get(f"{net.market_url}/v1/storage/nodes").json()["items"]
    return items


def born(gateway: Nginx) -> str:
    return httpx.get(f"{gateway.url}/apps/web/born", timeout=5).text


@pytest.fixture(scope="module")
def failover(net, sdk, solo, gateway, watcher, storage):
    """Deploy, wait until it is reported serving, kill its provider's agent, wait until
    the name answers from the other provider. What each step saw."""
    leases = Leases(net.escrow.w3, net.escrow.deployment)
    balance_before = net.escrow.balance_of(sdk.address)
    solo_before = net.escrow.balance_of(solo.address)
    up = sdk.deploy(spec("web", page=True), {"index.html": PAGE}, deposit=DEPOSIT)
    alone = solo.deploy(spec("solo"), deposit=DEPOSIT, failover=False)
    assert alone.provider == up.provider, "both services should share the provider killed"
    old_id = up.lease_id
    for lease_id in (old_id, alone.lease_id):
        wait_for("the serving report", lambda i=lease_id: leases.lease(i).serving_at)
    assert leases.failover_of(old_id)[0] == 10**12  # the cap: the spec's max rate
    assert leases.failover_of(alone.lease_id)[0] == 0
    first = wait_for("the site's birth note", lambda: answers(gateway, "web") and born(gateway))

    def snapshot_taken() -> bool:
        at = httpx.get(f"{net.market_url}/v1/services/web").json()["snapshot_at"]
        return at is not None and at > float(first) / 1e9

    wait_for("a snapshot of /data after the birth note", snapshot_taken)
    dead = next(p for p in net.providers if p.address == up.provider)
    alive = next(p for p in net.providers if p.address != up.provider)
    killed_at = time.monotonic()
    net.stop_provider(dead, sig=signal.SIGKILL)
    wait_for("the failure on chain", lambda: leases.lease(old_id).failed_at)
    moved = wait_for("the failover", lambda: leases.failovers())
    new_id = next(new for old, new, _ in moved if old == old_id)

    def back() -> bool:
        market = httpx.get(f"{net.market_url}/v1/services/web", timeout=2).json()
        return market.get("lease_id") == new_id and answers(gateway, "web")

    wait_for("the same URL answering from the new provider", back)
    seconds = time.monotonic() - killed_at
    yield {
        "leases": leases,
        "up": up,
        "old": old_id,
        "new": new_id,
        "dead": dead,
        "alive": alive,
        "seconds": seconds,
        "balance_before": balance_before,
        "solo": alone,
        "born": first,
        "solo_before": solo_before,
    }


def test_the_same_url_answers_from_the_other_provider(failover, net, gateway):
    f = failover
    new = f["leases"].lease(f["new"])
    assert new.provider == f["alive"].address
    assert new.status == LeaseStatus.RUNNING and new.serving_at > 0

    def serving() -> dict[str, object] | None:  # once the indexer saw LeaseServing
        market: dict[str, object] = httpx.get(f"{net.market_url}/v1/services/web").json()
        return market if market["status"] == "serving" else None

    market = wait_for("the marketplace to follow the serving report", serving)
    assert market["provider"] == f["alive"].address and market["failover_from"] == f["old"]
    assert answers(gateway, "web")
    assert httpx.get(f["up"].path_url).status_code == 200


def test_only_the_owner_leaves_inputs_and_only_the_specs(failover, net, sdk, solo):
    payload = {"name": "web", "lease_id": failover["new"], "inputs": {"index.html": "aGk="}}
    with pytest.raises(RefusedError, match="does not match its size and sha256"):
        sdk.market.post_signed(
            "/v1/services/web/inputs", purpose=purposes.SERVICE_INPUTS, payload=payload
        )
    with pytest.raises(RefusedError, match="only the renter who deployed web"):
        solo.market.post_signed(
            "/v1/services/web/inputs", purpose=purposes.SERVICE_INPUTS, payload=payload
        )
    r = httpx.post(f"{net.market_url}/v1/services/web/inputs", json={"payload": payload})
    assert r.status_code == 422  # unsigned: refused by the schema, nothing kept


def test_an_independent_watcher_cosigned_through_the_public_name(failover, watcher):
    cosigned = [
        json.loads(line)
        for line in watcher.tail(200_000).splitlines()
        if line.startswith("{") and '"co-signed"' in line
    ]
    assert {c["lease_id"] for c in cosigned} >= {failover["old"]}
    assert all(c["detail"] == DEV_WATCHER for c in cosigned)


def test_the_old_lease_stopped_accruing_and_ended_failed_over(failover):
    old = failover["leases"].lease(failover["old"])
    assert old.status == LeaseStatus.ENDED and old.reason == EndReason.FAILED_OVER
    assert old.failed_at >= old.serving_at > 0
    assert old.down_to - old.failed_at > GRACE_S  # the stretch that failed it
    # paid to the failure and not a wei more: the down stretch is not paid
    assert old.paid == RATE * (old.failed_at - old.accepted_at)


def test_money_to_the_wei(failover, net, sdk):
    f = failover
    leases = f["leases"]
    old, new = leases.lease(f["old"]), leases.lease(f["new"])
    # the rest of the old deposit, to the wei, opened the new lease at the new rate
    assert new.deposit == old.deposit - old.paid == DEPOSIT - old.paid
    assert new.rate_per_second == RATE and new.renter == sdk.address
    cut, to_treasury = slash_of(net, f["dead"].address, sdk.address)
    assert cut == old.collateral * SLASH_BPS // 10_000 > 0
    # the renter stops the new service: its provider is paid from its accept, the
    # rest comes back; nothing lost or created on the renter's side
    stopped = sdk.stop("web")
    assert stopped.lease_id == f["new"]  # the renter's SDK followed the failover on chain
    after = leases.lease(f["new"])
    assert after.status == LeaseStatus.ENDED and after.reason == EndReason.CLOSED_BY_RENTER
    ended = leases.contract.events.LeaseEnded().get_logs(
        from_block=net.escrow.deployment.deployed_at_block,
        argument_filters={"leaseId": f["new"]},
    )
    closed_at = net.escrow.w3.eth.get_block(ended[0]["blockNumber"])["timestamp"]
    assert after.paid == RATE * (closed_at - after.accepted_at - after.down_seconds)
    spent = old.paid + after.paid
    assert net.escrow.balance_of(sdk.address) == (f["balance_before"] - spent + (cut - to_treasury))


def test_a_service_without_failover_ends_slashed_and_refunded(failover, net, solo):
    f = failover
    leases = f["leases"]
    lease_id = f["solo"].lease_id
    ended = wait_for("the lease to end", lambda: leases.lease(lease_id).status == LeaseStatus.ENDED)
    assert ended
    lease = leases.lease(lease_id)
    assert lease.reason == EndReason.DOWN_PAST_GRACE
    assert lease.paid == RATE * (lease.failed_at - lease.accepted_at)
    cut, to_treasury = slash_of(net, f["dead"].address, solo.address)
    assert cut == lease.collateral * SLASH_BPS // 10_000 > 0
    market = httpx.get(f"{net.market_url}/v1/services/solo").json()
    assert market["status"] == "ended" and "down past grace" in market["reason"]
    # paid to the failure, the rest refunded (withdrawn by the stop), the slash share
    solo.stop("solo")
    assert net.escrow.balance_of(solo.address) == (
        f["solo_before"] - lease.paid + (cut - to_treasury)
    )


def test_a_failover_push_from_a_key_without_the_role_is_refused(failover, net):
    payload = {
        "lease_id": failover["new"],
        "from_lease_id": failover["old"],
        "spec": spec("web", page=True).model_dump(mode="json"),
    }
    forged = sign_request(
        dev_account(SOLO_RENTER),
        purpose=api.SERVICE_FAILOVER,
        payload=payload,
    )
    r = httpx.post(f"{failover['alive'].endpoint}/v1/services/failover", json=forged)
    assert r.status_code == 401, r.text
    assert "may not fail leases over" in r.json()["detail"]


def test_the_dead_provider_restarted_stops_its_orphan(failover, net):
    dead = failover["dead"]
    net.start_provider(dead)
    status = wait_for(
        "the restarted agent to drop the failed-over lease",
        lambda: _service_gone(dead.endpoint, failover["old"]),
        timeout=60,
    )
    assert status


def slash_of(net: Network, provider: str, renter: str) -> tuple[int, int]:
    """(amount, treasury's share) of the one slash of `provider` to `renter`."""
    logs = net.escrow.registry.events.ProviderSlashed().get_logs(
        from_block=net.escrow.deployment.deployed_at_block,
        argument_filters={"provider": provider, "beneficiary": renter},
    )
    assert len(logs) == 1, logs
    return int(logs[0]["args"]["amount"]), int(logs[0]["args"]["toTreasury"])


def _service_gone(endpoint: str, lease_id: int) -> bool:
    health = httpx.get(f"{endpoint}/v1/health", timeout=2).json()
    return int(health.get("services_running", 0)) == 0
