"""The start planner: when and where a job that may wait should run to spend least on energy.

A job with a start window (``start_by``) may start now or at the start of any later hour up
to ``start_by``, at any of its candidate sites (the nearest one, and others within
``max_km`` of its origin). :func:`plan_start` picks the start and site whose expected
energy over the run is cheapest on the chosen :class:`~marketplace.energy.EnergyBasis`:

- ``price``: the cost, power x hours x the price of each hour the run overlaps;
- ``carbon``: the emissions, power x hours x each hour's grid carbon intensity;
- ``mix``: ``(1 - w) * price / mean price + w * carbon / mean carbon`` per hour (the means
  over the whole forecast, so both terms are of the same size), integrated alike.

**Runs over several hours.** A run draws its power evenly from start to end. Each hour it
overlaps contributes its overlap (in hours) x the power x that hour's figure; a run that
starts now, in the middle of an hour, pays the rest of this hour at this hour's figure.
Hours past the end of the forecast repeat its last hour (a persistence forecast), so a
long run is still compared on what is known.

**Ties** (scores equal to one part in 10^9) go to the earlier start, then the nearer site,
then the site listed first, so the answer is deterministic. A site that cannot take the job
now (``available_now=False``) may still be chosen for a later hour: the planner does not
know later capacity; whoever starts the job checks it then.

The arithmetic is in :class:`ForecastIntegral` and :func:`choose` (arrays, no I/O), which
the grid-impact study calls for every job; :func:`plan_start` wraps them for one job with
named sites, and :func:`plan_job` also asks the price source for the forecast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from marketplace.energy.levels import EnergyBasis
from marketplace.energy.sources import HOUR, Forecast, PriceSource, floor_hour, forecast
from marketplace.errors import InvalidInputError, PriceUnavailableError

__all__ = [
    "PUE",
    "WATTS_PER_CORE",
    "ForecastIntegral",
    "Site",
    "StartPlan",
    "candidate_starts",
    "choose",
    "job_power_kw",
    "plan_job",
    "plan_start",
]

logger = logging.getLogger(__name__)

WATTS_PER_CORE = 10.0
"""A busy server core with its share of memory, disks and fans, in watts."""
PUE = 1.4
"""Power usage effectiveness: a data centre's energy over its IT energy."""


def job_power_kw(
    cores: float, *, watts_per_core: float = WATTS_PER_CORE, pue: float = PUE
) -> float:
    """The power a job of ``cores`` busy cores draws at the meter, in kW."""
    return cores * watts_per_core * pue / 1000.0


@dataclass(frozen=True)
class Site:
    """A candidate site for a job: its price region and its distance from the job's origin.

    Attributes:
        region: Price region id of the site.
        km: Distance from the job's origin, km.
        available_now: Whether the site can take the job now.
        id: A label for the caller (a provider id, say); not used by the planner.
    """

    region: str
    km: float
    available_now: bool = True
    id: str = ""


@dataclass(frozen=True)
class StartPlan:
    """The chosen start and site, and the trade against starting now at the nearest site.

    Costs are in the forecast's currency (EUR for the bundled series), CO2 in grams; CO2
    figures are NaN when the source has no carbon intensity.
    """

    start: datetime
    site: int  # index into the candidate sites
    region: str
    delay_s: float
    km_added: float
    cost: float
    cost_now_nearest: float
    co2_g: float
    co2_now_nearest_g: float
    basis: str

    @property
    def saving_pct(self) -> float:
        """Energy cost saved against now at the nearest site, in percent."""
        return _saved(self.cost, self.cost_now_nearest)

    @property
    def co2_saving_pct(self) -> float:
        """CO2 saved against now at the nearest site, in percent (NaN if unknown)."""
        return _saved(self.co2_g, self.co2_now_nearest_g)


def _saved(value: float, reference: float) -> float:
    if not math.isfinite(reference) or reference == 0.0:
        return math.nan
    return 100.0 * (1.0 - value / reference)


