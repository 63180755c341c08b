"""Failover: a service down past the grace period moves to another provider, same name.

Each round of the services worker looks at the leases LeaseEscrow marked failed
(``LeaseDownPastGrace``, recorded by the indexer) whose deployment is placed here:

- If the renter agreed to a failover (a rate cap, set when the lease was opened), left a
  copy of the service's inputs if it has any (:mod:`marketplace.services.inputs`), and
  its image is one providers offer (a renter's own image needs read grants only the
  renter can sign), the service is
  placed again by the usual energy-weighted match, never on the provider that failed it,
  within the cap. The new deployment is recorded (its provider's capacity reserved) and
  ``failover(lease, provider, rate)`` is sent with the marketplace's FAILOVER_ROLE key
  (the matcher key): the old lease ends paid to the failure and slashed, and the rest of
  its deposit opens the new lease. The indexer links the new lease to the new deployment
  and moves the name to it (``LeaseFailedOver``). The spec is then sent to the new
  provider, signed by the same key (``POST /v1/services/failover``), until it answers;
  the provider checks the failover on chain, starts the service and accepts, and the
  prober reports it serving as any other.
- Otherwise, or when no provider can take it within ``DCLOUD_FAILOVER_GIVE_UP_S`` of the
  failure, the lease is ended with ``claimDownPastGrace``: its provider is paid to the
  failure and slashed, the renter refunded the rest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from marketplace.compute import providers
from marketplace.service import Service
from marketplace.services import catalog
from marketplace.services.placement import Placement, Placer
from marketplace.services.serving import ServingReporter, error_name
from marketplace.store.models import ChainLeaseRow, ProviderRow, ServiceRow
from protocol import keywrap, snapshots
from protocol import provider_api as api
from protocol.errors import ProtocolError
from protocol.images import is_pinned
from protocol.keywrap import WrappedKey
from protocol.leases import Leases
from protocol.services import ServiceSpec
from protocol.signing import sign_request
from protocol.snapshots import SnapshotRef

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_S = 30.0
PUSH_FOR_S = 120.0  # a new provider that never answers: its offer lapses (renter refunded)


@dataclass
class Pending:
    """A failover's spec still to be delivered to its new provider."""

    url: str
    payload: dict[str, object]
    until: float
    tries: int = 0


@dataclass(frozen=True)
class Failed:
    lease_id: int
    provider: str
    failed_at: int
    cap: int
    row_id: str
    spec: ServiceSpec
    inputs: dict[str, str] | None  # the renter's copy, when it left one
    snapshot_key: str | None = None  # the snapshot secret the renter left, 0x-hex
    snapshot: dict[str, object] | None = None  # the newest snapshot of /data


