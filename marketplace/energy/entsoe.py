"""Adapter for the ENTSO-E Transparency Platform (European day-ahead prices and load).

Three layers, so that only the thinnest one touches the network:

- ``parse_day_ahead_prices`` / ``parse_total_load``: pure parsers of the platform's XML
  responses (``Publication_MarketDocument`` for document type A44, ``GL_MarketDocument``
  for A65), including 15-minute resolution and curve type A03 (positions left out when the
  value repeats). An ``Acknowledgement_MarketDocument`` (the platform's error reply, for
  example "No matching data found") raises :class:`~marketplace.errors.FeedRequestError`.
- ``fetch_document``: one HTTP GET with httpx, configured by :class:`EntsoeSettings`.
- :class:`EntsoePriceSource`: a :class:`~marketplace.energy.sources.PriceSource` that
  fetches a UTC day per zone on demand, caches it and answers hourly means.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketplace.energy.sources import (
    HOUR,
    BundledPriceSource,
    Forecast,
    PricePoint,
    Region,
    require_utc,
)
from marketplace.errors import (
    FeedNotConfiguredError,
    FeedParseError,
    FeedRequestError,
    PriceUnavailableError,
    UnknownRegionError,
)

__all__ = [
    "ENTSOE_ZONES",
    "EntsoePriceSource",
    "EntsoeSettings",
    "FeedSeries",
    "Interval",
    "fetch_document",
    "hourly_means",
    "parse_day_ahead_prices",
    "parse_total_load",
]

logger = logging.getLogger(__name__)

ENTSOE_ZONES: Mapping[str, str] = {
    "NO-OSL": "10YNO-1--------2",  # NO1 bidding zone
    "FR-PAR": "10YFR-RTE------C",
    "DE-FRA": "10Y1001A1001A82H",  # DE-LU bidding zone
    "ES-MAD": "10YES-REE------0",
    "PL-WAW": "10YPL-AREA-----S",
}
"""Bundled region id -> ENTSO-E bidding zone (EIC code)."""


class EntsoeSettings(BaseSettings):
    """Settings of the ENTSO-E adapter, read from ``DCLOUD_ENTSOE_*`` environment variables.

    Attributes:
        api_token: The platform's security token (``DCLOUD_ENTSOE_API_TOKEN``); request
            one from the Transparency Platform's help desk after registering.
        base_url: The RESTful API endpoint given in the platform's API user guide
            (``DCLOUD_ENTSOE_BASE_URL``). Deployment configuration, so no default here.
        timeout_s: HTTP timeout in seconds.
    """

    model_config = SettingsConfigDict(env_prefix="DCLOUD_ENTSOE_", frozen=True)

    api_token: SecretStr | None = None
    base_url: str | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Interval:
    """One value over ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime
    value: float


@dataclass(frozen=True)
class FeedSeries:
    """One parsed ``TimeSeries``: its bidding zone, unit and intervals in time order."""

    zone: str
    unit: str
    currency: str | None
    intervals: tuple[Interval, ...]


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _children(elem: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in elem if _local(c.tag) == name)


def _text(elem: ET.Element, name: str) -> str:
    c = _child(elem, name)
    if c is None or c.text is None or not c.text.strip():
        raise FeedParseError(f"<{_local(elem.tag)}> has no <{name}>; is this an ENTSO-E document?")
    return c.text.strip()


