"""The simulated network's identities and its rows in the database.

Provider and renter keys are derived from fixed strings, so every run simulates the same
network. Providers are registered directly through the store (the marketplace's own
``compute.providers.register`` in one transaction per step), not over HTTP: signing and
posting tens of thousands of registrations would take longer than the load itself, and
registration is not what the bench measures. Heartbeats and jobs go over HTTP.
"""

from __future__ import annotations

from functools import cache
from typing import Any

PROVIDER_SEED = "bench-scale-provider-{}"
RENTER_SEED = "bench-scale-renter-{}"
RENTERS = 64
TOTAL = {"cpu": 16, "memory_mb": 65536, "gpu": 0, "disk_mb": 500_000}


@cache
def _key(seed: str) -> bytes:
    from eth_utils.crypto import keccak

    return bytes(keccak(text=seed))


def provider_account(i: int) -> Any:
    from eth_account import Account

    return Account.from_key(_key(PROVIDER_SEED.format(i)))


def renter_account(i: int) -> Any:
    from eth_account import Account

    return Account.from_key(_key(RENTER_SEED.format(i)))


def registration(i: int) -> dict[str, Any]:
    """Provider `i`'s registration: spread over the map, 16 CPUs, 64 GB."""
    return {
        "endpoint": f"http://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:9100",
        "location": {"lat": -60 + (i * 37) % 120 + (i % 7) / 10, "lon": -170 + (i * 71) % 340},
        "total": TOTAL,
        "free": TOTAL,
        "price_wei": 10**9 + i,
        "images": ["busybox", "python:3.11"],
    }


def heartbeat_payload(i: int, k: int) -> dict[str, Any]:
    """What provider `i` reports free in its `k`-th heartbeat (within its total)."""
    return {"free": {"cpu": 4 + (i + k) % 12, "memory_mb": 1024 * (16 + (i + k) % 48)}}


def job_spec(j: int) -> dict[str, Any]:
    """The `j`-th renter job: one replica, 1 CPU, 512 MB, from somewhere in Europe."""
    return {
        "image": "busybox",
        "command": ["echo", str(j)],
        "resources": {"cpu": 1, "memory_mb": 512},
        "time_limit_s": 60,
        "max_price_wei": 10**15,
        "replicas": 1,
        "origin": {"lat": 40 + j % 20, "lon": -5 + j % 30},
    }


def register(database_url: str, first: int, stop: int) -> None:
    """Register providers `first`..`stop`-1 through the store, in one transaction."""
    from marketplace.compute import providers
    from marketplace.energy.grid import Grid
    from marketplace.store.db import make_engine, session_factory
    from protocol.schemas import ProviderRegistration

    engine = make_engine(database_url)
    grid = Grid()
    try:
        with session_factory(engine)() as session, session.begin():
            for i in range(first, stop):
                providers.register(
                    session,
                    address=provider_account(i).address,
                    reg=ProviderRegistration.model_validate(registration(i)),
                    grid=grid,
                    chain=None,
                )
    finally:
        engine.dispose()


def heartbeat_total(database_url: str) -> int:
    """Every provider's heartbeat counter, summed (the lost-writes check)."""
    from sqlalchemy import func, select

    from marketplace.store.db import make_engine
    from marketplace.store.models import ProviderRow

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.sum(ProviderRow.heartbeats))) or 0)
    finally:
        engine.dispose()


def migrate(database_url: str) -> None:
    from marketplace.store.db import make_engine
    from marketplace.store.db import migrate as upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
