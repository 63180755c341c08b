"""The provider agent's HTTP API, spoken by renters directly (peer to peer).

Every request is signed by the renter with ``protocol.signing``:

- ``POST /v1/jobs`` takes a signed envelope (purpose :data:`PUSH`) whose payload is a
  :class:`JobPush`: the on-chain job id, the spec the renter funded (its hash must
  equal the escrow's ``specHash``) and the input files, base64-encoded. The agent
  checks the chain (funded, names this provider, renter is the signer), that it holds
  the image and that the price covers its ask, then accepts on chain and runs the job.
- Reads (``GET /v1/jobs/{id}``, ``/logs``, ``/result``, ``/files/{path}``) carry the
  signature in headers (:data:`SIGNER_HEADER` etc.) over the payload
  ``{"method": "GET", "path": <path>}`` with purpose :data:`FETCH`. Only the job's
  renter may read a job. ``GET /v1/health`` is public.
- ``POST /v1/services`` takes a signed envelope (purpose :data:`SERVICE_PUSH`) whose
  payload is a :class:`ServicePush`: the on-chain lease id, the service spec (its
  :func:`protocol.services.service_spec_hash` must equal the lease's spec hash) and its
  input files. The agent checks the lease (offered to this provider by the signer, the
  rate covers its ask, the accept window is open), that it holds the image and has room,
  accepts on chain and starts the service. ``GET /v1/services/{lease_id}`` and
  ``/v1/services/{lease_id}/logs`` (``?follow=true`` streams) are signed reads like a
  job's; only the lease's renter may read them. A service stops when its lease ends on
  chain (the renter closes it, it runs out of funds, ...): the agent watches its leases.
- ``POST /v1/services/failover`` takes a signed envelope (purpose
  :data:`SERVICE_FAILOVER`) whose payload is a :class:`ServiceFailover`, sent by the
  marketplace's FAILOVER_ROLE key after LeaseEscrow moved a failed lease to this
  provider: the new lease id, the failed one, and the spec (its hash must equal the new
  lease's). The agent checks on chain that the signer holds FAILOVER_ROLE and that the
  new lease is that failover's, offered to this provider; then it takes the lease as a
  renter's push (the renter agreed to it when opening the first lease).

Errors are JSON ``{"detail": "...", "error": "<kind>"}`` with a 4xx status, as the
marketplace's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from protocol import purposes, signing
from protocol.images import ImageSource
from protocol.keywrap import PublicKeyHex, WrappedKey
from protocol.schemas import Address, Capacity, ImageName, JobSpec, Wire
from protocol.services import ServiceSpec, ServiceState
from protocol.snapshots import SnapshotRef

PUSH = purposes.PROVIDER_PUSH
FETCH = purposes.PROVIDER_FETCH
SERVICE_PUSH = purposes.PROVIDER_SERVICE_PUSH
SERVICE_FAILOVER = purposes.PROVIDER_SERVICE_FAILOVER
SIGNER_HEADER = signing.SIGNER_HEADER
TIMESTAMP_HEADER = signing.TIMESTAMP_HEADER
SIGNATURE_HEADER = signing.SIGNATURE_HEADER

Base64 = Annotated[str, StringConstraints(max_length=96 * 2**20, pattern=r"^[A-Za-z0-9+/=]*$")]

# A job's state on the provider, in order; the last three are final.
RECEIVED = "received"  # spec and inputs checked, not yet accepted on chain
ACCEPTED = "accepted"
RUNNING = "running"
COMMITTED = "committed"
REVEALED = "revealed"
SETTLED = "settled"  # paid, slashed or refunded: the chain has closed the job
FAILED = "failed"  # refused or abandoned before a result was committed
STATES = (RECEIVED, ACCEPTED, RUNNING, COMMITTED, REVEALED, SETTLED, FAILED)


class JobPush(Wire):
    chain_job_id: int = Field(ge=1, le=2**64)
    spec: JobSpec
    inputs: dict[str, Base64] = Field(default_factory=dict, max_length=256)
    image: ImageSource | None = Field(
        default=None, description="where to fetch the spec's pinned image, when it is the renter's"
    )


class OutputFile(Wire):
    path: str
    size: int


class ProviderJob(Wire):
    """A job as its provider sees it."""

    chain_job_id: int
    renter: Address
    state: str
    detail: str = Field(default="", description="why it failed, or what it waits for")
    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    result_hash: str | None = None
    salt: str | None = Field(
        default=None,
        description="the commitment's salt, on /result only: with result_hash the renter "
        "checks the commitment on chain, where a single replica's result stays hidden",
    )
    outputs: list[OutputFile] = Field(default_factory=list)


class ProviderHealth(Wire):
    address: Address
    chain_id: int
    images: list[ImageName]
    free: Capacity
    price_wei: int
    jobs_running: int
    services_running: int = 0
    public_key: PublicKeyHex | None = Field(
        default=None,
        description="the agent's public key (its address is the key's hash): renters wrap "
        "the keys of their images' layers to it",
    )


class ServicePush(Wire):
    lease_id: int = Field(ge=1, le=2**64)
    spec: ServiceSpec
    inputs: dict[str, Base64] = Field(default_factory=dict, max_length=256)
    image: ImageSource | None = Field(
        default=None, description="where to fetch the spec's pinned image, when it is the renter's"
    )
    snapshot_key: WrappedKey | None = Field(
        default=None,
        description="the snapshot secret wrapped to this provider (protocol.snapshots), when "
        "the spec asks for snapshots of /data",
    )


class ServiceFailover(Wire):
    """A failed-over service for its new provider, with the inputs its renter left at the
    marketplace for a failover (checked against the spec's hashes as a push's are)."""

    lease_id: int = Field(ge=1, le=2**64, description="the lease the failover opened")
    from_lease_id: int = Field(ge=1, le=2**64, description="the lease that failed")
    spec: ServiceSpec
    inputs: dict[str, Base64] = Field(default_factory=dict, max_length=256)
    snapshot_key: WrappedKey | None = Field(
        default=None, description="the snapshot secret, wrapped to this provider for this lease"
    )
    snapshot: SnapshotRef | None = Field(
        default=None, description="the newest snapshot of /data, restored before it starts"
    )


class ProviderService(Wire):
    """A service as its provider sees it."""

    lease_id: int
    name: str
    renter: Address
    state: ServiceState
    host_port: int | None = Field(default=None, description="where the provider publishes it")
    url: str | None = Field(default=None, description="the published port's URL")
    restarts: int = 0
    uptime_s: float = 0
    last_error: str = ""
    detail: str = Field(default="", description="what it waits for, or why it stopped")
