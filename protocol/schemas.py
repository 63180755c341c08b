"""Wire models shared by the marketplace and the agents (pydantic v2).

Units: CPU in cores, memory and disk in MB, prices in token wei. A provider's
``price_wei`` is per CPU-core-second; a job's ``max_price_wei`` is the most the renter
pays per replica for the whole job (the escrow's ``price``).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Generic, TypeVar

from eth_utils.crypto import keccak
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_PRICE_PER_SECOND_WEI = 2**63 - 1
MAX_JOB_PRICE_WEI = 2**96 - 1
MAX_REPLICAS = 5

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
# A renter's image pinned to its digest, ``myapp:1@sha256:<64 hex>`` (``protocol.images``).
PINNED_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9._/-]{0,127}(?::\w[\w.-]{0,127})?)@(?P<digest>sha256:[0-9a-f]{64})$"
)


def _offered_or_pinned(name: str) -> str:
    if "@" in name and PINNED_IMAGE.match(name) is None:
        raise ValueError(
            f"{name!r} is not a pinned image (name[:tag]@sha256:<64 hex>); push the image with "
            "`dcloud image push NAME:TAG` and name it by NAME:TAG"
        )
    return name


# An image providers offer (``dcloud/busybox:1``), or a renter's pinned to its digest.
ImageName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][\w.:/@-]*$"),
    AfterValidator(_offered_or_pinned),
]
RegionId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.-]+$")]
Url = Annotated[
    str, StringConstraints(min_length=8, max_length=512, pattern=r"^https?://[^\s/$.?#][^\s]*$")
]


class Wire(BaseModel):
    """Base of every wire model: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Location(Wire):
    lat: float = Field(ge=-90, le=90, description="latitude in degrees")
    lon: float = Field(ge=-180, le=180, description="longitude in degrees")


class Capacity(Wire):
    cpu: float = Field(ge=0, le=4096, description="CPU cores")
    memory_mb: int = Field(ge=0, le=2**40)
    gpu: int = Field(default=0, ge=0, le=1024)
    disk_mb: int = Field(default=0, ge=0, le=2**50)

    def fits_in(self, other: Capacity) -> bool:
        return (
            self.cpu <= other.cpu
            and self.memory_mb <= other.memory_mb
            and self.gpu <= other.gpu
            and self.disk_mb <= other.disk_mb
        )


class Demand(Capacity):
    cpu: float = Field(gt=0, le=4096, description="CPU cores (more than 0)")
    memory_mb: int = Field(gt=0, le=2**40, description="memory in MB (more than 0)")


class ProviderRegistration(Wire):
    endpoint: Url = Field(description="where renters reach the provider agent directly")
    location: Location
    region: RegionId | None = Field(
        default=None, description="electricity region; nearest bundled region when omitted"
    )
    total: Capacity
    free: Capacity
    price_wei: int = Field(ge=0, le=MAX_PRICE_PER_SECOND_WEI, description="per CPU-core-second")
    images: list[ImageName] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _free_within_total(self) -> ProviderRegistration:
        if not self.free.fits_in(self.total):
            raise ValueError("free capacity exceeds total capacity in some dimension")
        return self


class Heartbeat(Wire):
    free: Capacity
    images: list[ImageName] | None = Field(default=None, max_length=256)
    price_wei: int | None = Field(default=None, ge=0, le=MAX_PRICE_PER_SECOND_WEI)


# '/'-separated names, none of them "." or ".." (the pattern says so, for the schema too)
_SEGMENT = r"(?:[\w-][\w.-]*|\.[\w-][\w.-]*|\.\.[\w.-]+)"
InputPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=rf"^{_SEGMENT}(?:/{_SEGMENT})*$"),
]


class InputFile(Wire):
    """A file the renter sends the provider; the job sees it read-only under /input."""

    path: InputPath = Field(description="relative path under /input, '/'-separated")
    size: int = Field(ge=0, le=2**31, description="bytes")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

    @field_validator("path")
    @classmethod
    def _no_dot_segments(cls, path: str) -> str:
        if any(part in (".", "..") for part in path.split("/")):
            raise ValueError("input paths may not contain '.' or '..' segments")
        return path


MAX_INPUT_BYTES = 64 * 2**20


IMAGE_BYTES_FIELD = Field(
    default=None,
    ge=0,
    le=2**40,
    description="size of a renter's pushed image (named by digest); providers that must "
    "fetch it are charged the pull in matching",
)


# A container's command (argv) and environment, as jobs and services give them.
CommandLine = Annotated[
    list[Annotated[str, StringConstraints(max_length=4096)]], Field(max_length=256)
]
Environment = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z_]\w*$")],
        Annotated[str, StringConstraints(max_length=4096)],
    ],
    Field(max_length=64),
]


class JobSpec(Wire):
    image: ImageName
    image_bytes: int | None = IMAGE_BYTES_FIELD
    command: CommandLine = Field(default_factory=list)
    env: Environment = Field(default_factory=dict)
    resources: Demand
    time_limit_s: int = Field(ge=1, le=7 * 86400)
    max_price_wei: int = Field(ge=1, le=MAX_JOB_PRICE_WEI, description="per replica, whole job")
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    origin: Location
    regions: list[RegionId] | None = Field(default=None, max_length=64)
    network: bool = Field(default=False, description="the job needs network access")
    inputs: list[InputFile] = Field(default_factory=list, max_length=256)
    start_by: int | None = Field(
        default=None,
        ge=0,
        le=2**32 - 1,
        description="latest start the renter accepts (unix seconds): the marketplace holds "
        "the job and starts it at the hour and place of least expected energy cost until then "
        "(at most two days ahead); unset: start now",
    )
    max_km: float | None = Field(
        default=None,
        ge=0,
        le=40_000,
        description="how many km farther than the nearest provider that can run it the job "
        "may be sent for cheaper energy; unset: the marketplace's energy weight decides",
    )

    @model_validator(mode="after")
    def _inputs_fit(self) -> JobSpec:
        paths = [f.path for f in self.inputs]
        if len(set(paths)) != len(paths):
            raise ValueError("input paths must be distinct")
        total = sum(f.size for f in self.inputs)
        if total > MAX_INPUT_BYTES:
            raise ValueError(f"inputs total {total} bytes; the limit is {MAX_INPUT_BYTES}")
        return self


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# Fields added to specs after their first release: left out of the hash when unset, so
# a spec that does not use them hashes as it did before they existed.
_LATER_FIELDS = ("image_bytes", "start_by", "max_km")


def hashed_body(spec: BaseModel) -> dict[str, Any]:
    """What a spec's hash covers: its JSON, without the later optional fields that are
    unset (``image_bytes`` before renters could push images, a job's start window and
    distance bound)."""
    body = spec.model_dump(mode="json")
    for name in _LATER_FIELDS:
        if name in body and body[name] is None:
            del body[name]
    return body


def spec_hash(spec: JobSpec) -> str:
    """keccak256 of the spec's canonical JSON: what the renter funds the escrow with."""
    return "0x" + keccak(canonical_json(hashed_body(spec))).hex()


T = TypeVar("T", bound=BaseModel)


class Signed(Wire, Generic[T]):
    """A payload with its signer's EIP-191 signature (see ``protocol.signing``)."""

    payload: T
    signer: Address
    timestamp_ms: int = Field(ge=0, le=2**53)
    signature: Signature
