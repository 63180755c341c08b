"""The grid-impact study's simulated day (``python -m bench.grid`` runs and reports it).

- :mod:`protocol.cities`: the real cities that hold the sites and send the jobs.
- :mod:`~bench.gridsim.world`: the sites' capacity and the day's jobs (seeded).
- :mod:`~bench.gridsim.energy`: region prices and levels by hour; a job's energy cost.
- :mod:`~bench.gridsim.simulate`: the day matched batch by batch by the real index at
  one energy weight, and the figures of a run.
- :mod:`~bench.gridsim.timeshift`: the day with start windows: the start planner picks
  each job's hour (and place), capacity booked ahead.
- :mod:`~bench.gridsim.study`: every run of the study, as rows.
- :mod:`~bench.gridsim.plot`: the two-panel figure.
"""

from __future__ import annotations

from bench.gridsim.energy import PUE, WATTS_PER_CORE, HourlyGrid, energy_cost_eur
from bench.gridsim.plot import plot
from bench.gridsim.simulate import BATCH_S, K, Placement, simulate, summarise
from bench.gridsim.study import run
from bench.gridsim.timeshift import MODES, Calendar, day_integral, simulate_shift
from bench.gridsim.world import Config, World, make_world, site_capacity
from protocol.cities import CITIES, City, parse_cities

__all__ = [
    "BATCH_S",
    "CITIES",
    "MODES",
    "PUE",
    "WATTS_PER_CORE",
    "Calendar",
    "City",
    "Config",
    "HourlyGrid",
    "K",
    "Placement",
    "World",
    "day_integral",
    "energy_cost_eur",
    "make_world",
    "parse_cities",
    "plot",
    "run",
    "simulate",
    "simulate_shift",
    "site_capacity",
    "summarise",
]
