"""The renter's services SDK: deploy a long-running container under a name, pay for it by
the second, watch it, top it up, stop it.

A deploy: the marketplace places the signed spec on one provider and says its rate per
second (``POST /v1/services``); the renter opens a lease for that provider on LeaseEscrow
with an ERC-2612 permit (one transaction: the deposit, the rate, the spec's hash); the
spec and inputs go straight to the provider, signed; the provider accepts on chain and
starts the container; the marketplace's prober sees it healthy and reports it serving;
the ingress gateway routes ``NAME.apps.<domain>`` to it. Every check that can refuse a
deploy (the name, a provider within the max rate, the deposit's minimum, the tokens) is
made before any money moves; a provider that refuses the push gets the lease closed and
the deposit back.

Usage::

    renter = Renter(account=..., marketplace_url=..., rpc_url=..., home=...)
    services = Services(renter, gateway=Gateway("http://127.0.0.1:8780"))
    up = services.deploy(spec, inputs, deposit=10**18)   # a ServiceSpec, {path: bytes}
    print(up.url)
    services.status(spec.name).left
    services.stop(spec.name)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from agents.errors import NotFoundError, RefusedError, UserError, VerificationError
from agents.image.source import provider_key
from agents.renter.client import Renter
from agents.renter.push import image_sources, pin_image
from agents.service import peer
from agents.service.gateway import Gateway
from agents.service.lease import RenterLeases
from agents.service.rates import fmt_rate
from agents.service.records import Records
from agents.service.views import Deployed, ServiceView, Stopped, TopUp, place_of
from agents.units import fmt_tokens
from protocol import keywrap, purposes, snapshots
from protocol.keywrap import WrappedKey
from protocol.leases import MIN_PREPAID_SECONDS, min_deposit
from protocol.services import ServiceSpec, ServiceState, service_spec_hash

logger = logging.getLogger(__name__)

UP_TIMEOUT_S = 180.0
DEFAULT_PREPAID_S = 3600  # the deposit when none is given: an hour at the placed rate
LIVE = ("placed", "leased", "serving", "ending")
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class Services:
    """One renter's services on the network its :class:`~agents.renter.client.Renter`
    talks to (the same key, marketplace, chain and folder)."""

    def __init__(self, renter: Renter, *, gateway: Gateway | None = None) -> None:
        self.renter = renter
        self.address = renter.address
        self.market = renter.market
        self.chain = RenterLeases(renter)
        self.gateway = gateway or Gateway()
        chain_id = renter.escrow.deployment.chain_id
        self.records = Records(renter.jobs_dir.parent.parent / "services" / str(chain_id))

    # ------------------------------------------------------------------ deploy

    def quote(self, spec: ServiceSpec) -> dict[str, Any]:
        """Where `spec` would run and its rate, nothing reserved (``rate_wei_per_s`` is
        None and ``reason`` says why when no provider can take it)."""
        return dict(self.market.post("/v1/services/quote", spec.model_dump(mode="json")))

    def deploy(
        self,
        spec: ServiceSpec,
        inputs: dict[str, bytes] | None = None,
        *,
        deposit: int | None = None,
        progress: Progress = _quiet,
        timeout_s: float = UP_TIMEOUT_S,
        failover: bool = True,
    ) -> Deployed:
        """Place, lease, push and wait until the service answers at its URL.

        `deposit` (token wei) defaults to an hour at the placed rate. With `failover`
        (the default) the lease agrees on chain that, should the service be down past the
        grace period, the marketplace may move the rest of the deposit to another
        provider at no more than the spec's ``max_rate_wei_per_s``, under the same name,
        with no signature needed then; without it the rest is refunded. `progress` hears
        each step: "placing", "opening the lease", "sending to the provider", "waiting
        for it to come up" (then the provider's states), "checking the URL".

        An image the renter pushed (``dcloud image push``) is named pinned to its digest,
        and the provider is given what it needs to pull it (and nothing else); the push
        then waits while it pulls.

        Raises:
            UserError: the name is another renter's or runs already, the deposit is under
                the lease's minimum, not enough tokens, inputs unlike the spec's, a pinned
                image the renter did not push.
            RefusedError: no provider within the max rate (the marketplace's reason), the
                provider cannot pull the renter's image (before anything is paid), the
                provider refused (the lease is closed and the deposit comes back), or the
                service did not come up in time (it keeps its lease: stop it to get the
                rest back).
        """
        inputs = inputs or {}
        _check_inputs(spec, inputs)
        spec = pin_image(self.renter.images, spec)  # the renter's own image, by digest
        self._check_name(spec.name)
        progress("placing")
        quoted = self.quote(spec)
        if quoted.get("rate_wei_per_s") is None:
            raise RefusedError(_unplaced(spec, quoted["reason"]))
        self._check_deposit(deposit, int(quoted["rate_wei_per_s"]))
        self.chain.check_tokens(deposit or min_deposit(int(quoted["rate_wei_per_s"])))
        placed = self.market.post_signed(
            "/v1/services", purpose=purposes.SERVICE_DEPLOY, payload=spec.model_dump(mode="json")
        )
        if placed["status"] != "placed":
            raise RefusedError(_unplaced(spec, placed["reason"]))
        rate = int(placed["rate_wei_per_s"])
        try:
            amount = self._check_placement(spec, placed, deposit)
            sources = image_sources(
                self.renter, spec.image, [(placed["provider"], placed["endpoint"])]
            )
            progress("opening the lease")
            lease_id = self.chain.open(
                provider=placed["provider"],
                rate=rate,
                deposit=amount,
                spec_hash=placed["spec_hash"],
                failover_cap=spec.max_rate_wei_per_s if failover else 0,
            )
        except Exception:
            self._release(spec.name)
            raise
        record = {
            "lease_id": lease_id,
            "name": spec.name,
            "spec": spec.model_dump(mode="json"),
            "provider": placed["provider"],
            "endpoint": placed["endpoint"],
            "rate_wei_per_s": rate,
            "deposit_wei": amount,
            "energy_level": placed.get("energy_level"),
            "distance_km": placed.get("distance_km"),
            "opened_at": time.time(),
        }
        self.records.save(record)
        progress("sending to the provider")
        source = sources.get(placed["provider"])
        if source is not None:
            progress(f"the provider is fetching the image ({source.size / 1e6:.1f} MB)")
        secret = os.urandom(32) if spec.snapshot_s else None
        try:
            wrapped = self._wrap_snapshot_secret(secret, placed, lease_id)
            peer.push(self.renter, record, spec, inputs, image=source, snapshot_key=wrapped)
        except RefusedError as exc:
            raise RefusedError(f"{exc}; lease {lease_id} {self._undo(record)}") from None
        progress("waiting for it to come up")
        self._wait_up(record, progress=progress, timeout_s=timeout_s)
        if failover and (inputs or secret):  # the marketplace links the lease by now
            self._leave_inputs(spec.name, lease_id, inputs, progress, secret=secret)
        progress("checking the URL")
        ok, seen = self.gateway.check(spec.name, path=_check_path(spec))
        return Deployed(
            name=spec.name,
            lease_id=lease_id,
            url=self.gateway.public_url(spec.name),
            path_url=self.gateway.path_url(spec.name),
            provider=placed["provider"],
            place=place_of(self.market, placed["provider"]),
            energy_level=placed.get("energy_level"),
            rate_wei_per_s=rate,
            deposit_wei=amount,
            reachable=ok,
            detail=seen,
        )

    def _wrap_snapshot_secret(
        self, secret: bytes | None, placed: dict[str, Any], lease_id: int
    ) -> WrappedKey | None:
        """The snapshot secret wrapped to the placed provider's key for this lease."""
        if secret is None:
            return None
        public = provider_key(self.renter.http, placed["provider"], placed["endpoint"])
        return keywrap.wrap(secret, public, context=snapshots.context(lease_id))

    def _leave_inputs(
        self,
        name: str,
        lease_id: int,
        inputs: dict[str, bytes],
        progress: Progress,
        *,
        secret: bytes | None = None,
    ) -> None:
        """Leave a copy of the inputs (and the snapshot secret) at the marketplace for a
        failover (signed); a marketplace that will not keep them is said, and the deploy
        goes on (a failover then refunds the rest of the deposit instead)."""
        payload: dict[str, Any] = {
            "name": name,
            "lease_id": lease_id,
            "inputs": {p: base64.b64encode(d).decode() for p, d in inputs.items()},
        }
        if secret is not None:
            payload["snapshot_key"] = "0x" + secret.hex()
        try:
            self.market.post_signed(
                f"/v1/services/{name}/inputs", purpose=purposes.SERVICE_INPUTS, payload=payload
            )
        except (RefusedError, NotFoundError) as exc:
            progress(f"no failover copy of the inputs ({exc}); a failover would refund instead")

    def _check_name(self, name: str) -> None:
        try:
            now = self.market.get(f"/v1/services/{name}")
        except NotFoundError:
            return
        if now["renter"].lower() != self.address.lower():
            raise UserError(
                f"the name {name} is taken: another renter deployed it first; choose another --name"
            )
        if now["status"] in LIVE and now.get("lease_id") is not None:
            raise UserError(
                f"{name} already runs under lease {now['lease_id']} ({now['status']}); stop it "
                f"first with `dcloud service stop {name}`, or choose another --name"
            )

    def _check_deposit(self, deposit: int | None, rate: int) -> None:
        least = min_deposit(rate)
        if deposit is not None and deposit < least:
            raise UserError(
                f"a deposit of {fmt_tokens(deposit)} is below this service's minimum of "
                f"{fmt_tokens(least)} ({MIN_PREPAID_SECONDS} s at {fmt_rate(rate)}); "
                "raise --deposit"
            )

    def _check_placement(
        self, spec: ServiceSpec, placed: dict[str, Any], deposit: int | None
    ) -> int:
        """The deposit to open with, once the placement checks out."""
        rate = int(placed["rate_wei_per_s"])
        if rate > spec.max_rate_wei_per_s:
            raise RefusedError(
                f"the marketplace placed {spec.name} at {fmt_rate(rate)}, above your max rate "
                f"{fmt_rate(spec.max_rate_wei_per_s)}; nothing was paid"
            )
        if placed["spec_hash"] != service_spec_hash(spec):
            raise VerificationError("the marketplace placed another spec than the one sent")
        self._check_deposit(deposit, rate)
        amount = deposit if deposit is not None else rate * DEFAULT_PREPAID_S
        self.chain.check_tokens(amount)
        return amount

    def _release(self, name: str) -> None:
        """Give back a placement we will not lease (its capacity is freed at once)."""
        try:
            self._stop_at_market(name)
        except RefusedError as exc:
            logger.warning("could not release the placement of %s: %s", name, exc)

    def _stop_at_market(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):  # nothing live there (any more)
            self.market.post_signed(
                f"/v1/services/{name}/stop", purpose=purposes.SERVICE_STOP, payload={"name": name}
            )

    def _undo(self, record: dict[str, Any]) -> str:
        """Close a lease the provider refused and take the deposit back; what happened."""
        self._release(record["name"])
        try:
            closed = self.chain.close(record["lease_id"])
        except RefusedError as exc:
            return f"could not be closed ({exc}); run `dcloud service stop {record['name']}`"
        return f"was closed: {fmt_tokens(closed.withdrawn)} came back to your wallet"

    def _wait_up(self, record: dict[str, Any], *, progress: Progress, timeout_s: float) -> None:
        """Until the provider says healthy and the marketplace routes the name to it."""
        name, lease_id = record["name"], record["lease_id"]
        after = (
            f"; see `dcloud service logs {name}`, and `dcloud service stop {name}` gets the rest "
            "of the deposit back"
        )
        end = time.monotonic() + timeout_s
        last, stage = "", "waiting for the provider"
        while True:
            agent = peer.view(self.renter, record) or {}
            state = agent.get("state")
            if state == ServiceState.STOPPED:
                why = agent.get("detail") or agent.get("last_error") or "no reason given"
                raise RefusedError(f"{name} stopped at the provider: {why}{after}")
            if state == ServiceState.HEALTHY:
                market = self.market.get(f"/v1/services/{name}")
                if market.get("route") and market.get("lease_id") == lease_id:
                    return
                stage = "healthy; waiting for the marketplace to route it"
            elif state is not None:
                err = agent.get("last_error")
                stage = f"{state} at the provider" + (f" ({err})" if err else "")
            if stage != last:
                progress(stage)
                last = stage
            if time.monotonic() > end:
                raise RefusedError(
                    f"{name} is not up after {timeout_s:.0f} s ({stage}); it keeps its lease{after}"
                )
            time.sleep(0.5)

    # ------------------------------------------------------------------ reading

    def record(self, name: str) -> dict[str, Any]:
        """The newest local record of `name`, else what the marketplace knows of it.

        Raises:
            NotFoundError: the renter has no service by that name.
        """
        rec = self.records.latest(name)
        if rec is not None:
            return self._followed(rec)
        try:
            market = self.market.get(f"/v1/services/{name}")
        except NotFoundError:
            raise NotFoundError(
                f"no service named {name}; list yours with `dcloud service ls`"
            ) from None
        if market["renter"].lower() != self.address.lower() or market.get("lease_id") is None:
            raise NotFoundError(
                f"you have no service named {name}; list yours with `dcloud service ls`"
            )
        return _record_of(market)

    def _followed(self, rec: dict[str, Any]) -> dict[str, Any]:
        """`rec`, or the record of the lease LeaseEscrow failed it over to (saved, and
        followed again), read from the chain; the new provider's endpoint is the
        marketplace's."""
        while (moved := self.chain.successor(int(rec["lease_id"]))) is not None:
            lease_id, provider = moved
            try:
                endpoint = self.market.get(f"/v1/providers/{provider}")["endpoint"]
                market = self.market.get(f"/v1/services/{rec['name']}")
            except (NotFoundError, RefusedError):
                endpoint, market = "", {}
            placed = market if market.get("lease_id") == lease_id else {}
            rec = {
                **rec,
                "lease_id": lease_id,
                "provider": provider,
                "endpoint": endpoint,
                "rate_wei_per_s": self.chain.lease(lease_id).rate_per_second,
                "energy_level": placed.get("energy_level"),
                "distance_km": placed.get("distance_km"),
                "failover_from": rec["lease_id"],
            }
            self.records.save(rec)
        return rec

    def status(self, name: str, *, ask_provider: bool = True) -> ServiceView:
        """The lease on chain, the marketplace's view and (`ask_provider`) the provider's."""
        rec = self.record(name)
        try:
            market: dict[str, Any] | None = self.market.get(f"/v1/services/{name}")
        except (NotFoundError, RefusedError):
            market = None
        if market is not None and market.get("lease_id") != rec["lease_id"]:
            market = None  # the marketplace's row is another deployment of the name
        return self._view(rec, market, ask_provider=ask_provider)

    def _view(
        self, rec: dict[str, Any], market: dict[str, Any] | None, *, ask_provider: bool
    ) -> ServiceView:
        lease = self.chain.lease(int(rec["lease_id"]))
        agent, problem = None, ""
        if ask_provider and lease.live:
            try:
                agent = peer.view(self.renter, rec)
            except RefusedError as exc:
                problem = str(exc)
        return ServiceView(
            name=rec["name"],
            record=rec,
            market=market,
            lease=lease,
            now=self.chain.now(),
            agent=agent,
            agent_problem=problem,
            url=self.gateway.public_url(rec["name"]),
            path_url=self.gateway.path_url(rec["name"]),
        )

    def ls(self, *, everything: bool = False) -> list[ServiceView]:
        """The renter's services, the newest lease of each name (live ones unless
        `everything`), from the marketplace, the local records and the chain."""
        page = self.market.get("/v1/services", renter=self.address, limit=1000)
        newest: dict[str, dict[str, Any]] = {}
        for item in page["items"]:  # newest first
            if item.get("lease_id") is not None:
                newest.setdefault(item["name"], item)
        for rec in self.records.all():  # leases the marketplace has not linked (yet)
            newest.setdefault(rec["name"], {"lease_id": rec["lease_id"]})
        views = []
        for _, item in sorted(newest.items()):
            rec = self.records.by_lease(int(item["lease_id"])) or _record_of(item)
            view = self._view(rec, item if "spec" in item else None, ask_provider=False)
            if everything or view.lease.live:
                views.append(view)
        return views

    def logs(self, name: str, *, follow: bool = False) -> Iterator[str]:
        """The service's logs from its provider; `follow` streams them as they come."""
        return peer.logs(self.renter, self.record(name), follow=follow)

    # ------------------------------------------------------------------ paying

    def top_up(self, name: str, amount: int) -> TopUp:
        """Add `amount` (token wei) to the lease's deposit, with a permit.

        Raises:
            UserError: the lease ended or ran out, a non-positive amount, not enough tokens.
        """
        rec = self.record(name)
        lease_id = int(rec["lease_id"])
        before = self.chain.lease(lease_id)
        if not before.live:
            reason = before.reason.name.lower().replace("_", " ")
            raise UserError(
                f"{name}'s lease {lease_id} has ended ({reason}); deploy it again with "
                f"`dcloud service deploy --name {name} ...`"
            )
        if before.runs_out_at and before.runs_out_at <= self.chain.now():
            raise UserError(f"{name}'s deposit ran out and its lease is ending; deploy it again")
        if amount <= 0:
            raise UserError("top up by a positive amount of tokens, e.g. 0.5")
        after = self.chain.top_up(lease_id, amount)
        return TopUp(name=name, lease_id=lease_id, before=before, after=after, now=self.chain.now())

    def stop(self, name: str) -> Stopped:
        """Stop at the marketplace (signed), close the lease on chain (the provider paid to
        this second, the rest refunded) and withdraw the refund to the wallet."""
        rec = self.record(name)
        self._stop_at_market(name)
        closed = self.chain.close(int(rec["lease_id"]))
        return Stopped(
            name=name,
            lease_id=int(rec["lease_id"]),
            lease=closed.after,
            was_live=closed.before.live,
            provider_now=closed.provider_now,
            fee_now=closed.fee_now,
            refund=closed.refund,
            withdrawn=closed.withdrawn,
        )


def _record_of(market: dict[str, Any]) -> dict[str, Any]:
    """A record built from the marketplace's row (a lease opened from another folder)."""
    return {
        "lease_id": market["lease_id"],
        "name": market["name"],
        "spec": market["spec"],
        "provider": market["provider"],
        "endpoint": market["endpoint"],
        "rate_wei_per_s": market["rate_wei_per_s"],
        "energy_level": market.get("energy_level"),
    }


def _unplaced(spec: ServiceSpec, reason: str) -> str:
    hint = "; raise --max-rate" if "max rate" in reason else ""
    return f"no provider can run {spec.name}: {reason}{hint}; nothing was paid"


def _check_path(spec: ServiceSpec) -> str:
    return spec.health.path if spec.health.kind == "http" else "/"


def _check_inputs(spec: ServiceSpec, inputs: dict[str, bytes]) -> None:
    declared = {f.path: f.sha256 for f in spec.inputs}
    if set(declared) != set(inputs):
        raise UserError(f"inputs {sorted(inputs)} differ from the spec's {sorted(declared)}")
    for path, data in inputs.items():
        if hashlib.sha256(data).hexdigest() != declared[path]:
            raise UserError(f"input {path} does not match the sha256 in the spec")
