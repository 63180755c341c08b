"""Electricity price sources: the interface, forecasts and the bundled offline default.

A :class:`PriceSource` answers "what does electricity cost in region R at time T" with a
:class:`PricePoint` (price per MWh, demand in MW and grid carbon intensity in gCO2/kWh when
the source knows them). Sources are small, swappable objects: the bundled synthetic series
(:class:`BundledPriceSource`) works offline, and adapters such as
:class:`marketplace.energy.entsoe.EntsoePriceSource` read real feeds.

:func:`forecast` answers the coming hours of several regions at once as a
:class:`Forecast` (arrays of price and carbon per region and hour). A source may answer it
itself with a ``forecast`` method of the same signature (the bundled series slices its
arrays; ENTSO-E reads day-ahead prices); otherwise it is asked hour by hour, and the
forecast ends at the first hour the source has no price for.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from marketplace.errors import InvalidTimeError, PriceUnavailableError, UnknownRegionError
from marketplace.geo import to_xyz_km, validate_location

__all__ = [
    "BundledPriceSource",
    "Forecast",
    "PricePoint",
    "PriceSource",
    "Region",
    "floor_hour",
    "forecast",
    "nearest_region",
    "nearest_region_indices",
    "price_at_location",
    "require_utc",
]

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
"""One hour, the resolution of bundled series and levels."""


@dataclass(frozen=True, slots=True)
class Region:
    """A price region (a grid zone) and a representative position in it.

    Attributes:
        id: Stable identifier, for example ``"DE-FRA"``.
        name: Human-readable name.
        continent: Continent, for display.
        lat: Latitude of a representative city, degrees.
        lon: Longitude of a representative city, degrees.
        utc_offset_hours: Fixed offset of local time, used to shape daily cycles.
    """

    id: str
    name: str
    continent: str
    lat: float
    lon: float
    utc_offset_hours: float = 0.0

    def __post_init__(self) -> None:
        validate_location(self.lat, self.lon)


@dataclass(frozen=True, slots=True)
class PricePoint:
    """The electricity price of one region for one interval.

    Attributes:
        region: Region id.
        start: Start of the interval (UTC, aware).
        price: Price per MWh in ``currency`` (may be negative).
        currency: ISO currency code of ``price``.
        demand_mw: Demand (load) in MW over the interval, or None when unknown.
        carbon_g_kwh: Grid carbon intensity (gCO2 per kWh) over the interval, or None.
    """

    region: str
    start: datetime
    price: float
    currency: str = "EUR"
    demand_mw: float | None = None
    carbon_g_kwh: float | None = None


@dataclass(frozen=True)
class Forecast:
    """Price and carbon intensity of several regions over consecutive hours.

    Attributes:
        region_ids: The regions, in the order of the arrays' rows.
        start: The first hour (a UTC hour start).
        price: Shape ``(regions, hours)``, per MWh.
        carbon: Shape ``(regions, hours)``, gCO2/kWh; NaN where the source has no figure.
    """

    region_ids: tuple[str, ...]
    start: datetime
    price: NDArray[np.float64]
    carbon: NDArray[np.float64]

    @property
    def hours(self) -> int:
        """How many hours the forecast covers (from ``start``)."""
        return int(self.price.shape[1])

    def row(self, region: str) -> int:
        """The row of ``region`` in the arrays."""
        try:
            return self.region_ids.index(region)
        except ValueError:
            raise UnknownRegionError(
                f"region {region!r} is not in this forecast; ask for it in region_ids"
            ) from None


@runtime_checkable
class PriceSource(Protocol):
    """Anything that can tell the electricity price of a region at a time.

    Contract: ``price`` takes an aware datetime, returns the point whose interval contains
    it, raises :class:`~marketplace.errors.UnknownRegionError` for a region it does not
    know and :class:`~marketplace.errors.PriceUnavailableError` when it has no figure for
    that time. ``regions`` lists every region it can answer for.
    """

    def regions(self) -> Sequence[Region]:
        """Every region this source can price."""
        ...

    def price(self, region: str, at: datetime) -> PricePoint:
        """The price of ``region`` in the interval containing ``at``."""
        ...


def require_utc(at: datetime) -> datetime:
    """Return ``at`` in UTC; raise :class:`InvalidTimeError` if it is naive."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidTimeError(
            f"datetime {at.isoformat()} has no timezone; pass an aware one, e.g. datetime.now(UTC)"
        )
    return at.astimezone(UTC)


