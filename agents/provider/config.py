"""The provider agent's configuration: what the owner lends, where, and for how much."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from protocol.ratelimit import RateLimitSettings
from protocol.schemas import Capacity, ImageName, Location, RegionId, Url, Wire

CONFIG_FILE = "provider.json"
KEYSTORE_FILE = "keystore.json"


class ProviderConfig(Wire, RateLimitSettings):
    marketplace_url: Url
    rpc_url: Url
    deployments: str | None = Field(default=None, description="deployments file; default: built in")
    endpoint: Url = Field(description="the URL renters reach this agent at")
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(ge=1, le=65535)
    location: Location
    region: RegionId | None = None
    caps: Capacity = Field(description="what the owner lends")
    price_wei: int = Field(ge=0, description="token wei per CPU-core-second")
    images: list[ImageName] = Field(description="images offered (must exist locally)")
    allow_network: bool = False
    heartbeat_s: float = Field(default=5.0, gt=0, le=3600)
    poll_s: float = Field(default=0.2, gt=0, le=60)
    payout_s: float = Field(default=5.0, gt=0, le=86400)
    max_parallel: int = Field(default=4, ge=1, le=256)
    image_cache_mb: int = Field(
        default=10240, ge=0, le=2**30, description="disk for renters' pulled images, MB"
    )
    max_image_mb: int = Field(
        default=2048, ge=0, le=8192, description="the largest renter's image pulled, MB"
    )
    fault: str | None = Field(
        default=None,
        description="test only, honoured on dev chains: 'wrong-result' commits a tampered result",
    )

    def keystore(self, home: Path) -> Path:
        return home / KEYSTORE_FILE
