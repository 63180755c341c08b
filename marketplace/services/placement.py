"""Where a service runs: the energy-weighted match jobs use, over the coming hours.

A service is a long-lived reservation, so the energy level that ranks providers is each
region's mean level over the next ``DCLOUD_SERVICE_FORECAST_HOURS`` hours, as far as the
price source knows them (the bundled series and ENTSO-E's day-ahead prices reach ahead;
hours a source cannot price are left out, down to the current hour alone). The ranking
itself is the jobs' :class:`~marketplace.matching.ProviderIndex` with the same weight and
scorer, over the same provider records (free capacity net of every reservation).

The provider's ask per CPU-second times the service's CPU, rounded up, is the rate per
second; only providers whose rate stays within the spec's ``max_rate_wei_per_s`` are
eligible. A service nobody can take gets the reason jobs get
(:func:`~marketplace.compute.unmatched.explain_unmatched`), worded per second.

A deployment of several containers is placed whole or not at all: its spec's resources
are the sum of its containers' (``protocol.services``), so the provider must have room for
all of them at once, and it must hold the images of the containers beside the main one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from marketplace.compute import images, providers
from marketplace.compute.images import ImagePull
from marketplace.compute.scheduler import index_fresh, prefer_regions
from marketplace.compute.unmatched import explain_unmatched
from marketplace.energy.sources import floor_hour
from marketplace.errors import InvalidInputError
from marketplace.matching import JobRequest, Provider, ProviderIndex, Resources, unit_budget_wei
from marketplace.service import Service
from marketplace.store.models import ProviderRow
from protocol.schemas import JobSpec
from protocol.services import ServiceSpec

logger = logging.getLogger(__name__)

_EPS = 1e-9


@dataclass(frozen=True)
class Placement:
    """The provider chosen for a service and what it will cost per second."""

    provider: str
    endpoint: str
    distance_km: float
    energy_level: int
    rate_wei_per_s: int
    pull: ImagePull | None = None  # what it must pull first (None: it holds the image)


@dataclass(frozen=True)
class Decision:
    """A placement, or the reason there is none; `basis` says which energy levels ranked."""

    placement: Placement | None
    reason: str
    basis: str


def rate_of(price_per_cpu_s: int, cpu: float) -> int:
    """The rate per second a provider asking `price_per_cpu_s` charges for `cpu` cores
    (rounded up; at least 1 wei, as a lease needs a rate)."""
    return max(1, math.ceil(price_per_cpu_s * cpu))


def request_of(spec: ServiceSpec, pull: ImagePull | None = None) -> JobRequest:
    """The matching request: the service's demand, the highest ask per CPU-second whose
    rate stays within its ``max_rate_wei_per_s``, and its image: required (an offered
    one) or, with the `pull` of a renter's image, preferred (the others pay the pull)."""
    r = spec.resources
    return JobRequest(
        lat=spec.origin.lat,
        lon=spec.origin.lon,
        resources=Resources(cpu=r.cpu, memory_mb=r.memory_mb, gpu=r.gpu, disk_mb=r.disk_mb),
        image=spec.image if pull is None else None,
        max_price_wei=unit_budget_wei(spec.max_rate_wei_per_s, cpu=r.cpu, duration_s=1),
        id=spec.name,
        prefer_image=None if pull is None else pull.digest,
        pull_km=0.0 if pull is None else pull.km,
    )


def forecast_levels(
    service: Service, *, hours: int, at: datetime | None = None
) -> tuple[dict[str, int], str]:
    """Each region's mean energy level over the next `hours` hours (rounded), and a
    sentence saying what the mean covers."""
    known = service.grid.levels_ahead(hours, floor_hour(at or datetime.now(UTC)))
    if len(known) == 1:
        return known[0], "energy level now (the price source has no forecast)"
    levels = {rid: round(sum(k[rid] for k in known) / len(known)) for rid in known[0]}
    return levels, f"mean energy level over the next {len(known)} h"


def check_regions(service: Service, spec: ServiceSpec) -> None:
    if spec.regions:
        unknown = sorted(set(spec.regions) - service.grid.region_ids())
        if unknown:
            known = ", ".join(sorted(service.grid.region_ids()))
            raise InvalidInputError(f"unknown regions {unknown}; use some of: {known}")


