"""A service lease's life on the provider: checked, deployed, accepted, watched, ended.

:class:`ServiceLeases` takes a renter's push (:meth:`ServiceLeases.receive`): it checks
the lease on chain (offered to this provider by the signer, for this very spec, at a
rate that covers the provider's ask, with time left to accept and at least the minimum
prepaid deposit) and the provider's side (image, network policy, free capacity for jobs
and services together, free stake for the collateral), deploys the service, and only
then accepts the lease on chain, so a service that cannot start is refused before the
provider's collateral is locked. A repeated push of the same lease changes nothing.

The lease is watched afterwards (``lease_watch.py``); when it ends on chain, for any
reason, :meth:`ServiceLeases.end` removes the service and frees its capacity. After a
restart, :meth:`ServiceLeases.resume` marks the leases that ended meanwhile, reconciles
the runtime with the rest and deploys any whose service record was lost.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
from urllib.parse import urlsplit

from agents.errors import AgentError, ChainUnavailableError, RefusedError, VerificationError
from agents.provider.config import ProviderConfig
from agents.provider.images.offer import check_image, ensure_image
from agents.provider.inputs import decode_inputs
from agents.provider.jobs import JobRunner
from agents.provider.lease_store import ENDED, LIVE, RECEIVED, LeaseRecord, LeaseStore
from agents.provider.services import engine as eng
from agents.provider.services import store as service_states
from agents.provider.services.runtime import ServiceRuntime
from agents.provider.services.store import ServiceRecord
from agents.provider.snapshots import Snapshots
from agents.wallet import TRANSIENT, Wallet
from protocol.leases import EndReason, Lease, Leases, LeaseStatus, min_deposit
from protocol.provider_api import ProviderService, ServiceFailover, ServicePush
from protocol.schemas import Capacity
from protocol.services import ServiceSpec, ServiceState, service_spec_hash
from protocol.snapshots import SnapshotRef

logger = logging.getLogger(__name__)

# A lease is taken only when this many seconds of its accept window are left.
ACCEPT_MARGIN_S = 2
# The runtime's states as the wire names them (a service that failed for good is stopped).
_WIRE_STATE = {
    service_states.STARTING: ServiceState.STARTING,
    service_states.HEALTHY: ServiceState.HEALTHY,
    service_states.UNHEALTHY: ServiceState.UNHEALTHY,
    service_states.RESTARTING: ServiceState.RESTARTING,
    service_states.FAILED: ServiceState.STOPPED,
}


def end_reason(reason: EndReason) -> str:
    """EndReason.OUT_OF_FUNDS -> 'out of funds'."""
    return reason.name.lower().replace("_", " ")


class ServiceLeases:
    """This provider's service leases: intake, views, and the end of each."""

    def __init__(
        self,
        *,
        cfg: ProviderConfig,
        wallet: Wallet,
        leases: Leases,
        runner: JobRunner,
        services: ServiceRuntime,
        store: LeaseStore,
    ) -> None:
        self.cfg = cfg
        self.wallet = wallet
        self.leases = leases
        self.runner = runner
        self.services = services
        self.store = store
        self.me = wallet.address
        self.public_host = urlsplit(cfg.endpoint).hostname or "127.0.0.1"
        # leases a push is taking now (deploy, then accept): nobody else accepts them
        self._taking: set[int] = set()
        self._taking_lock = threading.Lock()
        runner.held = self.held  # jobs see the capacity services hold, and back
        self.snapshots: Snapshots | None = None  # set by the agent

    # ------------------------------------------------------------------ intake

    def receive(
        self, push: ServicePush, signer: str, *, restore: SnapshotRef | None = None
    ) -> LeaseRecord:
        """Check a renter's push against the lease on chain and this offer, deploy the
        service, then accept the lease.

        Raises:
            VerificationError: the signer is not the lease's renter, or the spec or inputs
                are not what the lease names.
            RefusedError: this provider cannot or will not take the lease (the reason says
                which: no such lease, not named, state, image, network, rate, deposit,
                window, stake, capacity, a service that cannot start).
            ChainUnavailableError: the chain did not answer; send the push again shortly.
        """
        lease_id = push.lease_id
        known = self.store.get(lease_id)
        if known is not None:
            if known.renter != signer or known.spec != push.spec:
                raise RefusedError(f"lease {lease_id} is already taken with another spec")
            if known.state == RECEIVED and not self.taking(lease_id):
                self.accept(known)  # its accept failed for a passing reason: try again
            return self._stored(lease_id)
        try:
            lease = self.leases.lease(lease_id)
            self._check(push, signer, lease)
        except TRANSIENT as exc:
            raise ChainUnavailableError(
                f"this provider cannot reach its chain now ({exc.__class__.__name__}); "
                "send the service again shortly"
            ) from None
        inputs = decode_inputs(push.spec.inputs, push.inputs)
        with self.runner.capacity_lock:  # a full provider refuses before it pulls, not after
            self._check_capacity(push.spec)
        ensure_image(self.runner.images, push.spec.image, push.image)  # the last check: a pull
        data = self._snapshot(push, restore)
        rec = LeaseRecord(
            lease_id=lease_id,
            key=self.key(lease_id),
            renter=signer,
            spec=push.spec,
            inputs=dict(push.inputs),
        )
        with self.runner.capacity_lock:
            self._check_capacity(push.spec)
            if not self.store.add(rec):
                raise RefusedError(f"lease {lease_id} is already being taken")
            with self._taking_lock:
                self._taking.add(lease_id)
        try:
            self._take(rec, lease, inputs, data)
        finally:
            with self._taking_lock:
                self._taking.discard(lease_id)
        logger.info("service lease taken", extra={"lease": lease_id, "renter": signer})
        return self._stored(lease_id)

    def receive_failover(self, push: ServiceFailover, signer: str) -> LeaseRecord:
        """Take a lease LeaseEscrow moved here from a failed provider: sent by a
        FAILOVER_ROLE key (the marketplace), with the spec the new lease names. The renter
        agreed to it when opening the first lease, so it is taken as the renter's push.

        Raises:
            VerificationError: the signer may not fail leases over, or no failover of
                `from_lease_id` opened this lease for this provider.
            RefusedError, ChainUnavailableError: as :meth:`receive`.
        """
        try:
            if not self.leases.may_fail_over(signer):
                raise VerificationError(f"{signer} may not fail leases over (no FAILOVER_ROLE)")
            moved = self.leases.failovers()
            lease = self.leases.lease(push.lease_id)
        except TRANSIENT as exc:
            raise ChainUnavailableError(
                f"this provider cannot reach its chain now ({exc.__class__.__name__}); "
                "send the failover again shortly"
            ) from None
        if (push.from_lease_id, push.lease_id, self.me) not in moved:
            raise VerificationError(
                f"lease {push.lease_id} is not a failover of lease {push.from_lease_id} to "
                f"this provider on chain"
            )
        logger.info(
            "failed-over lease offered",
            extra={"lease": push.lease_id, "from_lease": push.from_lease_id},
        )
        forward = ServicePush(
            lease_id=push.lease_id,
            spec=push.spec,
            inputs=push.inputs,
            snapshot_key=push.snapshot_key,
        )
        return self.receive(forward, lease.renter, restore=push.snapshot)

    def _snapshot(self, push: ServicePush, restore: SnapshotRef | None) -> bytes | None:
        """Keep the lease's snapshot secret, if the spec asks for snapshots; the tar of
        /data to start from, when a failover brought one."""
        if not push.spec.snapshot_s or push.snapshot_key is None or self.snapshots is None:
            return None
        secret = self.snapshots.accept_secret(push.lease_id, push.snapshot_key)
        if restore is None or secret is None:
            return None
        return self.snapshots.restore(push.lease_id, secret, restore)

    def _take(
        self, rec: LeaseRecord, lease: Lease, inputs: dict[str, bytes], restore: bytes | None
    ) -> None:
        try:
            self.services.deploy(rec.key, rec.spec, inputs, restore)
        except AgentError as exc:
            self._drop(rec)
            raise RefusedError(f"the service could not start here: {exc}") from None
        except BaseException:
            self._drop(rec)
            raise
        if lease.status == LeaseStatus.RUNNING:  # accepted before a crash lost the record
            self.store.update(rec.lease_id, state=LIVE)
        else:
            self.accept(rec)

    def taking(self, lease_id: int) -> bool:
        """Whether a push is taking the lease now (its accept is that push's to send)."""
        with self._taking_lock:
            return lease_id in self._taking

    def _check(self, push: ServicePush, signer: str, lease: Lease) -> None:
        spec, lease_id = push.spec, push.lease_id
        if lease.status == LeaseStatus.NONE:
            raise RefusedError(f"there is no lease {lease_id} on chain; open it, then send it")
        if signer != lease.renter:
            raise VerificationError(
                f"only lease {lease_id}'s renter {lease.renter} may send its service"
            )
        if lease.provider != self.me:
            raise RefusedError(f"lease {lease_id} names provider {lease.provider}, not {self.me}")
        accepted_here = lease.status == LeaseStatus.RUNNING
        if lease.status != LeaseStatus.OFFERED and not accepted_here:
            state = lease.status.name.lower()
            if lease.status == LeaseStatus.ENDED:
                state += f" ({end_reason(lease.reason)})"
            raise RefusedError(f"lease {lease_id} is {state}, not open to accept")
        want = self.spec_hash_of(lease_id)
        got = bytes.fromhex(service_spec_hash(spec)[2:])
        if got != want:
            raise VerificationError(
                f"the spec's hash 0x{got.hex()} is not lease {lease_id}'s 0x{want.hex()}: "
                "send exactly the spec the lease was opened for"
            )
        if spec.network and not self.cfg.allow_network:
            raise RefusedError("this provider does not give services network access")
        check_image(
            spec.image,
            push.image,
            offered=self.cfg.images,
            has_image=self.runner.runtime.has_image,
            puller=self.runner.images,
        )
        if accepted_here:
            return  # the terms below were checked when it was accepted
        ask = self.ask_wei_per_s(spec)
        if lease.rate_per_second < ask:
            raise RefusedError(
                f"lease {lease_id} pays {lease.rate_per_second} wei per second; "
                f"this provider asks {ask} for {spec.resources.cpu:g} CPU"
            )
        least = min_deposit(lease.rate_per_second)
        if lease.deposit < least:
            raise RefusedError(
                f"lease {lease_id}'s deposit {lease.deposit} wei is under a minute of its "
                f"rate ({least} wei); top it up"
            )
        now = self.runner.escrow.now()
        if now + ACCEPT_MARGIN_S > lease.accept_by:
            raise RefusedError(
                f"lease {lease_id}'s accept window closes at {lease.accept_by}, too soon to "
                "accept it; open a new lease"
            )
        if self.runner.escrow.free_stake(self.me) < lease.collateral:
            raise RefusedError("this provider has too little free stake for the collateral")

    def spec_hash_of(self, lease_id: int) -> bytes:
        """The spec hash the lease was opened with (from its LeaseOpened event)."""
        logs = self.leases.contract.events.LeaseOpened().get_logs(
            argument_filters={"leaseId": lease_id},
            from_block=self.leases.deployment.deployed_at_block,
        )
        if not logs:
            raise RefusedError(f"lease {lease_id}'s opening is not on chain yet; send it again")
        return bytes(logs[0]["args"]["specHash"])

    def ask_wei_per_s(self, spec: ServiceSpec) -> int:
        """This provider's rate for the spec: its price per CPU-second times the spec's
        cores, rounded up (as the marketplace quotes it)."""
        return max(1, math.ceil(self.cfg.price_wei * spec.resources.cpu))

    def accept(self, rec: LeaseRecord) -> None:
        """Accept the lease on chain; a refusal removes the service and forgets the lease.

        Raises:
            RefusedError: the escrow refuses (the lease is no longer offered, its window
                closed, too little stake).
            ChainUnavailableError: the chain did not answer; the lease stays received and
                the watcher tries again while its window is open.
        """
        try:
            self.leases.accept(self.wallet.transact, rec.lease_id)
        except RefusedError as exc:
            lease = self.leases.lease(rec.lease_id)
            if lease.status != LeaseStatus.RUNNING or lease.provider != self.me:
                self._drop(rec)
                raise RefusedError(f"lease {rec.lease_id} could not be accepted: {exc}") from None
        except (ChainUnavailableError, *TRANSIENT) as exc:
            self.store.update(rec.lease_id, detail=f"accept delayed: {exc}")
            raise ChainUnavailableError(
                f"lease {rec.lease_id}'s service is started but not yet accepted on chain "
                f"({exc}); this provider keeps trying: send it again shortly to follow it"
            ) from None
        self.store.update(rec.lease_id, state=LIVE, detail="")
        logger.info("lease accepted", extra={"lease": rec.lease_id})

    def _drop(self, rec: LeaseRecord) -> None:
        """Undo a take that failed before the lease was accepted."""
        try:
            self.services.stop(rec.key)
        finally:
            self.store.remove(rec.lease_id)

    # ------------------------------------------------------------------ capacity

    def held(self) -> list[Capacity]:
        """The resources of every service this provider runs or is taking."""
        return [_demand(rec.spec) for rec in self.store.all(live=True)]

    def _check_capacity(self, spec: ServiceSpec) -> None:
        free = self.runner.free()
        if not _demand(spec).fits_in(free):
            raise RefusedError(
                f"this provider is full now (free: {free.cpu:g} CPU, {free.memory_mb} MB, "
                f"{free.disk_mb} MB disk); try another provider"
            )

    # ------------------------------------------------------------------ ends

    def end(self, rec: LeaseRecord, why: str) -> None:
        """The lease is over: remove its service (its capacity is free at once)."""
        self.services.stop(rec.key)
        self.store.update(rec.lease_id, state=ENDED, detail=why)
        logger.info("service lease ended", extra={"lease": rec.lease_id, "why": why})

    def resume(self) -> None:
        """After a start: end the leases that ended while the agent was down, keep the
        services of the others (same containers and ports), deploy lost ones again."""
        live: dict[str, LeaseRecord] = {}
        now = None
        for rec in self.store.all(live=True):
            try:
                lease = self.leases.lease(rec.lease_id)
                now = now or self.runner.escrow.now()
            except TRANSIENT:
                live[rec.key] = rec  # the chain is away: keep it; the watcher decides later
                continue
            if lease.status == LeaseStatus.ENDED:
                self.store.update(
                    rec.lease_id, state=ENDED, detail=f"the lease ended: {end_reason(lease.reason)}"
                )
            elif lease.status == LeaseStatus.OFFERED and now > lease.accept_by:
                self.store.update(rec.lease_id, state=ENDED, detail="not accepted in time")
            else:
                live[rec.key] = rec
        report = self.services.reconcile(list(live))
        for key in report.unknown:
            rec = live[key]
            try:
                self.redeploy(rec)
            except AgentError as exc:
                logger.warning(
                    "a lease's service could not be deployed again",
                    extra={"lease": rec.lease_id, "error": str(exc)},
                )

    def redeploy(self, rec: LeaseRecord) -> ServiceRecord:
        """Deploy a live lease's service from its recorded spec and inputs."""
        inputs = {p: base64.b64decode(b) for p, b in rec.inputs.items()}
        return self.services.deploy(rec.key, rec.spec, inputs)

    # ------------------------------------------------------------------ views

    def key(self, lease_id: int) -> str:
        """The lease's name at the runtime: unique per chain and escrow, not just per id."""
        return f"{self.wallet.chain_id}-{self.leases.address[2:10].lower()}-lease-{lease_id}"

    def _stored(self, lease_id: int) -> LeaseRecord:
        rec = self.store.get(lease_id)
        assert rec is not None
        return rec

    def public(self, rec: LeaseRecord) -> ProviderService:
        """The lease's service as its renter sees it."""
        srv = self.services.get(rec.key) if rec.live else None
        detail = rec.detail
        if srv is None:
            return ProviderService(
                lease_id=rec.lease_id,
                name=rec.name,
                renter=rec.renter,
                state=ServiceState.STOPPED,
                detail=detail or "its service is not deployed",
            )
        if rec.state == RECEIVED and not detail:
            detail = "waiting for the accept on chain"
        elif srv.state == service_states.FAILED:
            detail = detail or f"stopped for good: {srv.last_error}"
        return ProviderService(
            lease_id=rec.lease_id,
            name=rec.name,
            renter=rec.renter,
            state=wire_state(srv.state),
            host_port=srv.host_port,
            url=f"http://{self.public_host}:{srv.host_port}",
            restarts=srv.restarts,
            uptime_s=srv.uptime(),
            last_error=srv.last_error,
            detail=detail,
        )

    def running(self) -> int:
        """How many services this provider runs now."""
        return sum(1 for r in self.store.all(live=True) if self.services.get(r.key) is not None)


def wire_state(state: str) -> ServiceState:
    return _WIRE_STATE.get(state, ServiceState.STARTING)


def _demand(spec: ServiceSpec) -> Capacity:
    r = spec.resources
    return Capacity(cpu=r.cpu, memory_mb=r.memory_mb, gpu=r.gpu, disk_mb=eng.data_mb(spec))