@dataclass
class Failover:
    """Moves failed leases' services to new providers, or ends the leases."""

    service: Service
    reporter: ServingReporter
    placer: Placer | None = None
    pending: dict[int, Pending] = field(default_factory=dict)
    _waiting: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.placer = self.placer or Placer(self.service)
        self.http = httpx.Client(timeout=PUSH_TIMEOUT_S)

    def run_once(self) -> list[int]:
        """Handle every failed lease once and deliver pending specs; the new lease ids."""
        moved: list[int] = []
        if self.service.chain is None or not self.reporter.available():
            return moved
        for failed in self.failed():
            new = self.handle(failed)
            if new is not None:
                moved.append(new)
        self.deliver()
        return moved

    def failed(self) -> list[Failed]:
        """Failed leases not moved yet whose deployment is live here."""
        with self.service.sessions() as session:
            rows = session.execute(
                select(ChainLeaseRow, ServiceRow)
                .join(ServiceRow, ServiceRow.lease_id == ChainLeaseRow.lease_id)
                .where(
                    ChainLeaseRow.state == "running",
                    ChainLeaseRow.failed_at > 0,
                    ChainLeaseRow.next_lease_id.is_(None),
                    ServiceRow.status.in_(catalog.LIVE),
                )
            ).all()
            return [
                Failed(
                    lease_id=lease.lease_id,
                    provider=lease.provider,
                    failed_at=lease.failed_at,
                    cap=int(lease.failover_cap_wei),
                    row_id=row.id,
                    spec=ServiceSpec.model_validate(row.spec),
                    inputs=row.inputs,
                    snapshot_key=row.snapshot_key,
                    snapshot=row.snapshot,
                )
                for lease, row in rows
            ]

    def handle(self, f: Failed) -> int | None:
        """Move `f` to a new provider (its new lease id), end it, or wait a round."""
        why_not = refusal(f)
        if why_not:
            self.end(f, why_not)
            return None
        assert self.placer is not None
        decision = self.placer.decide(f.spec, exclude=frozenset({f.provider}))
        placement = decision.placement
        if placement is None or placement.rate_wei_per_s > f.cap:
            reason = decision.reason or f"the best rate is above the failover cap {f.cap} wei/s"
            if time.time() - f.failed_at > self.service.settings.failover_give_up_s:
                self.end(f, f"no provider could take it: {reason}")
            elif f.lease_id not in self._waiting:
                self._waiting.add(f.lease_id)
                logger.warning(
                    "failed service waits for a provider",
                    extra={"lease_id": f.lease_id, "service": f.spec.name, "reason": reason},
                )
            return None
        row_id = self.record(f, placement)
        if row_id is None:
            return None
        try:
            new_lease = self.move(f, placement.provider, placement.rate_wei_per_s)
        except Exception:
            self.unrecord(row_id, "the failover transaction failed")
            raise
        if new_lease is None:
            self.unrecord(row_id, "the escrow refused the failover")
            return None
        self._waiting.discard(f.lease_id)
        wrapped, snapshot = self.snapshot_for(f, placement.provider, placement.endpoint, new_lease)
        payload = api.ServiceFailover(
            lease_id=new_lease,
            from_lease_id=f.lease_id,
            spec=f.spec,
            inputs=f.inputs or {},
            snapshot_key=wrapped,
            snapshot=snapshot,
        )
        self.pending[new_lease] = Pending(
            url=f"{placement.endpoint.rstrip('/')}/v1/services/failover",
            payload=payload.model_dump(mode="json"),
            until=time.time() + PUSH_FOR_S,
        )
        self.deliver()
        return new_lease

    def record(self, f: Failed, placement: Placement) -> str | None:
        """The new deployment, placed as `placement` says with its capacity reserved; its
        id (None when the provider filled up meanwhile)."""
        service, now = self.service, time.time()
        provider = placement.provider
        with service.writing(), service.sessions() as session, session.begin():
            host = session.get(ProviderRow, provider)
            was = session.get(ServiceRow, f.row_id)
            if host is None or was is None or not Placer.fits_now(host, f.spec):
                return None
            row = catalog.new_row(name=f.spec.name, renter=was.renter, spec=f.spec, now=now)
            row.status, row.provider, row.endpoint = catalog.PLACED, provider, host.endpoint
            row.rate_wei_per_s, row.failover_from = placement.rate_wei_per_s, f.lease_id
            row.distance_km, row.energy_level = placement.distance_km, placement.energy_level
            row.inputs = was.inputs  # for the next failover
            row.snapshot_key, row.snapshot = was.snapshot_key, was.snapshot
            row.reserved = True
            row.reserved_until = now + service.settings.service_reservation_s
            providers.take(session, provider, f.spec.resources)
            session.add(row)
            return row.id

    def snapshot_for(
        self, f: Failed, provider: str, endpoint: str, lease_id: int
    ) -> tuple[WrappedKey | None, SnapshotRef | None]:
        """The snapshot secret wrapped to the new provider for the new lease, and the newest
        snapshot, when the renter asked for snapshots and left the secret here (else the
        service starts with an empty /data, said in the log)."""
        if not f.spec.snapshot_s:
            return None, None
        if f.snapshot_key is None:
            logger.warning(
                "no snapshot secret left by the renter: /data starts empty",
                extra={"service": f.spec.name, "lease_id": lease_id},
            )
            return None, None
        public = self.public_key(provider, endpoint)
        if public is None:
            logger.warning(
                "the new provider says no public key of its address: /data starts empty",
                extra={"service": f.spec.name, "provider": provider},
            )
            return None, None
        secret = bytes.fromhex(f.snapshot_key[2:])
        wrapped = keywrap.wrap(secret, public, context=snapshots.context(lease_id))
        snapshot = SnapshotRef.model_validate(f.snapshot) if f.snapshot else None
        return wrapped, snapshot

    def public_key(self, provider: str, endpoint: str) -> str | None:
        """The public key `provider`'s agent publishes, if it hashes to its address."""
        try:
            key = self.http.get(f"{endpoint.rstrip('/')}/v1/health").json().get("public_key")
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        try:
            ok = isinstance(key, str) and keywrap.address_of(key).lower() == provider.lower()
        except (ValueError, ProtocolError):
            return None
        return key if ok else None

    def unrecord(self, row_id: str, reason: str) -> None:
        with self.service.writing(), self.service.sessions() as session, session.begin():
            row = session.get(ServiceRow, row_id)
            if row is not None and row.lease_id is None:
                catalog.end(session, row, status=catalog.ENDED, reason=reason, now=time.time())

    def move(self, f: Failed, provider: str, rate: int) -> int | None:
        """Send ``failover``; the new lease id, or None when the escrow refuses."""
        chain = self.service.chain
        assert chain is not None
        leases = Leases(chain.w3, chain.deployment)
        try:
            receipt = leases.failover(self.reporter.send, f.lease_id, provider, rate)
        except ContractLogicError as exc:
            name = error_name(leases.contract.abi, exc) or str(exc)
            logger.warning("failover of lease %d refused: %s", f.lease_id, name)
            if "LeaseNotRunning" not in name:
                self.end(f, f"the escrow refused the failover ({name})")
            return None
        events = leases.contract.events.LeaseFailedOver().process_receipt(receipt, errors=DISCARD)
        new_lease = int(events[0]["args"]["newLeaseId"])
        logger.warning(
            "service failed over",
            extra={
                "service": f.spec.name,
                "lease_id": f.lease_id,
                "new_lease_id": new_lease,
                "provider": provider,
                "rate_wei_per_s": rate,
            },
        )
        return new_lease

    def end(self, f: Failed, why: str) -> None:
        """``claimDownPastGrace``: paid to the failure, slashed, the rest refunded."""
        chain = self.service.chain
        assert chain is not None
        leases = Leases(chain.w3, chain.deployment)
        try:
            leases.claim_down_past_grace(self.reporter.send, f.lease_id)
        except ContractLogicError as exc:
            logger.info("lease %d not ended: %s", f.lease_id, error_name(leases.contract.abi, exc))
            return
        logger.warning(
            "failed service ended without failover: %s",
            why,
            extra={"lease_id": f.lease_id, "service": f.spec.name},
        )

    def deliver(self) -> None:
        """Send each pending spec to its new provider (dropped once taken or too old)."""
        matcher = self.service.matcher
        if matcher is None:
            return
        now = time.time()
        for lease_id, p in list(self.pending.items()):
            if now > p.until:
                logger.error(
                    "the new provider never took failed-over lease %d; its offer lapses and "
                    "the renter gets the deposit back",
                    lease_id,
                )
                del self.pending[lease_id]
                continue
            body = sign_request(matcher.account, purpose=api.SERVICE_FAILOVER, payload=p.payload)
            p.tries += 1
            try:
                r = self.http.post(p.url, json=body)
            except httpx.HTTPError as exc:
                logger.info("failover push to %s failed (%s); again next round", p.url, exc)
                continue
            if r.status_code < 300:
                del self.pending[lease_id]
            elif r.status_code < 500 and r.status_code != 409:
                logger.error("the new provider refused lease %d: %s", lease_id, r.text[:300])
                del self.pending[lease_id]
            else:
                logger.info("failover push of lease %d: HTTP %d", lease_id, r.status_code)

    def close(self) -> None:
        self.http.close()


def refusal(f: Failed) -> str:
    """Why `f` cannot be failed over ("" if it can)."""
    if f.cap <= 0:
        return "the renter agreed to no failover"
    if f.spec.inputs and f.inputs is None:
        return "its renter left no copy of its inputs for a failover"
    if is_pinned(f.spec.image):
        return "its image is the renter's own, which only the renter can grant to a provider"
    return ""
