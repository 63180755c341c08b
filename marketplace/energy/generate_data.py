"""Generate the bundled synthetic electricity series (``data/regions.csv``, ``data/prices.csv``,
``data/carbon.csv``).

Run from the repository root to rewrite the files (the output is deterministic)::

    python -m marketplace.energy.generate_data

The figures are synthetic, not measurements. See ``data/README.md`` for how they are shaped.
Only the standard library is used so the output does not depend on numpy's generators.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = [
    "CARBON_SPECS",
    "DAYS",
    "REGION_SPECS",
    "SEED",
    "START",
    "CarbonSpec",
    "RegionSpec",
    "main",
    "render",
]

logger = logging.getLogger(__name__)

SEED = 20250106
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday, so the 14 days are two whole weeks
DAYS = 14
WEEKEND_DEMAND = 0.88


@dataclass(frozen=True)
class RegionSpec:
    """A region and the parameters that shape its synthetic series."""

    id: str
    name: str
    continent: str
    lat: float
    lon: float
    utc_offset_hours: float
    base_price: float  # mean price level, EUR/MWh-equivalent
    amplitude: float  # how strongly price follows net load
    solar_share: float  # midday solar dip in net load (0 = none)
    volatility: float  # std of the AR(1) noise, as a fraction of base_price
    spike_prob: float  # chance per evening hour of a scarcity spike
    base_demand_mw: float


_SPEC_TABLE = """
id    |name                 |continent    |   lat|    lon|utc|base| amp|solar| vol|spike|demand
NO-OSL|Oslo (NO1)           |Europe       | 59.91|  10.75|  1|  42|0.25| 0.00|0.04|0.000|  4500
FR-PAR|Paris (FR)           |Europe       | 48.86|   2.35|  1|  78|0.60| 0.08|0.06|0.002| 60000
DE-FRA|Frankfurt (DE-LU)    |Europe       | 50.11|   8.68|  1|  92|0.90| 0.30|0.10|0.005| 55000
ES-MAD|Madrid (ES)          |Europe       | 40.42|  -3.70|  1|  68|0.90| 0.45|0.10|0.002| 28000
PL-WAW|Warsaw (PL)          |Europe       | 52.23|  21.01|  1| 108|0.50| 0.10|0.06|0.003| 18000
GB-LON|London (GB)          |Europe       | 51.51|  -0.13|  0|  98|0.70| 0.05|0.08|0.004| 32000
US-CAL|San Francisco (CAISO)|North America| 37.77|-122.42| -8|  62|1.00| 0.55|0.10|0.004| 26000
US-TEX|Dallas (ERCOT)       |North America| 32.78| -96.80| -6|  44|0.80| 0.20|0.15|0.010| 45000
US-NYC|New York (NYISO)     |North America| 40.71| -74.01| -5|  72|0.70| 0.03|0.08|0.005| 18000
CA-QC |Montreal (Quebec)    |North America| 45.50| -73.57| -5|  32|0.20| 0.00|0.03|0.000| 30000
BR-SP |Sao Paulo (SE/CO)    |South America|-23.55| -46.63| -3|  36|0.30| 0.10|0.05|0.001| 40000
CL-SCL|Santiago (SEN)       |South America|-33.45| -70.67| -3|  52|1.00| 0.50|0.08|0.002|  9000
ZA-JNB|Johannesburg (ZA)    |Africa       |-26.20|  28.05|  2|  82|0.60| 0.08|0.10|0.008| 27000
IN-BOM|Mumbai (IN-W)        |Asia         | 19.08|  72.88|5.5|  70|0.60| 0.25|0.08|0.004| 60000
SG-SIN|Singapore (SG)       |Asia         |  1.35| 103.82|  8| 125|0.25| 0.03|0.05|0.002|  6500
JP-TYO|Tokyo (JP)           |Asia         | 35.68| 139.69|  9| 112|0.50| 0.20|0.06|0.003| 40000
AU-SYD|Sydney (NSW)         |Oceania      |-33.87| 151.21| 11|  88|1.10| 0.40|0.12|0.008|  8000
NZ-AKL|Auckland (NZ)        |Oceania      |-36.85| 174.76| 13|  70|0.40| 0.05|0.06|0.002|  4500
"""


def _rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")] for line in table.strip().splitlines()[1:]]


def _parse_specs(table: str) -> tuple[RegionSpec, ...]:
    return tuple(RegionSpec(r[0], r[1], r[2], *(float(x) for x in r[3:])) for r in _rows(table))


REGION_SPECS: tuple[RegionSpec, ...] = _parse_specs(_SPEC_TABLE)


@dataclass(frozen=True)
class CarbonSpec:
    """The parameters that shape a region's synthetic carbon-intensity series."""

    id: str
    mean_g_kwh: float  # annual mean intensity of generation, gCO2/kWh (see data/README.md)
    swing: float  # relative change of intensity per unit of net load above its mean
    wind: float  # std of the slow (rho 0.95/h) relative anomaly: wind and imports


