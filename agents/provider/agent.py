"""The provider agent process: API server, heartbeats, chain watchers, payouts, jobs and
services."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from eth_account.signers.local import LocalAccount

from agents.errors import AgentError, NotFoundError
from agents.market import MarketClient
from agents.network import open_deployment
from agents.provider import held
from agents.provider.config import ProviderConfig
from agents.provider.images.pull import ImagePuller
from agents.provider.jobs import JobRunner
from agents.provider.lease_store import LeaseStore
from agents.provider.lease_watch import LeaseWatcher
from agents.provider.leases import ServiceLeases
from agents.provider.runtime import DockerRuntime
from agents.provider.server import create_app
from agents.provider.services.runtime import ServiceRuntime
from agents.provider.services.store import ServiceStore
from agents.provider.services.supervisor import Supervisor
from agents.provider.snapshots import Snapshots
from agents.provider.store import JobStore
from agents.wallet import Wallet
from protocol import purposes
from protocol.deployments import connect
from protocol.escrow import Escrow
from protocol.leases import Leases
from protocol.schemas import Heartbeat, ProviderRegistration

logger = logging.getLogger(__name__)

REGISTER = purposes.PROVIDER_REGISTER
HEARTBEAT = purposes.PROVIDER_HEARTBEAT
CURSOR_SAVE_S = 10.0  # the funding watcher stores the block it reached at most this often


def open_escrow(cfg: ProviderConfig, home: Path) -> Escrow:
    """The escrow this provider serves: the marketplace's contracts, checked on its chain."""
    w3 = connect(cfg.rpc_url)
    deployment = open_deployment(
        w3, marketplace_url=cfg.marketplace_url, deployments=cfg.deployments, cache_dir=home
    )
    return Escrow(w3, deployment)


