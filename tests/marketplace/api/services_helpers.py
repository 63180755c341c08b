"""Building services, providers and reports for the services API tests."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from protocol import purposes
from tests.marketplace.api.conftest import registration, signed


def service_spec(
    name: str = "blog",
    *,
    cpu: float = 1,
    memory_mb: int = 512,
    image: str = "busybox",
    max_rate_wei_per_s: int = 10**12,
    lat: float = 48.1,
    lon: float = 11.6,
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": ["httpd", "-f"],
        "port": 8080,
        "resources": {"cpu": cpu, "memory_mb": memory_mb},
        "max_rate_wei_per_s": max_rate_wei_per_s,
        "origin": {"lat": lat, "lon": lon},
    }
    if health is not None:
        spec["health"] = health
    return spec


def register(client: TestClient, provider: LocalAccount, *, cpu: float = 4, **kwargs: Any) -> None:
    body = registration(lat=kwargs.pop("lat", 48.1), lon=kwargs.pop("lon", 11.6), cpu=cpu, **kwargs)
    r = client.post("/v1/providers", json=signed(provider, purposes.PROVIDER_REGISTER, body))
    assert r.status_code == 201, r.text


def deploy(client: TestClient, renter: LocalAccount, spec: dict[str, Any]) -> Any:
    return client.post("/v1/services", json=signed(renter, purposes.SERVICE_DEPLOY, spec))


def report(
    client: TestClient,
    provider: LocalAccount,
    name: str,
    *,
    host_port: int,
    lease_id: int = 1,
    state: str = "healthy",
) -> Any:
    payload = {"name": name, "lease_id": lease_id, "host_port": host_port, "state": state}
    return client.post(
        f"/v1/services/{name}/report", json=signed(provider, purposes.SERVICE_REPORT, payload)
    )


def stop(client: TestClient, renter: LocalAccount, name: str) -> Any:
    return client.post(
        f"/v1/services/{name}/stop", json=signed(renter, purposes.SERVICE_STOP, {"name": name})
    )


def free_cpu(client: TestClient, provider: LocalAccount) -> float:
    return float(client.get(f"/v1/providers/{provider.address}").json()["free"]["cpu"])