# mean: rounded annual means of each grid's generation (data/README.md says from where).
# swing: how much the fuel at the margin follows net load: high where gas or coal plants
# ramp against solar and evening peaks (California, Spain, Chile, France's peakers), low
# where one fuel runs flat out all day (coal in Poland, South Africa; gas in Singapore).
_CARBON_TABLE = """
id    |mean|swing|wind
NO-OSL|  30| 0.30|0.05
FR-PAR|  56| 1.20|0.10
DE-FRA| 381| 0.80|0.20
ES-MAD| 174| 1.20|0.20
PL-WAW| 662| 0.20|0.08
GB-LON| 238| 0.90|0.25
US-CAL| 220| 1.30|0.08
US-TEX| 376| 0.60|0.20
US-NYC| 231| 0.60|0.05
CA-QC |   2| 0.50|0.05
BR-SP |  98| 0.80|0.10
CL-SCL| 290| 1.20|0.05
ZA-JNB| 709| 0.15|0.03
IN-BOM| 713| 0.30|0.05
SG-SIN| 417| 0.05|0.00
JP-TYO| 485| 0.40|0.05
AU-SYD| 680| 0.50|0.05
NZ-AKL| 100| 0.90|0.10
"""

CARBON_SPECS: tuple[CarbonSpec, ...] = tuple(
    CarbonSpec(r[0], float(r[1]), float(r[2]), float(r[3])) for r in _rows(_CARBON_TABLE)
)


def _demand_shape(hour: float) -> float:
    """Daily load shape in local time: night trough, morning and evening peaks."""
    morning = 0.18 * math.exp(-(((hour - 9.0) / 2.5) ** 2))
    evening = 0.28 * math.exp(-(((hour - 19.0) / 2.5) ** 2))
    daytime = 0.08 if 7.0 <= hour <= 22.0 else 0.0
    return 0.7 + morning + evening + daytime


def _solar(hour: float) -> float:
    """Solar output in local time, 0 at night, 1 at solar noon (sunrise 06:30, sunset 18:30)."""
    return max(0.0, math.sin(math.pi * (hour - 6.5) / 12.0))