def lacks_images(provider: Provider, spec: ServiceSpec) -> list[str]:
    """The images of the deployment's other containers that `provider` does not hold (the
    main container's own image is matched, or pulled, as a single service's is)."""
    held = provider.images
    lacking = []
    for image in sorted({c.image for c in spec.containers} - {spec.image}):
        digest = images.pinned_digest(image)
        if (digest or image) not in held:
            lacking.append(image)
    return lacking


class Placer:
    """Ranks providers for services; one per process (its index is cached)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._index: ProviderIndex | None = None
        self._key: tuple[int, datetime] | None = None
        self._built_at = 0.0
        self._capacity = -1
        self._basis = ""
        self.records: dict[str, Provider] = {}
        self.endpoints: dict[str, str] = {}
        self.regions: dict[str, str] = {}
        self.unstaked: frozenset[str] = frozenset()

    def decide(self, spec: ServiceSpec, *, exclude: frozenset[str] = frozenset()) -> Decision:
        """The best provider for `spec` among those with room now, but those in `exclude`
        (reserves nothing)."""
        check_regions(self.service, spec)
        with self._lock:
            index = self._fresh_index()
            records, basis = self.records, self._basis
            endpoints, regions, unstaked = self.endpoints, self.regions, self.unstaked
        settings = self.service.settings
        pull = images.pull_of(spec.image, spec.image_bytes, settings)
        matches = index.query(request_of(spec, pull), k=settings.candidates_per_job)
        if spec.regions:
            matches = prefer_regions(matches, set(spec.regions), regions)
        matches = [m for m in matches if m.provider_id not in exclude]
        if not matches:
            return Decision(None, self._explain(spec, records, unstaked), basis)
        missing = {m.provider_id: lacks_images(records[m.provider_id], spec) for m in matches}
        matches = [m for m in matches if not missing[m.provider_id]]
        if not matches:
            lacking = sorted({i for held in missing.values() for i in held})
            return Decision(
                None,
                f"no provider with room holds the images of your other containers "
                f"({', '.join(lacking)}); name images providers offer (GET /v1/providers "
                "lists them)",
                basis,
            )
        m = matches[0]
        placement = Placement(
            provider=m.provider_id,
            endpoint=endpoints.get(m.provider_id, ""),
            distance_km=m.distance_km,
            energy_level=m.energy_level,
            rate_wei_per_s=rate_of(records[m.provider_id].price_wei, spec.resources.cpu),
            pull=pull if images.pullers(pull, records, [m.provider_id]) else None,
        )
        return Decision(placement, "", basis)

    @staticmethod
    def fits_now(row: ProviderRow, spec: ServiceSpec) -> bool:
        """Whether the provider's free capacity in the database still holds `spec`."""
        r = spec.resources
        return (
            r.cpu <= row.free_cpu + _EPS
            and r.memory_mb <= row.free_memory_mb
            and r.gpu <= row.free_gpu
            and r.disk_mb <= row.free_disk_mb
        )

    def _explain(
        self, spec: ServiceSpec, records: dict[str, Provider], unstaked: frozenset[str]
    ) -> str:
        # The same stages as a job's: a one-second job whose budget is the rate.
        job = JobSpec(
            image=spec.image,
            resources=spec.resources,
            time_limit_s=1,
            max_price_wei=spec.max_rate_wei_per_s,
            origin=spec.origin,
        )
        reason = explain_unmatched(job, placed=0, providers=records, unstaked=unstaked)
        if reason.startswith("the cheapest ask"):
            reason = reason.replace(" for 1 s), above your max price", "), above your max rate")
            reason += " per second"
        return reason.replace("other jobs in this batch", "other work")

    def _fresh_index(self) -> ProviderIndex:
        service = self.service
        hour = floor_hour(datetime.now(UTC))
        key = (service.providers_version, hour)
        capacity = service.capacity_version
        if (
            self._index is not None
            and self._key is not None
            and self._key[1] == hour
            and index_fresh(
                service, version=self._key[0], capacity=self._capacity, built_at=self._built_at
            )
        ):
            return self._index
        levels, self._basis = forecast_levels(
            service, hours=service.settings.service_forecast_hours
        )
        with service.sessions() as session:
            snap = providers.snapshot(
                session,
                settings=service.settings,
                levels=levels,
                stake_verified=service.stake_verified,
            )
        self.endpoints, self.regions, self.unstaked = snap.endpoints, snap.regions, snap.unstaked
        records = snap.records
        self.records = {p.id: p for p in records}
        self._index = ProviderIndex(records, weight_km=service.settings.energy_weight_km)
        self._key, self._built_at = key, time.monotonic()
        self._capacity = capacity
        return self._index
