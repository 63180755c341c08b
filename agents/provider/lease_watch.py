"""Watching the provider's service leases on chain: ends, claims and reports.

:class:`LeaseWatcher` does three things for the agent's loops:

- :meth:`~LeaseWatcher.check` (every few seconds): reads each live lease; one that
  ended on chain for any reason (closed, out of funds, never served, ...) has its
  service removed; an accept that failed for a passing reason is tried again while the
  window is open, and given up after it; a service that failed for good (its /data
  overflowed) is closed on chain once it was reported serving (paid to that second).
- :meth:`~LeaseWatcher.settle` (every payout period): one ``settleMany`` for every
  running, served lease with something accrued or whose deposit ran out (which ends
  it), then the ends it caused are applied at once.
- :meth:`~LeaseWatcher.report` (every heartbeat): each running service's state, host
  port, restarts and uptime, signed, to the marketplace.
"""

from __future__ import annotations

import logging

from agents.errors import AgentError, NotFoundError
from agents.market import MarketClient
from agents.provider.lease_store import LIVE, RECEIVED, LeaseRecord
from agents.provider.leases import ServiceLeases, end_reason, wire_state
from agents.provider.services import store as service_states
from agents.wallet import TRANSIENT
from protocol import purposes
from protocol.leases import Lease, LeaseStatus
from protocol.services import ServiceReport

logger = logging.getLogger(__name__)

REPORT = purposes.SERVICE_REPORT


class LeaseWatcher:
    def __init__(self, leasing: ServiceLeases, market: MarketClient) -> None:
        self.leasing = leasing
        self.market = market
        self._unknown_at_market: set[int] = set()  # logged once each

    # ------------------------------------------------------------------ ends

    def check(self) -> None:
        """One pass over the live leases (see the module docstring)."""
        for rec in self.leasing.store.all(live=True):
            try:
                self._check(rec, self.leasing.leases.lease(rec.lease_id))
            except (AgentError, *TRANSIENT) as exc:
                logger.warning(
                    "lease check failed; retrying", extra={"lease": rec.lease_id, "error": str(exc)}
                )

    def _check(self, rec: LeaseRecord, lease: Lease) -> None:
        leasing = self.leasing
        if lease.status == LeaseStatus.ENDED:
            leasing.end(rec, f"the lease ended: {end_reason(lease.reason)}")
            return
        if lease.status == LeaseStatus.OFFERED:
            if rec.state != RECEIVED or leasing.taking(rec.lease_id):
                return
            if leasing.runner.escrow.now() > lease.accept_by:
                leasing.end(rec, "the accept window closed before the accept went through")
            else:
                leasing.accept(rec)
            return
        if lease.status != LeaseStatus.RUNNING or lease.provider != leasing.me:
            return
        if rec.state == RECEIVED:
            leasing.store.update(rec.lease_id, state=LIVE, detail="")
        srv = leasing.services.get(rec.key)
        if srv is None:
            logger.warning(
                "a live lease's service is gone; deploying it again", extra={"lease": rec.lease_id}
            )
            leasing.redeploy(rec)
        elif srv.state == service_states.FAILED and lease.serving_at:
            logger.warning(
                "closing the lease of a service that failed for good",
                extra={"lease": rec.lease_id, "error": srv.last_error},
            )
            leasing.leases.close(leasing.wallet.transact, rec.lease_id)
            leasing.end(rec, f"closed by this provider: {srv.last_error}")

    # ------------------------------------------------------------------ claims

    def settle(self) -> int:
        """Settle every served lease with something due in one transaction; returns how
        many were sent. Leases the settle ended have their services removed."""
        leasing = self.leasing
        recs = {r.lease_id: r for r in leasing.store.all(live=True) if r.state == LIVE}
        if not recs:
            return 0
        now = leasing.runner.escrow.now()
        due = []
        for lease_id in sorted(recs):
            lease = leasing.leases.lease(lease_id)
            if lease.status != LeaseStatus.RUNNING or not lease.serving_at:
                continue
            if lease.accrued(now) > 0 or now >= lease.runs_out_at:
                due.append(lease_id)
        if not due:
            return 0
        receipt = leasing.leases.settle_many(leasing.wallet.transact, due)
        logger.info("leases settled", extra={"leases": due, "tx": receipt["transactionHash"].hex()})
        for lease_id in due:
            lease = leasing.leases.lease(lease_id)
            if lease.status == LeaseStatus.ENDED:
                leasing.end(recs[lease_id], f"the lease ended: {end_reason(lease.reason)}")
        return len(due)

    # ------------------------------------------------------------------ reports

    def report(self) -> None:
        """Report each running service to the marketplace (signed); a service the
        marketplace does not know (deployed without it) is skipped quietly."""
        leasing = self.leasing
        for rec in leasing.store.all(live=True):
            srv = leasing.services.get(rec.key)
            if srv is None:
                continue
            report = ServiceReport(
                name=rec.name,
                lease_id=rec.lease_id,
                host_port=srv.host_port,
                state=wire_state(srv.state),
                restarts=srv.restarts,
                uptime_s=srv.uptime(),
                last_error=srv.last_error[:1000],
            )
            try:
                self.market.post_signed(
                    f"/v1/services/{rec.name}/report",
                    purpose=REPORT,
                    payload=report.model_dump(mode="json"),
                )
            except NotFoundError as exc:
                if rec.lease_id not in self._unknown_at_market:
                    self._unknown_at_market.add(rec.lease_id)
                    logger.info(
                        "the marketplace does not know this service; not reporting it",
                        extra={"lease": rec.lease_id, "error": str(exc)},
                    )
            except AgentError as exc:
                logger.warning(
                    "service report refused", extra={"lease": rec.lease_id, "error": str(exc)}
                )