def _region_rows(
    spec: RegionSpec, rng: random.Random
) -> list[tuple[datetime, float, float, float]]:
    """Hourly (time, price, demand, net load shape); the net load also shapes carbon."""
    rows: list[tuple[datetime, float, float, float]] = []
    weather = 0.0  # slow multiplicative demand anomaly (temperature), AR(1)
    noise = 0.0  # fast price noise, AR(1)
    cloud = 1.0
    for t in range(DAYS * 24):
        at = START + timedelta(hours=t)
        local = at + timedelta(hours=spec.utc_offset_hours)
        hour = local.hour + local.minute / 60.0
        if t == 0 or local.hour == 0:
            cloud = rng.uniform(0.4, 1.0)  # one cloudiness draw per local day
        weather = 0.97 * weather + rng.gauss(0.0, 0.012)
        noise = 0.7 * noise + rng.gauss(0.0, spec.volatility)
        weekend = WEEKEND_DEMAND if local.weekday() >= 5 else 1.0
        shape = _demand_shape(hour) * weekend * (1.0 + weather)
        demand = spec.base_demand_mw * shape * (1.0 + rng.gauss(0.0, 0.01))
        net = shape - spec.solar_share * _solar(hour) * cloud
        price = spec.base_price * (1.0 + spec.amplitude * (net - 0.9) + noise)
        if 17.0 <= hour <= 21.0 and rng.random() < spec.spike_prob * 5:
            price += spec.base_price * rng.uniform(1.0, 3.0)
        rows.append((at, max(price, -15.0), demand, net))
    return rows


def _carbon_series(spec: CarbonSpec, net: list[float], rng: random.Random) -> list[float]:
    """Hourly intensity: the annual mean x (1 + swing x net-load anomaly + wind anomaly),
    floored at 15% of the mean, then scaled so the 14 days average the annual mean."""
    mean_net = sum(net) / len(net)
    innovation = spec.wind * math.sqrt(1.0 - 0.95**2)  # stationary std = spec.wind
    wind = rng.gauss(0.0, spec.wind)
    raw: list[float] = []
    for n in net:
        wind = 0.95 * wind + rng.gauss(0.0, innovation)
        raw.append(max(0.15, 1.0 + spec.swing * (n - mean_net) + wind))
    scale = spec.mean_g_kwh / (sum(raw) / len(raw))
    return [r * scale for r in raw]


def render() -> tuple[str, str, str]:
    """Return the contents of ``regions.csv``, ``prices.csv`` and ``carbon.csv`` as text."""
    rng = random.Random(SEED)
    regions = io.StringIO()
    w = csv.writer(regions, lineterminator="\n")
    w.writerow(["id", "name", "continent", "lat", "lon", "utc_offset_hours"])
    for s in REGION_SPECS:
        w.writerow([s.id, s.name, s.continent, s.lat, s.lon, s.utc_offset_hours])
    series = {s.id: _region_rows(s, rng) for s in REGION_SPECS}
    prices = io.StringIO()
    w = csv.writer(prices, lineterminator="\n")
    w.writerow(["timestamp", "region", "price_eur_mwh", "demand_mw"])
    for t in range(DAYS * 24):
        for s in REGION_SPECS:
            at, price, demand, _ = series[s.id][t]
            w.writerow([at.strftime("%Y-%m-%dT%H:%M:%SZ"), s.id, f"{price:.2f}", f"{demand:.0f}"])
    # A stream of its own, so the price series stays as it was before carbon was added.
    crng = random.Random(SEED + 1)
    by_id = {c.id: c for c in CARBON_SPECS}
    carbon = {
        s.id: _carbon_series(by_id[s.id], [row[3] for row in series[s.id]], crng)
        for s in REGION_SPECS
    }
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["timestamp", "region", "carbon_g_kwh"])
    for t in range(DAYS * 24):
        for s in REGION_SPECS:
            at = series[s.id][t][0]
            w.writerow([at.strftime("%Y-%m-%dT%H:%M:%SZ"), s.id, f"{carbon[s.id][t]:.1f}"])
    return regions.getvalue(), prices.getvalue(), out.getvalue()


def main(argv: list[str] | None = None) -> None:
    """Write the CSV files next to this module (or into ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args(argv)
    regions, prices, carbon = render()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "regions.csv").write_text(regions, encoding="utf-8")
    (args.out / "prices.csv").write_text(prices, encoding="utf-8")
    (args.out / "carbon.csv").write_text(carbon, encoding="utf-8")
    print(f"wrote {len(REGION_SPECS)} regions x {DAYS * 24} hours to {args.out}")


if __name__ == "__main__":
    main()
