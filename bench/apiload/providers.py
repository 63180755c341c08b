"""The marketplace's side of the API bench: registered providers, signed heartbeats, a quote.

Provider keys are derived from fixed strings, so every run registers the same providers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.apiload.servers import HOST, Server
from bench.apiload.wrk import CONNECTIONS, split
from protocol import purposes

REGISTER, HEARTBEAT = purposes.PROVIDER_REGISTER, purposes.PROVIDER_HEARTBEAT


def provider_accounts(n: int) -> list[Any]:
    from eth_account import Account
    from eth_utils.crypto import keccak

    return [Account.from_key(keccak(text=f"bench-api-provider-{i}")) for i in range(n)]


def registration(i: int) -> dict[str, Any]:
    lat = -60 + (i * 37) % 120
    lon = -170 + (i * 71) % 340
    return {
        "endpoint": f"http://{HOST}:{9100 + i}",
        "location": {"lat": lat, "lon": lon},
        "total": {"cpu": 16, "memory_mb": 65536, "gpu": 0, "disk_mb": 500_000},
        "free": {"cpu": 16, "memory_mb": 65536, "gpu": 0, "disk_mb": 500_000},
        "price_wei": 10**9 + i,
        "images": ["busybox", "python:3.11"],
    }


def register_providers(server: Server, accounts: list[Any]) -> int:
    """Register every account; return the clock (ms) after the last signature."""
    import httpx

    from protocol.signing import sign_request

    clock = time.time_ns() // 1_000_000
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i, acct in enumerate(accounts):
            env = sign_request(acct, purpose=REGISTER, payload=registration(i), timestamp_ms=clock)
            r = client.post("/v1/providers", json=env)
            if r.status_code != 201:
                raise SystemExit(f"registering provider {i} failed: {r.status_code} {r.text}")
    return clock


def heartbeat_bodies(accounts: list[Any], requests: int, start_ms: int) -> list[list[str]]:
    """Signed heartbeats: connection k sends for its own providers, timestamps increasing."""
    from protocol.signing import sign_request

    per_conn_accounts = [accounts[k::CONNECTIONS] for k in range(CONNECTIONS)]
    out: list[list[str]] = []
    for k in range(CONNECTIONS):
        own = per_conn_accounts[k]
        lines = []
        for j in range(split(requests)[k]):
            acct = own[j % len(own)]
            payload = {"free": {"cpu": 1 + j % 15, "memory_mb": 1024 * (1 + j % 60)}}
            env = sign_request(acct, purpose=HEARTBEAT, payload=payload, timestamp_ms=start_ms + j)
            lines.append(json.dumps(env, separators=(",", ":")))
        out.append(lines)
    return out


def heartbeat_total(db: Path) -> int:
    from sqlalchemy import func, select

    from marketplace.store.db import make_engine
    from marketplace.store.models import ProviderRow

    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.sum(ProviderRow.heartbeats))) or 0)
    finally:
        engine.dispose()


QUOTE = {
    "image": "busybox",
    "command": ["echo", "hi"],
    "resources": {"cpu": 1, "memory_mb": 512},
    "time_limit_s": 60,
    "max_price_wei": 10**15,
    "replicas": 2,
    "origin": {"lat": 48.1, "lon": 11.6},
}
