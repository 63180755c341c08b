"""The start planner against a brute-force oracle, and its rules (ties, bounds, windows)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from marketplace.energy import BundledPriceSource, EnergyBasis, Forecast
from marketplace.energy.plan import Site, job_power_kw, plan_job, plan_start
from marketplace.errors import InvalidInputError, PriceUnavailableError

T0 = datetime(2025, 1, 8, tzinfo=UTC)


def fc_of(prices: list[list[float]], carbon: list[list[float]] | None = None) -> Forecast:
    ids = tuple(f"R{i}" for i in range(len(prices)))
    p = np.array(prices, dtype=np.float64)
    c = np.array(carbon, dtype=np.float64) if carbon is not None else np.full(p.shape, np.nan)
    return Forecast(ids, T0, p, c)


def oracle_cost(prices: list[float], start_s: float, run_s: float, kw: float) -> float:
    """Energy cost by walking the run hour by hour (EUR with prices per MWh)."""
    cost, t, end = 0.0, start_s, start_s + run_s
    while t < end - 1e-9:
        h = math.floor(t / 3600 + 1e-12)
        nxt = min(end, (h + 1) * 3600.0)
        price = prices[min(h, len(prices) - 1)]
        cost += kw * (nxt - t) / 3600.0 * price / 1000.0
        t = nxt
    return cost


@pytest.mark.parametrize("seed", range(40))
def test_plan_matches_brute_force_on_seeded_inputs(seed: int) -> None:
    rng = random.Random(seed)
    n_regions, hours = rng.randint(1, 5), 30
    prices = [
        [rng.choice([20.0, 40.0, 60.0, 80.0, 100.0]) for _ in range(hours)]
        for _ in range(n_regions)
    ]
    fc = fc_of(prices)
    sites = [
        Site(f"R{rng.randrange(n_regions)}", rng.uniform(0, 3000), rng.random() < 0.8)
        for _ in range(rng.randint(1, 6))
    ]
    nearest = min(range(len(sites)), key=lambda i: sites[i].km)
    now = T0 + timedelta(seconds=rng.uniform(0, 5 * 3600))
    window_h = rng.choice([0, 1, 2, 6, 12])
    start_by = now + timedelta(hours=window_h) if window_h else None
    run_s = rng.uniform(60, 10 * 3600)
    max_km = rng.choice([None, 500.0, 1500.0])
    kw = 0.07
    got = plan_start(
        sites=sites, nearest=nearest, power_kw=kw, run_s=run_s, now=now, start_by=start_by,
        fc=fc, max_km=max_km,
    )  # fmt: skip
    now_s = (now - T0).total_seconds()
    starts = [now_s] + [
        h * 3600.0
        for h in range(math.floor(now_s / 3600) + 1, 48)
        if h * 3600.0 <= now_s + window_h * 3600
    ]
    options = []
    for i, s in enumerate(sites):
        if max_km is not None and s.km > max_km and i != nearest:
            continue
        for k, st in enumerate(starts):
            if k == 0 and not s.available_now:
                continue
            cost = oracle_cost(prices[int(s.region[1:])], st, run_s, kw)
            options.append((cost, k, s.km, i, st))
    if not options:
        assert got is None
        return
    top = max(o[0] for o in options)
    best = min((round(o[0] * 1e9 / top), *o[1:]) for o in options)
    assert got is not None
    assert (got.site, got.delay_s) == pytest.approx((best[3], best[4] - now_s))
    assert got.cost == pytest.approx(
        oracle_cost(prices[int(sites[got.site].region[1:])], best[4], run_s, kw)
    )
    ref = oracle_cost(prices[int(sites[nearest].region[1:])], now_s, run_s, kw)
    assert got.cost_now_nearest == pytest.approx(ref)
    assert got.km_added == pytest.approx(sites[got.site].km - sites[nearest].km)


def test_a_run_over_several_hours_pays_each_hour_its_own_price() -> None:
    fc = fc_of([[100.0, 10.0, 10.0, 100.0]])
    now = T0 + timedelta(minutes=30)
    plan = plan_start(
        sites=[Site("R0", 0.0)], nearest=0, power_kw=1.0, run_s=2 * 3600.0, now=now,
        start_by=None, fc=fc,
    )  # fmt: skip
    assert plan is not None and plan.start == now
    # half an hour at 100, an hour at 10, half an hour at 10 (EUR/MWh, 1 kW)
    assert plan.cost == pytest.approx(0.5 * 0.1 + 1.5 * 0.01)


def test_waiting_for_a_cheaper_hour_starts_at_that_hours_start() -> None:
    fc = fc_of([[100.0, 90.0, 20.0, 20.0, 100.0, 100.0]])
    now = T0 + timedelta(minutes=10)
    plan = plan_start(
        sites=[Site("R0", 0.0)], nearest=0, power_kw=1.0, run_s=1800.0, now=now,
        start_by=now + timedelta(hours=6), fc=fc,
    )  # fmt: skip
    assert plan is not None
    assert plan.start == T0 + timedelta(hours=2)  # ties with 03:00 go to the earlier start
    assert plan.delay_s == pytest.approx(110 * 60)
    assert plan.saving_pct == pytest.approx(80.0)


def test_ties_go_to_the_nearer_site() -> None:
    fc = fc_of([[50.0] * 4, [50.0] * 4])
    sites = [Site("R0", 900.0), Site("R1", 300.0), Site("R0", 100.0)]
    plan = plan_start(
        sites=sites, nearest=2, power_kw=1.0, run_s=600.0, now=T0, start_by=None, fc=fc
    )
    assert plan is not None and plan.site == 2 and plan.km_added == 0.0


def test_max_km_keeps_far_cheap_sites_out_but_never_the_nearest() -> None:
    fc = fc_of([[100.0] * 4, [10.0] * 4])
    sites = [Site("R0", 800.0), Site("R1", 2500.0)]
    kw = {"nearest": 0, "power_kw": 1.0, "run_s": 600.0, "now": T0, "start_by": None, "fc": fc}
    assert plan_start(sites=sites, max_km=3000.0, **kw).site == 1  # type: ignore[arg-type,union-attr]
    assert plan_start(sites=sites, max_km=500.0, **kw).site == 0  # type: ignore[arg-type,union-attr]


def test_a_site_full_now_can_still_be_chosen_for_a_later_hour() -> None:
    fc = fc_of([[100.0, 100.0, 100.0], [10.0, 10.0, 10.0]])
    sites = [Site("R0", 0.0), Site("R1", 400.0, available_now=False)]
    now = T0 + timedelta(minutes=20)
    later = plan_start(
        sites=sites, nearest=0, power_kw=1.0, run_s=600.0, now=now,
        start_by=now + timedelta(hours=2), fc=fc,
    )  # fmt: skip
    assert later is not None and (later.site, later.start) == (1, T0 + timedelta(hours=1))
    only_now = plan_start(
        sites=sites, nearest=0, power_kw=1.0, run_s=600.0, now=now, start_by=None, fc=fc
    )
    assert only_now is not None and only_now.site == 0
    nobody = plan_start(
        sites=[Site("R1", 0.0, available_now=False)], nearest=0, power_kw=1.0, run_s=600.0,
        now=now, start_by=None, fc=fc,
    )  # fmt: skip
    assert nobody is None


def test_hours_past_the_forecast_repeat_its_last_hour() -> None:
    fc = fc_of([[40.0, 60.0]])
    plan = plan_start(
        sites=[Site("R0", 0.0)], nearest=0, power_kw=1.0, run_s=4 * 3600.0, now=T0,
        start_by=None, fc=fc,
    )  # fmt: skip
    assert plan is not None and plan.cost == pytest.approx((40 + 3 * 60) / 1000.0)


def test_carbon_basis_minimises_emissions_not_cost() -> None:
    fc = fc_of([[10.0] * 3, [100.0] * 3], carbon=[[800.0] * 3, [20.0] * 3])
    sites = [Site("R0", 0.0), Site("R1", 100.0)]
    kw = {"nearest": 0, "power_kw": 1.0, "run_s": 3600.0, "now": T0, "start_by": None, "fc": fc}
    by_price = plan_start(sites=sites, **kw)  # type: ignore[arg-type]
    by_carbon = plan_start(sites=sites, basis=EnergyBasis("carbon"), **kw)  # type: ignore[arg-type]
    assert by_price is not None and by_price.site == 0
    assert by_carbon is not None and by_carbon.site == 1
    assert by_carbon.co2_g == pytest.approx(20.0) and by_carbon.co2_saving_pct == pytest.approx(
        97.5
    )


def test_carbon_basis_needs_carbon_figures() -> None:
    with pytest.raises(PriceUnavailableError, match="basis 'price'"):
        plan_start(
            sites=[Site("R0", 0.0)], nearest=0, power_kw=1.0, run_s=60.0, now=T0,
            start_by=None, fc=fc_of([[1.0]]), basis=EnergyBasis("carbon"),
        )  # fmt: skip


def test_plan_refuses_bad_input() -> None:
    fc = fc_of([[1.0]])
    with pytest.raises(InvalidInputError):
        plan_start(sites=[], nearest=0, power_kw=1, run_s=60, now=T0, start_by=None, fc=fc)
    with pytest.raises(InvalidInputError):
        plan_start(
            sites=[Site("R0", 0)], nearest=1, power_kw=1, run_s=60, now=T0, start_by=None, fc=fc
        )
    with pytest.raises(InvalidInputError):
        plan_start(
            sites=[Site("R0", 0)], nearest=0, power_kw=1, run_s=60,
            now=T0 - timedelta(hours=1), start_by=None, fc=fc,
        )  # fmt: skip


def test_plan_job_reads_the_bundled_forecast() -> None:
    source = BundledPriceSource()
    now = T0 + timedelta(hours=15, minutes=5)
    sites = [Site("DE-FRA", 20.0), Site("NO-OSL", 1100.0), Site("FR-PAR", 480.0)]
    plan = plan_job(
        source=source, sites=sites, nearest=0, power_kw=job_power_kw(4), run_s=5400.0,
        now=now, start_by=now + timedelta(hours=6), max_km=1500.0,
    )  # fmt: skip
    assert plan is not None
    assert plan.cost <= plan.cost_now_nearest
    assert plan.start == now or (
        plan.start.minute == 0 and now < plan.start <= now + timedelta(hours=6)
    )
    assert math.isfinite(plan.co2_g) and plan.basis == "price"
    assert job_power_kw(4) == pytest.approx(0.056)