def floor_hour(at: datetime) -> datetime:
    """The start of the UTC hour containing ``at``."""
    return require_utc(at).replace(minute=0, second=0, microsecond=0)


def forecast(
    source: PriceSource, region_ids: Sequence[str], start: datetime, hours: int
) -> Forecast:
    """Price and carbon of ``region_ids`` for ``hours`` hours from the hour of ``start``.

    Uses ``source.forecast`` when the source has one; otherwise asks ``source.price`` hour
    by hour. Either way the forecast ends before the first hour the source has no price
    for; :class:`PriceUnavailableError` when it knows not even the first.
    """
    if hours < 1:
        raise InvalidTimeError(f"hours={hours}; ask for 1 or more")
    own = getattr(source, "forecast", None)
    if callable(own):
        fc = own(region_ids, start, hours)
        if not isinstance(fc, Forecast):
            raise PriceUnavailableError(f"{type(source).__name__}.forecast returned {fc!r}")
        return fc
    first = floor_hour(start)
    prices: list[list[float]] = []
    carbon: list[list[float]] = []
    for h in range(hours):
        try:
            points = [source.price(r, first + h * HOUR) for r in region_ids]
        except PriceUnavailableError:
            if h == 0:
                raise
            break
        prices.append([p.price for p in points])
        carbon.append([math.nan if p.carbon_g_kwh is None else p.carbon_g_kwh for p in points])
    return Forecast(
        tuple(region_ids), first, np.asarray(prices).T.copy(), np.asarray(carbon).T.copy()
    )


def nearest_region_indices(
    regions: Sequence[Region], lat: NDArray[np.float64], lon: NDArray[np.float64]
) -> NDArray[np.intp]:
    """Index into ``regions`` of the region nearest to each location (great-circle).

    Ties go to the region listed first.
    """
    if not regions:
        raise UnknownRegionError("no regions to choose from; the price source lists none")
    points = to_xyz_km(lat, lon)
    centres = to_xyz_km([r.lat for r in regions], [r.lon for r in regions])
    best = np.full(points.shape[0], np.inf)
    best_i = np.zeros(points.shape[0], dtype=np.intp)
    for i, c in enumerate(centres):
        d = np.sum((points - c) ** 2, axis=1)
        closer = d < best
        best[closer] = d[closer]
        best_i[closer] = i
    return best_i


def nearest_region(regions: Sequence[Region], lat: float, lon: float) -> Region:
    """The region nearest to a location (great-circle distance; ties to the first listed)."""
    validate_location(lat, lon)
    i = nearest_region_indices(regions, np.array([lat]), np.array([lon]))[0]
    return regions[int(i)]


def price_at_location(source: PriceSource, lat: float, lon: float, at: datetime) -> PricePoint:
    """The price at the region of ``source`` nearest to a location."""
    return source.price(nearest_region(source.regions(), lat, lon).id, at)


@dataclass(frozen=True)
class _Bundle:
    regions: tuple[Region, ...]
    start: datetime
    hours: int
    prices: dict[str, NDArray[np.float64]]
    demand: dict[str, NDArray[np.float64]]
    carbon: dict[str, NDArray[np.float64]]


def _read_text(name: str, folder: str | None = None) -> str:
    """A series file: the bundled one, or the one in `folder` (the same format)."""
    if folder is not None:
        try:
            return (Path(folder) / name).read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceUnavailableError(
                f"cannot read {name} in the energy series folder {folder} ({exc}); it needs "
                "regions.csv, prices.csv and carbon.csv in the bundled format"
            ) from None
    return (resources.files("marketplace.energy") / "data" / name).read_text(encoding="utf-8")


