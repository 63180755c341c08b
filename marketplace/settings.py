"""Service settings, read from ``DCLOUD_*`` environment variables (pydantic-settings).

With no configuration the service runs on an SQLite file in the working directory and
without a chain (stake is then not verified and the API says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from protocol.assignments import VALID_S
from protocol.ratelimit import RateLimitSettings


class Settings(BaseSettings, RateLimitSettings):
    """Marketplace settings; each field is ``DCLOUD_<FIELD>`` in the environment (the rate
    limits, ``DCLOUD_RATE_PER_CLIENT`` and the like, come from RateLimitSettings)."""

    model_config = SettingsConfigDict(env_prefix="DCLOUD_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///dcloud-marketplace.db",
        description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=1, le=65535)

    rpc_url: str | None = Field(default=None, description="Ethereum JSON-RPC; unset = no chain")
    deployments: Path | None = Field(default=None, description="deployments file override")
    matcher_key: SecretStr | None = Field(
        default=None,
        description="private key (hex) of the escrow's matcher: signs the providers of "
        "replicated jobs and the verifiers of disputes; unset = the well-known dev key on "
        "local chains, else single-replica jobs only",
    )
    confirmations: int = Field(
        default=0, ge=0, le=1000, description="blocks before an event counts"
    )
    indexer_poll_s: float = Field(default=1.0, gt=0, le=60)
    indexer_max_blocks: int = Field(default=2000, ge=1, le=100_000)

    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    offline_after_s: float = Field(default=35.0, gt=0, description="no heartbeat for this long")
    signature_max_skew_s: float = Field(default=120.0, gt=0)

    energy_weight_km: float = Field(default=2000.0, ge=0, description="km per energy level")
    energy_basis: Literal["price", "carbon", "mix"] = Field(
        default="price",
        description="what the energy level measures: the electricity price (with demand), "
        "the grid's carbon intensity, or a mix of the two (see energy_carbon_weight)",
    )
    energy_series_dir: str | None = Field(
        default=None,
        description="a folder of regions.csv, prices.csv and carbon.csv in the bundled "
        "format, used instead of the bundled (synthetic) series",
    )
    energy_carbon_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="with energy_basis=mix, the weight of carbon (the price gets the rest)",
    )
    batch_window_ms: int = Field(default=150, ge=0, le=10_000, description="packing batch window")
    batch_quiet_ms: int = Field(
        default=30,
        ge=0,
        le=10_000,
        description="a batch closes early once no job arrived for this long (0: full window)",
    )
    candidates_per_job: int = Field(default=8, ge=1, le=100)
    image_pull_mb_per_s: float = Field(
        default=50.0,
        gt=0,
        le=100_000,
        description="how fast a provider pulls a renter's image from the storage network, "
        "in MB (10**6 bytes) per second: a provider without the image is charged "
        "image_bytes / this many seconds of pull in matching",
    )
    image_pull_km_per_s: float = Field(
        default=74.0,
        ge=0,
        le=100_000,
        description="what one second of image pull weighs in the matching score, in km "
        "(the default makes the largest image's pull at 50 MB/s weigh about the Earth's "
        "diameter; see marketplace/compute/images.py); 0 = holding the image does not matter",
    )
    submit_timeout_s: float = Field(default=10.0, gt=0)
    match_expires_s: float = Field(
        default=float(VALID_S),
        gt=0,
        description="a matched job not funded within this long expires and its providers' "
        "reserved capacity is released (default: the life of the matcher's signature)",
    )

    service_reservation_s: float = Field(
        default=600.0,
        gt=0,
        description="a placed service holds its provider's capacity this long for the lease "
        "to be accepted; then it expires and the capacity is released",
    )
    service_gateway_url: str = Field(
        default="http://127.0.0.1:8780",
        description="where the ingress gateway listens (the dashboard links services there)",
    )
    service_apps_domain: str = Field(
        default="localhost",
        description="the gateway serves service NAME at NAME.apps.<this domain>",
    )
    service_probe_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="how often the prober checks each service"
    )
    watcher_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="private keys (hex, comma-separated) of LeaseEscrow watchers this "
        "marketplace signs down reports with, beside the matcher key; unset = the well-known "
        "dev watcher key on local chains (so a quorum of 2 is met there), else none",
    )
    watch_post_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="how often down intervals are posted on chain (one batch per post)",
    )
    failover_give_up_s: float = Field(
        default=600.0,
        gt=0,
        description="a failed service that no provider can take within this long after "
        "its failure is ended on chain instead (its provider slashed, the rest refunded)",
    )
    failover_inputs_mb: float = Field(
        default=16.0,
        ge=0,
        le=1024,
        description="the most input bytes (MB, all files) a renter may leave here for a "
        "failover of its service; a service with more is refunded instead of failed over",
    )
    service_forecast_hours: int = Field(
        default=6,
        ge=1,
        le=48,
        description="services are placed by their providers' mean energy level over this "
        "many coming hours (as far as the price source knows them)",
    )

    @field_validator("watcher_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
