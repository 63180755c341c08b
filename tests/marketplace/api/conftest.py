"""A marketplace app on a fresh database, driven through its HTTP interface."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.settings import Settings
from protocol.signing import sign_request

_clock = itertools.count(int(time.time() * 1000))


def account(name: str) -> LocalAccount:
    return Account.from_key(keccak(text=name))


def signed(acct: LocalAccount, purpose: str, payload: dict[str, Any]) -> dict[str, Any]:
    return sign_request(
        acct,
        purpose=purpose,
        payload=payload,
        timestamp_ms=max(next(_clock), time.time_ns() // 1_000_000),
    )


def registration(
    *,
    lat: float,
    lon: float,
    cpu: float = 8,
    memory_mb: int = 16384,
    gpu: int = 0,
    price_wei: int = 10**9,
    images: tuple[str, ...] = ("busybox",),
    region: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "endpoint": "http://127.0.0.1:9100",
        "location": {"lat": lat, "lon": lon},
        "total": {"cpu": cpu, "memory_mb": memory_mb, "gpu": gpu, "disk_mb": 100_000},
        "free": {"cpu": cpu, "memory_mb": memory_mb, "gpu": gpu, "disk_mb": 100_000},
        "price_wei": price_wei,
        "images": list(images),
    }
    if region:
        body["region"] = region
    return body


def job_spec(
    *,
    lat: float = 48.1,
    lon: float = 11.6,
    cpu: float = 1,
    memory_mb: int = 512,
    replicas: int = 1,
    image: str = "busybox",
    max_price_wei: int = 10**15,
    time_limit_s: int = 60,
) -> dict[str, Any]:
    return {
        "image": image,
        "command": ["echo", "hi"],
        "resources": {"cpu": cpu, "memory_mb": memory_mb},
        "time_limit_s": time_limit_s,
        "max_price_wei": max_price_wei,
        "replicas": replicas,
        "origin": {"lat": lat, "lon": lon},
    }


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'market.db'}", batch_window_ms=20)


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