def _parse_time(text: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise FeedParseError(f"cannot read time {text!r}; expected e.g. 2024-01-14T23:00Z")


def _parse_resolution(text: str) -> timedelta:
    m = _DURATION.match(text)
    if not m or not any(m.groups()):
        raise FeedParseError(f"cannot read resolution {text!r}; expected e.g. PT60M or PT15M")
    days, hours, minutes = (int(g) if g else 0 for g in m.groups())
    res = timedelta(days=days, hours=hours, minutes=minutes)
    if res <= timedelta(0):
        raise FeedParseError(f"resolution {text!r} is not positive")
    return res


def _root(xml: str | bytes) -> ET.Element:
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FeedParseError("refusing XML with a DOCTYPE/ENTITY declaration")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise FeedParseError(f"response is not well-formed XML: {exc}") from exc
    if _local(root.tag) == "Acknowledgement_MarketDocument":
        reasons = [
            " ".join(x.text.strip() for x in r if x.text and _local(x.tag) in ("code", "text"))
            for r in _children(root, "Reason")
        ]
        raise FeedRequestError(
            "ENTSO-E refused the request (" + "; ".join(reasons) + "); check the zone code, "
            "the period and the token"
        )
    return root


def _series(root: ET.Element, *, zone_tag: str, unit_tag: str, value_tag: str) -> list[FeedSeries]:
    out: list[FeedSeries] = []
    for ts in _children(root, "TimeSeries"):
        zone = _text(ts, zone_tag)
        unit = _text(ts, unit_tag)
        cur = _child(ts, "currency_Unit.name")
        currency = cur.text.strip() if cur is not None and cur.text else None
        curve = _child(ts, "curveType")
        fill_forward = curve is not None and (curve.text or "").strip() == "A03"
        intervals: list[Interval] = []
        for period in _children(ts, "Period"):
            span = _child(period, "timeInterval")
            if span is None:
                raise FeedParseError("<Period> has no <timeInterval>")
            start, end = _parse_time(_text(span, "start")), _parse_time(_text(span, "end"))
            res = _parse_resolution(_text(period, "resolution"))
            steps = (end - start) // res
            values: dict[int, float] = {}
            for point in _children(period, "Point"):
                try:
                    pos = int(_text(point, "position"))
                    values[pos] = float(_text(point, value_tag))
                except ValueError as exc:
                    raise FeedParseError(f"bad <Point> in {zone}: {exc}") from exc
                if not 1 <= pos <= steps:
                    raise FeedParseError(f"position {pos} outside 1..{steps} in {zone}")
            last: float | None = None
            for pos in range(1, steps + 1):
                value = values.get(pos, last if fill_forward else None)
                if value is None:
                    continue
                last = value
                t0 = start + (pos - 1) * res
                intervals.append(Interval(t0, t0 + res, value))
        intervals.sort(key=lambda i: i.start)
        out.append(FeedSeries(zone, unit, currency, tuple(intervals)))
    if not out:
        raise FeedParseError(f"<{_local(root.tag)}> holds no <TimeSeries>")
    return out


def parse_day_ahead_prices(xml: str | bytes) -> list[FeedSeries]:
    """Parse a day-ahead price response (document type A44) into series per zone.

    Values are prices per MWh in the series' currency (``unit`` is ``"MWH"``).

    Raises:
        FeedRequestError: The response is the platform's acknowledgement (error) document.
        FeedParseError: The response is not a price document.
    """
    root = _root(xml)
    if _local(root.tag) != "Publication_MarketDocument":
        raise FeedParseError(f"expected Publication_MarketDocument, got {_local(root.tag)}")
    return _series(
        root,
        zone_tag="in_Domain.mRID",
        unit_tag="price_Measure_Unit.name",
        value_tag="price.amount",
    )


def parse_total_load(xml: str | bytes) -> list[FeedSeries]:
    """Parse a total-load response (document type A65) into series per zone (MW).

    Raises:
        FeedRequestError: The response is the platform's acknowledgement (error) document.
        FeedParseError: The response is not a load document.
    """
    root = _root(xml)
    if _local(root.tag) != "GL_MarketDocument":
        raise FeedParseError(f"expected GL_MarketDocument, got {_local(root.tag)}")
    return _series(
        root,
        zone_tag="outBiddingZone_Domain.mRID",
        unit_tag="quantity_Measure_Unit.name",
        value_tag="quantity",
    )


def hourly_means(intervals: Sequence[Interval]) -> dict[datetime, float]:
    """Time-weighted mean value of each UTC hour covered by ``intervals``."""
    acc: dict[datetime, tuple[float, float]] = {}
    for iv in intervals:
        hour = iv.start.replace(minute=0, second=0, microsecond=0)
        while hour < iv.end:
            overlap = (min(iv.end, hour + HOUR) - max(iv.start, hour)).total_seconds()
            if overlap > 0:
                total, secs = acc.get(hour, (0.0, 0.0))
                acc[hour] = (total + iv.value * overlap, secs + overlap)
            hour += HOUR
    return {h: total / secs for h, (total, secs) in sorted(acc.items())}


def _stamp(at: datetime) -> str:
    return require_utc(at).strftime("%Y%m%d%H%M")


def fetch_document(
    settings: EntsoeSettings,
    *,
    kind: str,
    zone: str,
    start: datetime,
    end: datetime,
    client: httpx.Client | None = None,
) -> str:
    """GET one document from the platform and return the response text.

    Args:
        settings: Token, endpoint and timeout.
        kind: ``"prices"`` (day-ahead prices, A44) or ``"load"`` (actual total load, A65).
        zone: Bidding zone EIC code, e.g. ``"10Y1001A1001A82H"``.
        start: Period start (aware; sent in UTC, minutes precision).
        end: Period end (aware).
        client: An httpx client to reuse; a short-lived one is used otherwise.

    Raises:
        FeedNotConfiguredError: No API token is configured.
        FeedRequestError: The request failed or the platform answered with an error.
    """
    if settings.api_token is None:
        raise FeedNotConfiguredError("no ENTSO-E token; set DCLOUD_ENTSOE_API_TOKEN")
    if not settings.base_url:
        raise FeedNotConfiguredError(
            "no ENTSO-E endpoint; set DCLOUD_ENTSOE_BASE_URL to the RESTful API address "
            "from the Transparency Platform's API guide"
        )
    params = {"securityToken": settings.api_token.get_secret_value()}
    params |= {"periodStart": _stamp(start), "periodEnd": _stamp(end)}
    if kind == "prices":
        params |= {"documentType": "A44", "in_Domain": zone, "out_Domain": zone}
    elif kind == "load":
        params |= {"documentType": "A65", "processType": "A16", "outBiddingZone_Domain": zone}
    else:
        raise FeedRequestError(f"unknown document kind {kind!r}; use 'prices' or 'load'")
    own = client is None
    http = client or httpx.Client(timeout=settings.timeout_s)
    try:
        response = http.get(settings.base_url, params=params)
    except httpx.HTTPError as exc:
        raise FeedRequestError(
            f"ENTSO-E request failed ({exc}); check DCLOUD_ENTSOE_BASE_URL and the network"
        ) from exc
    finally:
        if own:
            http.close()
    if response.status_code == 401:
        raise FeedRequestError("ENTSO-E rejected the token; check DCLOUD_ENTSOE_API_TOKEN")
    if response.status_code >= 400 and "Acknowledgement_MarketDocument" not in response.text:
        raise FeedRequestError(f"ENTSO-E answered HTTP {response.status_code} for {kind} {zone}")
    return response.text


Fetcher = Callable[[str, str, datetime, datetime], str]
"""``(kind, zone, start, end) -> response text``; see :func:`fetch_document`."""


class EntsoePriceSource:
    """A price source backed by ENTSO-E day-ahead prices (and actual load as demand).

    Fetches one UTC day per zone on first use and caches it. ``fetch`` replaces the HTTP
    layer (tests pass recorded responses; the default calls :func:`fetch_document`).
    """

    def __init__(
        self,
        settings: EntsoeSettings,
        *,
        zones: Mapping[str, str] = ENTSOE_ZONES,
        regions: Sequence[Region] | None = None,
        with_demand: bool = True,
        fetch: Fetcher | None = None,
    ) -> None:
        known = {r.id: r for r in (regions or BundledPriceSource().regions())}
        missing = sorted(set(zones) - set(known))
        if missing:
            raise UnknownRegionError(f"no position for regions {missing}; pass regions=[...]")
        self._regions = tuple(known[rid] for rid in zones)
        self._zones = dict(zones)
        self._with_demand = with_demand
        self._fetch: Fetcher = fetch or (
            lambda kind, zone, start, end: fetch_document(
                settings, kind=kind, zone=zone, start=start, end=end
            )
        )
        self._cache: dict[tuple[str, str, datetime], tuple[dict[datetime, float], str | None]] = {}

    def regions(self) -> Sequence[Region]:
        """The regions that have a bidding zone."""
        return self._regions

    def _day(self, kind: str, zone: str, day: datetime) -> tuple[dict[datetime, float], str | None]:
        key = (kind, zone, day)
        if key not in self._cache:
            text = self._fetch(kind, zone, day, day + timedelta(days=1))
            parse = parse_day_ahead_prices if kind == "prices" else parse_total_load
            series = [s for s in parse(text) if s.zone == zone]
            intervals = [iv for s in series for iv in s.intervals]
            currency = next((s.currency for s in series if s.currency), None)
            self._cache[key] = (hourly_means(intervals), currency)
        return self._cache[key]

    def price(self, region: str, at: datetime) -> PricePoint:
        """The day-ahead price (hourly mean) of ``region`` in the hour containing ``at``."""
        hour = require_utc(at).replace(minute=0, second=0, microsecond=0)
        price, currency = self._price(region, hour)
        demand = None
        if self._with_demand:
            demand = self._day("load", self._zones[region], hour.replace(hour=0))[0].get(hour)
        return PricePoint(region, hour, price, currency or "EUR", demand)

    def _price(self, region: str, hour: datetime) -> tuple[float, str | None]:
        if region not in self._zones:
            raise UnknownRegionError(
                f"region {region!r} has no ENTSO-E zone; known: {', '.join(sorted(self._zones))}"
            )
        prices, currency = self._day("prices", self._zones[region], hour.replace(hour=0))
        if hour not in prices:
            raise PriceUnavailableError(f"ENTSO-E has no price for {region} at {hour.isoformat()}")
        return prices[hour], currency

    def forecast(self, region_ids: Sequence[str], start: datetime, hours: int) -> Forecast:
        """Day-ahead prices of ``region_ids`` for ``hours`` hours from the hour of ``start``
        (no carbon: NaN), ending before the first hour not yet published (day-ahead
        auctions publish the next day's prices around noon CET)."""
        first = require_utc(start).replace(minute=0, second=0, microsecond=0)
        rows: list[list[float]] = []
        for h in range(hours):
            hour = first + timedelta(hours=h)
            try:
                row = [self._price(r, hour)[0] for r in region_ids]
            except (PriceUnavailableError, FeedParseError, FeedRequestError):
                if h == 0:
                    raise
                break
            rows.append(row)
        price = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(region_ids)).T.copy()
        return Forecast(tuple(region_ids), first, price, np.full(price.shape, np.nan))
