"""What the API bench (``python -m bench.api``) runs: servers, load and the marketplace's data.

- :mod:`~bench.apiload.servers`: the marketplace and the bare hello app, each under
  uvicorn in its own process.
- :mod:`~bench.apiload.wrk`: one route loaded by ``wrk`` with a fixed number of requests.
- :mod:`~bench.apiload.providers`: registered providers, pre-signed heartbeats, the
  quote request, and the database's heartbeat count (the lost-writes check).
"""

from __future__ import annotations

from bench.apiload.providers import (
    QUOTE,
    heartbeat_bodies,
    heartbeat_total,
    provider_accounts,
    register_providers,
)
from bench.apiload.servers import Server, serve, start_server
from bench.apiload.wrk import CONNECTIONS, Route, ensure_wrk, run_wrk, split

__all__ = [
    "CONNECTIONS",
    "QUOTE",
    "Route",
    "Server",
    "ensure_wrk",
    "heartbeat_bodies",
    "heartbeat_total",
    "provider_accounts",
    "register_providers",
    "run_wrk",
    "serve",
    "split",
    "start_server",
]