class ProviderAgent:
    def __init__(self, *, home: Path, cfg: ProviderConfig, account: LocalAccount) -> None:
        self.home = home
        self.cfg = cfg
        self.escrow = open_escrow(cfg, home)
        self.wallet = Wallet(self.escrow.w3, account)
        self.wallet.learn_errors(self.escrow.abis())
        self.runtime = DockerRuntime(work_root=home / "work", agent_id=account.address.lower())
        self.store = JobStore(home / "agent.db")
        self.runner = JobRunner(
            cfg=cfg,
            home=home,
            wallet=self.wallet,
            escrow=self.escrow,
            runtime=self.runtime,
            store=self.store,
        )
        self.market = MarketClient(cfg.marketplace_url, account)
        self.images = ImagePuller(
            client=self.runtime.client,
            account=account,
            home=home,
            max_image_bytes=cfg.max_image_mb * 2**20,
            quota_bytes=cfg.image_cache_mb * 2**20,
            needed=self._images_needed,
        )
        self.runner.images = self.images
        # services: long-running containers, paid by the second through LeaseEscrow
        self.leases = Leases(self.escrow.w3, self.escrow.deployment)
        self.wallet.learn_errors([dict(i) for i in self.leases.contract.abi])
        self.service_store = ServiceStore(home / "services.db")
        self.services = ServiceRuntime(
            store=self.service_store,
            work_root=home / "services",
            agent_id=account.address.lower(),
            public_host=urlsplit(cfg.endpoint).hostname or "127.0.0.1",
            publish_host=cfg.listen_host,
            allow_network=cfg.allow_network,
            client=self.runtime.client,
        )
        self.supervisor = Supervisor(self.services)
        self.lease_store = LeaseStore(home / "leases.db")
        self.leasing = ServiceLeases(
            cfg=cfg,
            wallet=self.wallet,
            leases=self.leases,
            runner=self.runner,
            services=self.services,
            store=self.lease_store,
        )
        self.snapshots = Snapshots(
            home=home,
            account=account,
            marketplace_url=cfg.marketplace_url,
            leases=self.lease_store,
            data_area=self._data_area,
        )
        self.leasing.snapshots = self.snapshots
        self.lease_watcher = LeaseWatcher(self.leasing, self.market)
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        self._learn_matcher()
        self.leasing.resume()  # before the API serves: pushes meet a reconciled runtime
        self.supervisor.start()
        app = create_app(self.runner, self.leasing)
        config = uvicorn.Config(
            app,
            host=self.cfg.listen_host,
            port=self.cfg.listen_port,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._spawn("api", self._server.run)
        self.runner.resume_all()
        self._spawn("heartbeat", self._heartbeats)
        self._spawn("watcher", self._watch)
        self._spawn("payout", self._payouts)
        self._spawn("leases", self._watch_leases)
        self._spawn("snapshots", self._snapshots)
        self._spawn("held", self._held_starts)
        logger.info(
            "provider agent started",
            extra={"address": self.wallet.address, "endpoint": self.cfg.endpoint},
        )

    def wait(self) -> None:
        while not self.stopping.wait(0.5):
            pass

    def stop(self) -> None:
        self.stopping.set()
        self.runner.shutdown()
        if self._server is not None:
            self._server.should_exit = True
        for t in self._threads:
            t.join(timeout=10)
        self.supervisor.stop()
        self.services.close()  # the ports stop being served; the services keep running
        self.market.close()
        self.store.close()
        self.lease_store.close()
        self.service_store.close()
        self.images.close()
        logger.info("provider agent stopped")

    def _spawn(self, name: str, target: object) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _learn_matcher(self) -> None:
        """The matcher key the marketplace signs with: replicated work is taken only when
        the escrow trusts that same key to choose co-replicas and verifiers."""
        try:
            chain = self.market.get("/healthz").get("chain") or {}
        except AgentError as exc:
            logger.warning("marketplace unreachable; matcher unknown", extra={"error": str(exc)})
            return
        self.runner.expected_matcher = chain.get("matcher")

    # ------------------------------------------------------------------ loops

    def offered_images(self) -> list[str]:
        """The images offered and held, then the digests of renters' images pulled here
        (most recently used first): the marketplace prefers a provider that holds a job's
        pinned image."""
        offered = [i for i in self.cfg.images if self.runtime.has_image(i)]
        return offered + self.images.held()[: 256 - len(offered)]

    def _images_needed(self) -> list[str]:
        """The images of unfinished jobs and live services (kept in the image cache)."""
        jobs = [str(r.spec.get("image", "")) for r in self.store.all(unfinished=True)]
        return jobs + [r.spec.image for r in self.lease_store.all(live=True)]

    def register(self) -> None:
        free = self.runner.free()
        reg = ProviderRegistration(
            endpoint=self.cfg.endpoint,
            location=self.cfg.location,
            region=self.cfg.region,
            total=self.cfg.caps,
            free=free,
            price_wei=self.cfg.price_wei,
            images=self.offered_images(),
        )
        self.market.post_signed(
            "/v1/providers", purpose=REGISTER, payload=reg.model_dump(mode="json")
        )

    def _heartbeats(self) -> None:
        registered = False
        while not self.stopping.is_set():
            try:
                if not registered:
                    self.register()
                    registered = True
                    logger.info(
                        "registered with the marketplace", extra={"url": self.cfg.marketplace_url}
                    )
                else:
                    beat = Heartbeat(free=self.runner.free(), images=self.offered_images())
                    self.market.post_signed(
                        "/v1/providers/heartbeat",
                        purpose=HEARTBEAT,
                        payload=beat.model_dump(mode="json"),
                    )
                    # in this thread: one signer's requests reach the marketplace in order
                    self.lease_watcher.report()
                    self.snapshots.report(self.market)
            except NotFoundError:
                registered = False  # the marketplace forgot us (new database): register again
                continue
            except AgentError as exc:
                logger.warning("heartbeat failed; retrying", extra={"error": str(exc)})
            except Exception:
                logger.exception("heartbeat failed; retrying")
            self.stopping.wait(self.cfg.heartbeat_s)

    def _watch(self) -> None:
        """Notice jobs funded for this provider (logged; the renter's push starts them)."""
        last = self.store.meta("last_block")
        cursor = int(last) if last else self.escrow.w3.eth.block_number
        saved_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                head = self.escrow.w3.eth.block_number
                if head > cursor:
                    for job_id, renter in self._funded_here(cursor + 1, head):
                        if self.store.get(job_id) is None:
                            logger.info(
                                "job funded for this provider; waiting for the renter's spec",
                                extra={"job": job_id, "renter": renter},
                            )
                    cursor = head
                    if time.monotonic() - saved_at >= CURSOR_SAVE_S:  # where to resume
                        self.store.set_meta("last_block", str(cursor))
                        saved_at = time.monotonic()
            except Exception as exc:
                logger.warning("chain watch failed; retrying", extra={"error": str(exc)})
            self.stopping.wait(max(self.cfg.poll_s, 1.0))

    def _funded_here(self, start: int, end: int) -> list[tuple[int, str]]:
        """(job, renter) of the JobFunded events of blocks `start`..`end` naming this
        provider. Providers are not an indexed topic, so every job's event comes; only
        those whose data holds this provider's address are decoded."""
        event = self.escrow.contract.events.JobFunded()
        logs = self.escrow.w3.eth.get_logs(
            {
                "address": self.escrow.address,
                "fromBlock": start,
                "toBlock": end,
                "topics": [event.topic],
            }
        )
        me = self.wallet.address
        found = []
        for log in logs:
            if bytes.fromhex(me[2:]) in bytes(log["data"]):
                args = event.process_log(log)["args"]
                if me in args["providers"]:
                    found.append((int(args["jobId"]), str(args["renter"])))
        return found

    def _watch_leases(self) -> None:
        """End the services of leases that ended on chain; finish delayed accepts."""
        while not self.stopping.wait(max(self.cfg.poll_s, 1.0)):
            try:
                self.lease_watcher.check()
            except Exception as exc:
                logger.warning("lease watch failed; retrying", extra={"error": str(exc)})

    def _data_area(self, key: str) -> str | None:
        rec = self.service_store.get(key)
        return rec.data_area if rec is not None else None

    def _snapshots(self) -> None:
        """Store each due snapshot of a service's /data (the heartbeat thread reports it)."""
        while not self.stopping.wait(1.0):
            try:
                self.snapshots.take_due()
            except Exception as exc:
                logger.warning("snapshots failed; retrying", extra={"error": str(exc)})

    def _held_starts(self) -> None:
        """Start held jobs when the chain's clock reaches their start (``held.py``)."""
        held.start_forever(self.runner, self.escrow.now, self.stopping, max(self.cfg.poll_s, 1.0))

    def _payouts(self) -> None:
        """Claim what the leases accrued, then withdraw each escrow's credit; one thread,
        so a credit is never withdrawn twice."""
        while not self.stopping.wait(self.cfg.payout_s):
            try:
                self.lease_watcher.settle()
            except Exception as exc:
                logger.warning("lease settle failed; retrying", extra={"error": str(exc)})
            for name, contract in (
                ("JobEscrow", self.escrow.contract),
                ("LeaseEscrow", self.leases.contract),
            ):
                try:
                    if int(contract.functions.creditOf(self.wallet.address).call()) > 0:
                        receipt = self.wallet.transact(contract.functions.withdraw())
                        logger.info(
                            "earnings withdrawn",
                            extra={"escrow": name, "tx": receipt["transactionHash"].hex()},
                        )
                except Exception as exc:
                    logger.warning("payout failed; retrying", extra={"error": str(exc)})