class ForecastIntegral:
    """Running integrals over time of a forecast's price, carbon and basis index, per region.

    Times are seconds from ``forecast.start``; :meth:`over` integrates one of the three
    over ``[start, start + run)`` in hour units (so x kW gives kWh x the figure).
    """

    def __init__(
        self, fc: Forecast, basis: EnergyBasis | None = None, *, until_s: float = 0.0
    ) -> None:
        if fc.hours < 1:
            raise PriceUnavailableError("empty forecast; the source knows no hour from now")
        self.forecast = fc
        self.basis = basis or EnergyBasis()
        need = max(fc.hours, math.ceil(until_s / 3600.0) + 1)
        pad = need - fc.hours  # persistence: the last hour repeats
        price = np.pad(fc.price, ((0, 0), (0, pad)), mode="edge")
        carbon = np.pad(fc.carbon, ((0, 0), (0, pad)), mode="edge")
        w = self.basis.carbon_share
        if w > 0.0 and np.isnan(carbon).any():
            raise PriceUnavailableError(
                "the price source has no carbon intensity; plan on the basis 'price'"
            )
        if w == 0.0:
            index = price
        elif w == 1.0:
            index = carbon
        else:
            index = (1.0 - w) * price / abs(float(price.mean()) or 1.0) + w * carbon / (
                float(carbon.mean()) or 1.0
            )
        self.hours = need
        self._values = {"price": price, "carbon": carbon, "index": index}
        self._cum = {
            k: np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(v, axis=1)], axis=1)
            for k, v in self._values.items()
        }

    def _at(
        self, which: str, rows: NDArray[np.intp], t: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        h = np.clip(np.floor(t / 3600.0).astype(np.intp), 0, self.hours - 1)
        frac = t / 3600.0 - h
        return np.asarray(
            self._cum[which][rows, h] + frac * self._values[which][rows, h], dtype=np.float64
        )

    def over(
        self, which: str, rows: NDArray[np.intp], start_s: NDArray[np.float64], run_s: float
    ) -> NDArray[np.float64]:
        """Integral of ``which`` (price, carbon or index) in figure x hours, broadcast over
        ``rows`` (region rows of the forecast) and ``start_s``."""
        return self._at(which, rows, start_s + run_s) - self._at(which, rows, start_s)


def candidate_starts(now_s: float, window_s: float) -> NDArray[np.float64]:
    """The starts a plan may choose: ``now_s`` and every whole hour after it up to
    ``now_s + window_s`` (seconds on the forecast's clock)."""
    later = np.arange(math.floor(now_s / 3600.0) + 1, math.floor((now_s + window_s) / 3600.0) + 1)
    return np.concatenate([[now_s], later * 3600.0])


def choose(
    integral: ForecastIntegral,
    *,
    rows: NDArray[np.intp],
    km: NDArray[np.float64],
    available: NDArray[np.bool_],
    nearest: int,
    now_s: float,
    window_s: float,
    run_s: float,
    max_km: float | None = None,
) -> tuple[int, float] | None:
    """The (site index, start in seconds from the forecast's start) of least expected index.

    ``rows`` and ``km`` describe the candidate sites; the starts are
    :func:`candidate_starts`. ``available`` says which site can take the job: shape
    ``(sites,)`` for now only (any later hour allowed), or ``(sites, starts)`` for each
    start (a caller that books capacity ahead knows). The ``nearest`` site is allowed
    whatever ``max_km``. None when no allowed site is available at any start.
    """
    starts = candidate_starts(now_s, window_s)
    allowed = np.ones(km.shape[0], dtype=np.bool_)
    if max_km is not None:
        allowed = km <= max_km
        allowed[nearest] = True
    uniq, inverse = np.unique(rows, return_inverse=True)
    per_region = integral.over("index", uniq[:, None], starts[None, :], run_s)
    score = per_region[inverse]  # (sites, starts)
    ok = np.repeat(allowed[:, None], starts.shape[0], axis=1)
    if available.ndim == 1:
        ok[:, 0] &= available
    else:
        ok &= available
    if not ok.any():
        return None
    site_i, start_i = np.nonzero(ok)
    values = score[site_i, start_i]
    # Scores equal to one part in 1e9 of the largest tie (sums of the same prices in
    # another order differ in the last bits); then the earlier start, the nearer site,
    # the site listed first.
    top = float(np.abs(values).max()) or 1.0
    quantised = np.rint(values * (1e9 / top))
    order = np.lexsort((site_i, km[site_i], start_i, quantised))
    best = int(order[0])
    return int(site_i[best]), float(starts[start_i[best]])


def plan_start(
    *,
    sites: Sequence[Site],
    nearest: int,
    power_kw: float,
    run_s: float,
    now: datetime,
    start_by: datetime | None,
    fc: Forecast,
    basis: EnergyBasis | None = None,
    max_km: float | None = None,
) -> StartPlan | None:
    """Plan one job's start (see the module docs).

    Args:
        sites: Candidate sites; every region must be in ``fc``.
        nearest: Index in ``sites`` of the site nearest to the job's origin (the reference
            of the trade; always allowed, whatever ``max_km``).
        power_kw: The job's power draw (:func:`job_power_kw`).
        run_s: Expected run time, seconds.
        now: The current time (aware).
        start_by: The latest start; None means now only.
        fc: Forecast of the sites' regions from the hour of ``now`` or earlier.
        basis: What to minimise (price by default).
        max_km: The farthest a site may be from the origin; None = no bound.

    Returns:
        The plan, or None when no site may take the job now and the window holds no later
        hour.
    """
    if not sites:
        raise InvalidInputError("no candidate sites; pass at least the nearest one")
    if not 0 <= nearest < len(sites):
        raise InvalidInputError(f"nearest={nearest}; pass an index into the {len(sites)} sites")
    if run_s <= 0 or power_kw < 0:
        raise InvalidInputError(f"run_s={run_s}, power_kw={power_kw}; pass a positive run time")
    now_s = (now - fc.start).total_seconds()
    if now_s < 0:
        raise InvalidInputError("the forecast starts after now; forecast from the hour of now")
    window_s = max(0.0, (start_by - now).total_seconds()) if start_by is not None else 0.0
    b = basis or EnergyBasis()
    integral = ForecastIntegral(fc, b, until_s=now_s + window_s + run_s)
    rows = np.array([fc.row(s.region) for s in sites], dtype=np.intp)
    km = np.array([s.km for s in sites], dtype=np.float64)
    picked = choose(
        integral,
        rows=rows,
        km=km,
        available=np.array([s.available_now for s in sites], dtype=np.bool_),
        nearest=nearest,
        now_s=now_s,
        window_s=window_s,
        run_s=run_s,
        max_km=max_km,
    )
    if picked is None:
        return None
    site, start_s = picked

    def energy(which: str, i: int, at_s: float) -> float:
        got = integral.over(which, rows[i : i + 1], np.array([at_s]), run_s)
        return float(got[0]) * power_kw / (1000.0 if which == "price" else 1.0)

    start = now if start_s == now_s else fc.start + timedelta(seconds=start_s)
    plan = StartPlan(
        start=start,
        site=site,
        region=sites[site].region,
        delay_s=start_s - now_s,
        km_added=float(km[site] - km[nearest]),
        cost=energy("price", site, start_s),
        cost_now_nearest=energy("price", nearest, now_s),
        co2_g=energy("carbon", site, start_s),
        co2_now_nearest_g=energy("carbon", nearest, now_s),
        basis=b.kind,
    )
    logger.debug("start plan: %s", plan)
    return plan


def plan_job(
    *,
    source: PriceSource,
    sites: Sequence[Site],
    nearest: int,
    power_kw: float,
    run_s: float,
    now: datetime,
    start_by: datetime | None,
    basis: EnergyBasis | None = None,
    max_km: float | None = None,
) -> StartPlan | None:
    """:func:`plan_start` with the forecast asked of ``source`` for the window and the run."""
    first = floor_hour(now)
    end = max(now, start_by or now) + timedelta(seconds=run_s)
    hours = max(1, math.ceil((end - first) / HOUR))
    regions = sorted({s.region for s in sites})
    fc = forecast(source, regions, first, hours)
    return plan_start(
        sites=sites,
        nearest=nearest,
        power_kw=power_kw,
        run_s=run_s,
        now=now,
        start_by=start_by,
        fc=fc,
        basis=basis,
        max_km=max_km,
    )
