"""What the services SDK returns: a deployment that came up, a service's state (its
lease on chain, the marketplace's and the provider's view), a top-up, a stop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.errors import AgentError
from agents.market import MarketClient
from protocol.cities import CITIES
from protocol.leases import Lease, LeaseStatus

NAME_RULE = (
    "a service name is 3 to 40 characters: lower-case letters, digits and hyphens, "
    "starting and ending with a letter or digit (it becomes NAME.apps.DOMAIN)"
)


@dataclass(frozen=True)
class Deployed:
    """A service that came up: where it answers and what it costs."""

    name: str
    lease_id: int
    url: str  # http://NAME.apps.<domain>:<port>/
    path_url: str  # <gateway>/apps/NAME/
    provider: str
    place: str  # the bundled city nearest the provider ("" if unknown)
    energy_level: int | None
    rate_wei_per_s: int
    deposit_wei: int
    reachable: bool  # the URL answered through the gateway
    detail: str  # what the gateway check saw


@dataclass(frozen=True)
class ServiceView:
    """One service now. `market` is the marketplace's row of this lease's deployment
    (None if it does not know it), `agent` the provider's ``ProviderService`` (None when
    not asked, or unreachable: `agent_problem` says why)."""

    name: str
    record: dict[str, Any]
    market: dict[str, Any] | None
    lease: Lease
    now: int
    agent: dict[str, Any] | None
    agent_problem: str
    url: str
    path_url: str

    @property
    def lease_id(self) -> int:
        return self.lease.lease_id

    @property
    def spent(self) -> int:
        """Paid to the provider plus accrued and not yet settled (fees included)."""
        return self.lease.paid + self.lease.accrued(self.now)

    @property
    def left(self) -> int:
        """The deposit not yet spent (refunded if the lease ended)."""
        if self.lease.status == LeaseStatus.ENDED:
            return 0
        return max(0, self.lease.deposit - self.spent)

    @property
    def runs_out_at(self) -> int:
        """When the deposit runs out (0 unless running)."""
        return self.lease.runs_out_at

    @property
    def state(self) -> str:
        """The service's state: the provider's word when asked, else the marketplace's
        last report, else the lease's."""
        if self.lease.status == LeaseStatus.ENDED:
            return "ended: " + self.lease.reason.name.lower().replace("_", " ")
        if self.agent is not None:
            return str(self.agent.get("state"))
        health = (self.market or {}).get("health") or {}
        if health.get("state"):
            return str(health["state"])
        return "offered" if self.lease.status == LeaseStatus.OFFERED else "running"

    @property
    def uptime_s(self) -> float:
        source = self.agent or (self.market or {}).get("health") or {}
        return float(source.get("uptime_s") or 0)

    @property
    def restarts(self) -> int:
        source = self.agent or (self.market or {}).get("health") or {}
        return int(source.get("restarts") or 0)


@dataclass(frozen=True)
class TopUp:
    name: str
    lease_id: int
    before: Lease
    after: Lease
    now: int


@dataclass(frozen=True)
class Stopped:
    """What a stop did: what the provider got in all and now, what came back."""

    name: str
    lease_id: int
    lease: Lease  # after the stop
    was_live: bool  # False: the lease had ended already (nothing closed now)
    provider_now: int  # credited to the provider by this close, after the fee
    fee_now: int
    refund: int  # the deposit's rest, credited to the renter by this close
    withdrawn: int  # LeaseEscrow credit pulled into the wallet (the refund, earlier ones)


def nearest_city(lat: float, lon: float) -> str:
    """The bundled city nearest (lat, lon), by great-circle distance."""

    def dist(c: Any) -> float:
        p1, p2 = math.radians(lat), math.radians(c.lat)
        dp, dl = p2 - p1, math.radians(c.lon - lon)
        a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * math.asin(min(1.0, math.sqrt(a)))

    return str(min(CITIES, key=dist).name)


def place_of(market: MarketClient, provider: str) -> str:
    """The provider's nearest city, lower case ("oslo"); "" if the marketplace cannot say."""
    try:
        loc = market.get(f"/v1/providers/{provider}")["location"]
        return nearest_city(float(loc["lat"]), float(loc["lon"])).lower()
    except (AgentError, KeyError, TypeError, ValueError):
        return ""