@cache
def _load_bundle(folder: str | None = None) -> _Bundle:
    regions = tuple(
        Region(
            id=row["id"],
            name=row["name"],
            continent=row["continent"],
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            utc_offset_hours=float(row["utc_offset_hours"]),
        )
        for row in csv.DictReader(io.StringIO(_read_text("regions.csv", folder)))
    )
    times: list[str] = []
    prices: dict[str, list[float]] = {r.id: [] for r in regions}
    demand: dict[str, list[float]] = {r.id: [] for r in regions}
    for row in csv.DictReader(io.StringIO(_read_text("prices.csv", folder))):
        if not times or times[-1] != row["timestamp"]:
            times.append(row["timestamp"])
        prices[row["region"]].append(float(row["price_eur_mwh"]))
        demand[row["region"]].append(float(row["demand_mw"]))
    carbon: dict[str, list[float]] = {r.id: [] for r in regions}
    for row in csv.DictReader(io.StringIO(_read_text("carbon.csv", folder))):
        carbon[row["region"]].append(float(row["carbon_g_kwh"]))
    start = datetime.fromisoformat(times[0].replace("Z", "+00:00"))
    hours = len(times)
    for rid in prices:
        if len(prices[rid]) != hours or len(carbon[rid]) != hours:
            raise PriceUnavailableError(f"bundled data for {rid} is incomplete; regenerate it")
    logger.debug("loaded bundled prices: %d regions x %d hours", len(regions), hours)
    return _Bundle(
        regions=regions,
        start=start,
        hours=hours,
        prices={k: np.asarray(v) for k, v in prices.items()},
        demand={k: np.asarray(v) for k, v in demand.items()},
        carbon={k: np.asarray(v) for k, v in carbon.items()},
    )


class BundledPriceSource:
    """The offline default: synthetic hourly prices, demand and carbon intensity bundled
    with the package.

    The series covers 14 days (two whole weeks, starting on a Monday). With ``cyclic=True``
    (the default) any time maps onto the same hour of the same weekday inside those two
    weeks, so the source answers for any date; with ``cyclic=False`` times outside the
    period raise :class:`PriceUnavailableError`. See ``data/README.md`` for how the
    figures were shaped. ``folder`` names a folder of the same three files (regions.csv,
    prices.csv, carbon.csv) to use instead (``DCLOUD_ENERGY_SERIES_DIR``).
    """

    def __init__(self, *, cyclic: bool = True, folder: str | None = None) -> None:
        self._bundle = _load_bundle(folder)
        self._cyclic = cyclic
        self._by_id = {r.id: r for r in self._bundle.regions}

    @property
    def period(self) -> tuple[datetime, datetime]:
        """First hour and the end (exclusive) of the bundled series."""
        b = self._bundle
        return b.start, b.start + b.hours * HOUR

    def regions(self) -> Sequence[Region]:
        """The bundled regions."""
        return self._bundle.regions

    def _hour_index(self, at: datetime) -> int:
        b = self._bundle
        offset = (floor_hour(at) - b.start) // HOUR
        if self._cyclic:
            return int(offset % b.hours)
        if not 0 <= offset < b.hours:
            start, end = self.period
            raise PriceUnavailableError(
                f"{at.isoformat()} is outside the bundled period {start.isoformat()} .. "
                f"{end.isoformat()}; use cyclic=True to repeat the series"
            )
        return int(offset)

    def _check(self, region: str) -> None:
        if region not in self._by_id:
            raise UnknownRegionError(
                f"unknown region {region!r}; known regions: {', '.join(sorted(self._by_id))}"
            )

    def price(self, region: str, at: datetime) -> PricePoint:
        """The bundled price, demand and carbon of ``region`` in the hour containing ``at``."""
        self._check(region)
        i = self._hour_index(at)
        price = float(self._bundle.prices[region][i])
        demand = float(self._bundle.demand[region][i])
        return PricePoint(
            region=region,
            start=floor_hour(at),
            price=price,
            currency="EUR",
            demand_mw=demand if math.isfinite(demand) else None,
            carbon_g_kwh=float(self._bundle.carbon[region][i]),
        )

    def forecast(self, region_ids: Sequence[str], start: datetime, hours: int) -> Forecast:
        """The next ``hours`` hours from the hour of ``start`` (see :func:`forecast`): the
        series itself, as if it were known ahead (without ``cyclic``, cut at its end)."""
        for r in region_ids:
            self._check(r)
        b = self._bundle
        first = self._hour_index(start)
        if self._cyclic:
            idx = (first + np.arange(hours)) % b.hours
        else:
            idx = np.arange(first, min(first + hours, b.hours))
        price = np.zeros((len(region_ids), len(idx)))
        carbon = np.zeros((len(region_ids), len(idx)))
        for row, r in enumerate(region_ids):
            price[row] = b.prices[r][idx]
            carbon[row] = b.carbon[r][idx]
        return Forecast(tuple(region_ids), floor_hour(start), price, carbon)
