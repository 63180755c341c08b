"""Services and their leases on a real anvil with the contracts deployed by brownie: the
indexer links a LeaseOpened to its deployment by spec hash, follows accept, serving,
top-ups, settles and the end with its reason, and frees the reservation; the prober
reports a healthy leased service serving with the matcher key (once it has gas); a service
seen down is reported down by a quorum of watcher keys, fails past the grace period and
is failed over to another provider."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select
from web3 import Web3
from web3.logs import DISCARD

from marketplace.chain.indexer import Indexer
from marketplace.service import Service
from marketplace.services import deployments, reports
from marketplace.services.failover import Failover
from marketplace.services.placement import Placer
from marketplace.services.prober import Prober
from marketplace.services.serving import Outcome, ServingReporter
from marketplace.services.watch import CosignError, DownWatch, Look
from marketplace.settings import Settings
from marketplace.store.models import ChainLeaseRow, ProviderRow, ServiceRow
from protocol.leases import Leases, sign_watch_report
from protocol.services import ServiceReport, ServiceSpec, ServiceState
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18
STAKE = 500 * TOKEN
RATE = 10**12
WATCHER_ROLE = Web3.keccak(
    text="WATCHER_ROLE"
)  # wei per second: the provider asks 10**12 per CPU-second, 1 CPU


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def chain_url(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    deployments_file = tmp_path_factory.mktemp("leases") / "deployments.json"
    with running_chain("anvil") as url:
        deploy_contracts(CHAINS["anvil"]["network"], deployments_file)
        yield url, deployments_file


def open_service(chain_url: tuple[str, Path], folder: Path, **settings: Any) -> Service:
    """A marketplace service (not its HTTP app) on the module's chain, its database in
    `folder`; `settings` override the defaults."""
    url, deployments_file = chain_url
    svc = Service(
        Settings(
            database_url=f"sqlite:///{folder / 'market.db'}",
            rpc_url=url,
            deployments=deployments_file,
            **settings,
        )
    )
    svc.open()
    return svc


@pytest.fixture
def service(chain_url, tmp_path) -> Iterator[Service]:
    svc = open_service(chain_url, tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------ helpers


def send(service: Service, fn: Any, sender: str) -> Any:
    assert service.chain is not None
    w3 = service.chain.w3
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    assert receipt.status == 1
    return receipt


def sender_of(service: Service, address: str) -> Any:
    return lambda fn: send(service, fn, address)


def accounts(service: Service) -> list[str]:
    assert service.chain is not None
    return list(service.chain.w3.eth.accounts)


def staked_provider(service: Service, address: str) -> None:
    chain = service.chain
    assert chain is not None
    if chain.stake(address).active:
        return
    send(service, chain.token.functions.approve(chain.registry.address, STAKE), address)
    send(service, chain.registry.functions.stake(STAKE), address)


def add_provider(service: Service, address: str) -> None:
    now = time.time()
    with service.sessions() as s, s.begin():
        s.add(
            ProviderRow(
                address=address,
                endpoint="http://127.0.0.1:9100",
                lat=48.1,
                lon=11.6,
                region="DE",
                total_cpu=4,
                total_memory_mb=16384,
                total_gpu=0,
                total_disk_mb=100_000,
                free_cpu=4,
                free_memory_mb=16384,
                free_gpu=0,
                free_disk_mb=100_000,
                price_wei=RATE,
                images=["busybox"],
                registered_at=now,
                last_heartbeat_at=now,
                heartbeats=1,
                staked_wei=str(STAKE),
                stake_active=True,
                jobs_completed=0,
                jobs_failed=0,
                jobs_slashed=0,
            )
        )
    service.providers_changed()


def place(service: Service, renter: str, name: str, *, cpu: float = 1) -> ServiceRow:
    spec = ServiceSpec.model_validate(
        {
            "name": name,
            "image": "busybox",
            "port": 8080,
            "resources": {"cpu": cpu, "memory_mb": 256},
            "max_rate_wei_per_s": RATE * 4,
            "origin": {"lat": 48.1, "lon": 11.6},
        }
    )
    decision = Placer(service).decide(spec)
    with service.sessions() as s, s.begin():
        row = deployments.record(
            s, renter=renter, spec=spec, decision=decision, reservation_s=600, now=time.time()
        )
    assert row.status == "placed", row.reason
    return row


def open_lease(service: Service, row: ServiceRow, renter: str, deposit: int) -> int:
    chain = service.chain
    assert chain is not None and row.provider is not None and row.rate_wei_per_s is not None
    leases = Leases(chain.w3, chain.deployment)
    send(service, chain.token.functions.approve(leases.address, deposit), renter)
    receipt = leases.open(
        sender_of(service, renter),
        provider=row.provider,
        rate_per_second=row.rate_wei_per_s,
        deposit=deposit,
        spec_hash=bytes.fromhex(row.spec_hash[2:]),
    )
    events = leases.contract.events.LeaseOpened().process_receipt(receipt, errors=DISCARD)
    return int(events[0]["args"]["leaseId"])


def catch_up(indexer: Indexer) -> None:
    indexer.run_once()
    while indexer.status == "catching up":
        indexer.run_once()


def get(service: Service, model: Any, key: Any) -> Any:
    with service.sessions() as s:
        return s.get(model, key)


def free_cpu(service: Service, address: str) -> float:
    return float(get(service, ProviderRow, address).free_cpu)


def travel(service: Service, seconds: int) -> None:
    assert service.chain is not None
    service.chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    service.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


# -------------------------------------------------------------------------- tests


def test_a_lease_drives_its_service_from_placed_to_ended(service, http_port, caplog):
    chain, matcher = service.chain, service.matcher
    assert chain is not None and matcher is not None
    indexer = Indexer(service.settings, service.sessions, chain)
    everyone = accounts(service)
    renter, provider = everyone[1], everyone[2]
    staked_provider(service, provider)
    add_provider(service, provider)
    leases = Leases(chain.w3, chain.deployment)
    assert leases.is_prober(matcher.address)

    row = place(service, renter, "blog")
    assert free_cpu(service, provider) == 3
    lease_id = open_lease(service, row, renter, deposit=RATE * 3600)
    catch_up(indexer)
    linked = get(service, ServiceRow, row.id)
    assert (linked.lease_id, linked.status) == (lease_id, "leased")
    lease = get(service, ChainLeaseRow, lease_id)
    assert (lease.state, lease.rate_wei_per_s, lease.deposit_wei) == (
        "offered",
        str(RATE),
        str(RATE * 3600),
    )

    leases.accept(sender_of(service, provider), lease_id)
    catch_up(indexer)
    accepted = get(service, ServiceRow, row.id)
    assert accepted.reserved_until is None and accepted.reserved  # held until it runs
    assert get(service, ChainLeaseRow, lease_id).state == "running"

    report = ServiceReport(
        name="blog", lease_id=lease_id, host_port=http_port, state=ServiceState.STARTING
    )
    with service.sessions() as s, s.begin():
        reports.apply_report(s, provider=provider, report=report, chain_verified=True, now=0)
    assert free_cpu(service, provider) == 4  # the provider counts it from now on

    # the matcher key has no ETH on a fresh anvil: said plainly, retried later
    caplog.set_level(logging.ERROR, logger="marketplace.services.serving")
    if chain.w3.eth.get_balance(matcher.account.address) == 0:  # not funded by the deploy
        assert ServingReporter(service).report(lease_id) == Outcome.RETRY
        assert "has no ETH to pay gas" in caplog.text
        chain.w3.eth.wait_for_transaction_receipt(
            chain.w3.eth.send_transaction(
                {"from": everyone[0], "to": matcher.account.address, "value": TOKEN}
            )
        )

    probes = Prober(service).run_once()
    assert [p.healthy for p in probes] == [True]
    catch_up(indexer)
    serving = get(service, ServiceRow, row.id)
    assert serving.status == "serving" and serving.serving_reported_at is not None
    assert get(service, ChainLeaseRow, lease_id).serving_at > 0

    send(service, chain.token.functions.approve(leases.address, RATE * 60), renter)
    leases.top_up(sender_of(service, renter), lease_id, RATE * 60)
    travel(service, 120)
    leases.settle(sender_of(service, renter), lease_id)
    catch_up(indexer)
    lease = get(service, ChainLeaseRow, lease_id)
    assert lease.deposit_wei == str(RATE * 3660) and int(lease.paid_wei) >= RATE * 120

    leases.close(sender_of(service, renter), lease_id)
    catch_up(indexer)
    ended = get(service, ServiceRow, row.id)
    assert ended.status == "ended" and ended.reason == f"lease {lease_id} ended: closed by renter"
    lease = get(service, ChainLeaseRow, lease_id)
    assert (lease.state, lease.end_reason) == ("ended", "closed by renter")


def test_a_lease_never_accepted_ends_its_service_and_frees_the_reservation(service):
    chain = service.chain
    assert chain is not None
    indexer = Indexer(service.settings, service.sessions, chain)
    everyone = accounts(service)
    renter, provider = everyone[3], everyone[4]
    staked_provider(service, provider)
    add_provider(service, provider)
    row = place(service, renter, "wiki", cpu=2)
    assert free_cpu(service, provider) == 2
    lease_id = open_lease(service, row, renter, deposit=RATE * 2 * 600)
    catch_up(indexer)
    assert get(service, ServiceRow, row.id).status == "leased"

    leases = Leases(chain.w3, chain.deployment)
    travel(service, leases.parameters().accept_window + 1)
    leases.cancel_unaccepted(sender_of(service, renter), lease_id)
    catch_up(indexer)
    ended = get(service, ServiceRow, row.id)
    assert ended.status == "ended" and ended.reason.endswith("not accepted")
    assert not ended.reserved and free_cpu(service, provider) == 4


def test_an_accepted_service_that_never_comes_up_is_claimed_for_the_renter(service):
    chain = service.chain
    assert chain is not None
    indexer = Indexer(service.settings, service.sessions, chain)
    everyone = accounts(service)
    renter, provider = everyone[5], everyone[6]
    staked_provider(service, provider)
    add_provider(service, provider)
    row = place(service, renter, "ghost")
    deposit = RATE * 600
    lease_id = open_lease(service, row, renter, deposit=deposit)
    leases = Leases(chain.w3, chain.deployment)
    leases.accept(sender_of(service, provider), lease_id)
    catch_up(indexer)
    prober = Prober(service)
    assert prober.claim_never_served() == []  # still inside its serve window

    travel(service, leases.parameters().serve_window + 1)
    catch_up(indexer)
    before = int(chain.token.functions.balanceOf(renter).call())
    credit = leases.credit_of(renter)
    assert prober.claim_never_served() == [lease_id]
    lease = leases.lease(lease_id)
    assert lease.reason.name == "NEVER_SERVED" and lease.paid == 0
    # the whole deposit comes back to the renter's credit; the collateral is paid on top
    assert leases.credit_of(renter) - credit == deposit
    assert int(chain.token.functions.balanceOf(renter).call()) > before
    catch_up(indexer)
    assert get(service, ChainLeaseRow, lease_id).end_reason == "never served"
    assert get(service, ProviderRow, provider).jobs_slashed == 1  # its reputation drops
    prober.close()


# ------------------------------------------------------------- watchers, failover


def serve_health() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fund_matcher(service: Service) -> None:
    chain, matcher = service.chain, service.matcher
    assert chain is not None and matcher is not None
    if chain.w3.eth.get_balance(matcher.account.address) == 0:
        chain.w3.eth.wait_for_transaction_receipt(
            chain.w3.eth.send_transaction(
                {"from": accounts(service)[0], "to": matcher.account.address, "value": TOKEN}
            )
        )


def test_a_service_seen_down_is_reported_by_a_quorum_fails_and_moves(service):
    chain = service.chain
    assert chain is not None
    indexer = Indexer(service.settings, service.sessions, chain)
    everyone = accounts(service)
    admin, renter, provider, spare = everyone[0], everyone[7], everyone[8], everyone[9]
    leases = Leases(chain.w3, chain.deployment)
    grace = 2
    send(service, leases.contract.functions.setWatchRules(2, grace, 5000), admin)
    for p in (provider, spare):
        staked_provider(service, p)
    add_provider(service, provider)
    fund_matcher(service)
    row = place(service, renter, "shop")
    deposit = RATE * 3600
    lease_id = open_lease(service, row, renter, deposit=deposit)
    spec_hash = bytes.fromhex(row.spec_hash[2:])
    leases.set_failover(sender_of(service, renter), lease_id, RATE * 4, spec_hash)
    leases.accept(sender_of(service, provider), lease_id)
    catch_up(indexer)
    server = serve_health()
    report = ServiceReport(
        name="shop",
        lease_id=lease_id,
        host_port=server.server_address[1],
        state=ServiceState.HEALTHY,
    )
    with service.sessions() as s, s.begin():
        reports.apply_report(s, provider=provider, report=report, chain_verified=True, now=0)
    prober = Prober(service)
    assert [p.healthy for p in prober.run_once()] == [True]
    catch_up(indexer)
    assert get(service, ChainLeaseRow, lease_id).serving_at > 0
    assert get(service, ChainLeaseRow, lease_id).failover_cap_wei == str(RATE * 4)
    assert prober.run_once()[0].target.lease_to_watch == lease_id
    assert prober.watch.post_due() == 0  # nothing seen down: nothing to post

    server.shutdown()
    server.server_close()
    for _ in range(20):  # look, post, follow: until the stretch outlasts the grace
        time.sleep(0.5)
        travel(service, 0)  # a block, as a live chain mines them (this one mines on demand)
        assert [p.healthy for p in prober.run_once()] in ([False], [])
        prober.watch.post_due()
        catch_up(indexer)
        if get(service, ChainLeaseRow, lease_id).failed_at:
            break
    lease = leases.lease(lease_id)
    assert lease.failed_at and lease.down_seconds > grace
    assert lease.down_to - lease.failed_at > grace
    indexed = get(service, ChainLeaseRow, lease_id)
    assert (indexed.failed_at, indexed.down_s) == (lease.failed_at, lease.down_seconds)
    assert "down past the grace period" in get(service, ServiceRow, row.id).reason

    add_provider(service, spare)  # somewhere to go (no agent runs there: the push waits)
    failover = Failover(service, prober.reporter)
    [new_id] = failover.run_once()
    assert new_id in failover.pending  # to be delivered to the new provider
    catch_up(indexer)
    old = leases.lease(lease_id)
    assert old.reason.name == "FAILED_OVER"
    assert old.paid == RATE * (old.failed_at - old.accepted_at)
    new = leases.lease(new_id)
    assert (new.provider, new.deposit, new.status.name) == (spare, deposit - old.paid, "OFFERED")
    ended = get(service, ServiceRow, row.id)
    assert ended.status == "ended"
    assert ended.reason == f"failed over to lease {new_id} on provider {spare}"
    assert get(service, ChainLeaseRow, lease_id).next_lease_id == new_id
    with service.sessions() as s:
        moved = s.scalars(select(ServiceRow).where(ServiceRow.lease_id == new_id)).one()
    assert (moved.name, moved.status, moved.provider) == ("shop", "leased", spare)
    assert moved.failover_from == lease_id and moved.reserved
    assert failover.run_once() == []  # moved once
    failover.close()
    prober.close()


def test_no_down_report_without_a_quorum_of_watcher_keys(chain_url, tmp_path, caplog):
    stranger = "0x" + "42" * 32  # a key LeaseEscrow does not list as a watcher
    svc = open_service(chain_url, tmp_path, watcher_keys=[stranger])
    try:
        watch = DownWatch(svc, ServingReporter(svc).send)
        assert len(watch.candidates()) == 2  # the matcher key and the stranger's
        watch.observe([Look(lease_id=1, at=watch.now() - 5, healthy=False)])
        caplog.set_level(logging.ERROR, logger="marketplace.services.watch")
        assert watch.post_due() == 0
        assert "need 2 watchers' signatures and this marketplace holds 1" in caplog.text
        watch.observe([Look(lease_id=1, at=watch.now(), healthy=True)])
        assert watch.since == {}  # healthy again: the stretch is closed
    finally:
        svc.close()


def test_another_watchers_cosignature_makes_the_quorum(chain_url, tmp_path, caplog):
    """A marketplace holding one watcher key cannot post alone; another watcher that also
    saw the service down co-signs the stretch and the report counts. A co-signature from a
    key that is not a watcher, or for a stretch not open here, is refused."""
    # a key that is not a watcher: the matcher key is alone
    svc = open_service(chain_url, tmp_path, watcher_keys=["0x" + "42" * 32])
    try:
        chain = svc.chain
        assert chain is not None
        indexer = Indexer(svc.settings, svc.sessions, chain)
        everyone = accounts(svc)
        renter, provider = everyone[1], everyone[2]
        leases = Leases(chain.w3, chain.deployment)
        other = Account.create()
        send(svc, leases.contract.functions.grantRole(WATCHER_ROLE, other.address), everyone[0])
        staked_provider(svc, provider)
        add_provider(svc, provider)
        fund_matcher(svc)
        row = place(svc, renter, "forum")
        lease_id = open_lease(svc, row, renter, deposit=RATE * 3600)
        leases.accept(sender_of(svc, provider), lease_id)
        catch_up(indexer)
        leases.report_serving(sender_of(svc, renter), lease_id)  # the renter may say so
        catch_up(indexer)
        watch = DownWatch(svc, ServingReporter(svc).send)
        start = watch.now()
        watch.observe([Look(lease_id, start, healthy=False, name="forum")], watched={lease_id})
        time.sleep(1.1)
        travel(svc, 0)  # a block a second later, as a live chain mines them
        caplog.set_level(logging.ERROR, logger="marketplace.services.watch")
        assert watch.post_due() == 0  # one key of a quorum of two
        assert "holds 1 watcher keys" in caplog.text

        [stretch] = watch.stretches()
        assert (stretch.lease_id, stretch.name, stretch.start) == (lease_id, "forum", start)
        end = stretch.end

        def signed(key: Any, at: int = start) -> bytes:
            return sign_watch_report(
                key,
                chain_id=chain.deployment.chain_id,
                escrow=leases.address,
                lease_id=lease_id,
                start=at,
                end=end,
            )

        with pytest.raises(CosignError, match="is not a LeaseEscrow watcher"):
            watch.cosign(lease_id, start, end, signed(Account.create().key))
        with pytest.raises(CosignError, match="no open down stretch"):
            watch.cosign(lease_id, start - 1, end, signed(other.key, start - 1))
        assert watch.cosign(lease_id, start, end, signed(other.key)) == other.address
        watch._last_post = 0.0  # a post is due again
        assert watch.post_due() == 1
        lease = leases.lease(lease_id)
        assert lease.down_seconds == end - max(start, lease.serving_at) > 0
    finally:
        svc.close()
