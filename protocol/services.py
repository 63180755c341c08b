"""Services on the wire: long-running containers at stable names, paid by the second.

A renter deploys a :class:`ServiceSpec` under a name it owns; the marketplace places it
on a provider (provider, rate per second, a reservation until the lease is accepted); the
renter opens a lease on chain (LeaseEscrow) whose spec hash is :func:`service_spec_hash`
of the spec, and pushes the spec to the provider; the provider runs it and reports its
state (:class:`ServiceReport`, signed); the ingress gateway routes ``NAME.apps.<domain>``
and ``/apps/NAME/`` to where it runs now (:class:`ServiceRoute`).
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from eth_utils.crypto import keccak
from pydantic import Field, StringConstraints, model_validator

from protocol.schemas import (
    IMAGE_BYTES_FIELD,
    MAX_INPUT_BYTES,
    CommandLine,
    Demand,
    Environment,
    ImageName,
    InputFile,
    Location,
    RegionId,
    Wire,
    canonical_json,
    hashed_body,
)

# DNS label rules (lower case, digits, inner hyphens), 3 to 40 characters, so
# NAME.apps.<domain> is always a valid host name.
ServiceName = Annotated[
    str,
    StringConstraints(min_length=3, max_length=40, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"),
]
# Most a service may cost, per second, in token wei (1 token per second).
MAX_RATE_WEI_PER_S = 10**18


HealthPath = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=r"^/[\x21-\x7e]*$")
]


class HealthCheck(Wire):
    """How a provider tells that a service works: an HTTP GET of `path` answered with a
    2xx or 3xx status (`kind` "http"), or a TCP connection accepted (`kind` "tcp") on the
    service's port, every `interval_s`. `failures` failed checks in a row make a service
    unhealthy (not counted during its first `start_period_s`); `restart_after` failed
    checks in a row restart it (0: never restarted for failed checks)."""

    kind: Literal["http", "tcp"] = "http"
    path: HealthPath = "/"
    interval_s: float = Field(default=5.0, ge=0.2, le=3600)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    start_period_s: float = Field(default=60.0, ge=0, le=3600)
    failures: int = Field(default=3, ge=1, le=100)
    restart_after: int = Field(default=6, ge=0, le=1000)


ContainerName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"),
]
MAX_CONTAINERS = 16


class ServiceContainer(Wire):
    """Another container of a deployment: it runs beside the service's own (main) container
    on the deployment's private network, where the others reach it by `name`. It publishes
    no port; its `resources` are part of the spec's (see :class:`ServiceSpec`)."""

    name: ContainerName
    image: ImageName
    command: CommandLine = Field(default_factory=list)
    env: Environment = Field(default_factory=dict)
    resources: Demand
    depends_on: list[ContainerName] = Field(default_factory=list, max_length=MAX_CONTAINERS)


class ServiceSpec(Wire):
    """What a renter asks to run. Its hash binds the lease on chain.

    A deployment of several containers names its main container `alias` (the one whose
    `port` gets the public name; the top-level image, command, env and health are its) and
    lists the others in `containers`. They share one private network, where each reaches
    the others by name, one lease and one `/data` area (a folder each). `resources` is
    what the whole deployment uses: the main container gets what the others leave of it.
    """

    name: ServiceName
    image: ImageName
    image_bytes: int | None = IMAGE_BYTES_FIELD
    command: CommandLine = Field(default_factory=list)
    env: Environment = Field(default_factory=dict)
    port: int = Field(ge=1, le=65535, description="the port the container listens on")
    health: HealthCheck = Field(default_factory=HealthCheck)
    resources: Demand
    max_rate_wei_per_s: int = Field(
        ge=1, le=MAX_RATE_WEI_PER_S, description="most the renter pays per second"
    )
    origin: Location
    regions: list[RegionId] | None = Field(default=None, max_length=64)
    network: bool = Field(default=False, description="the service may open outbound connections")
    inputs: list[InputFile] = Field(default_factory=list, max_length=256)
    snapshot_s: int | None = Field(
        default=None,
        ge=5,
        le=86_400,
        description="copy /data into the storage network this often (seconds), encrypted; "
        "a failover restores the newest copy on the new provider (none: /data is local)",
    )
    alias: ContainerName | None = Field(
        default=None, description="the main container's name on the deployment's network"
    )
    depends_on: list[ContainerName] = Field(default_factory=list, max_length=MAX_CONTAINERS)
    containers: list[ServiceContainer] = Field(default_factory=list, max_length=MAX_CONTAINERS)

    @model_validator(mode="after")
    def _inputs_fit(self) -> ServiceSpec:
        paths = [f.path for f in self.inputs]
        if len(set(paths)) != len(paths):
            raise ValueError("input paths must be distinct")
        total = sum(f.size for f in self.inputs)
        if total > MAX_INPUT_BYTES:
            raise ValueError(f"inputs total {total} bytes; the limit is {MAX_INPUT_BYTES}")
        return self

    @model_validator(mode="after")
    def _deployment_fits(self) -> ServiceSpec:
        if not self.containers:
            if self.alias is not None or self.depends_on:
                raise ValueError("alias and depends_on name containers: list them in containers")
            return self
        if self.alias is None:
            raise ValueError("a deployment of several containers names its main one (alias)")
        names = [self.alias, *(c.name for c in self.containers)]
        if len(set(names)) != len(names):
            raise ValueError(f"container names must be distinct: {names}")
        start_order(self)  # no unknown or circular depends_on
        main_resources(self)  # the others leave the main container some of each
        return self


def main_resources(spec: ServiceSpec) -> Demand:
    """What the main container may use: the spec's resources less the other containers'.

    Raises:
        ValueError: the others take all the CPU or memory, or more GPUs or disk than the
            deployment has.
    """
    r, rest = spec.resources, spec.containers
    cpu = round(r.cpu - sum(c.resources.cpu for c in rest), 6)
    memory_mb = r.memory_mb - sum(c.resources.memory_mb for c in rest)
    gpu = r.gpu - sum(c.resources.gpu for c in rest)
    disk_mb = r.disk_mb - sum(c.resources.disk_mb for c in rest)
    if cpu <= 0 or memory_mb <= 0 or gpu < 0 or disk_mb < 0:
        raise ValueError(
            "the deployment's resources must be the sum of its containers' (the main one "
            "gets what the others leave; it needs some CPU and memory)"
        )
    return Demand(cpu=cpu, memory_mb=memory_mb, gpu=gpu, disk_mb=disk_mb)


def start_order(spec: ServiceSpec) -> list[str]:
    """The deployment's container names in an order that starts each after those it
    depends on (the main container is ``spec.alias``); names only, for one container.

    Raises:
        ValueError: a depends_on names no container of the deployment, or they go round.
    """
    if not spec.containers:
        return [spec.alias or spec.name]
    main = spec.alias or spec.name
    needs = {main: list(spec.depends_on), **{c.name: list(c.depends_on) for c in spec.containers}}
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: placed

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"depends_on goes round: {' -> '.join([*path, name])}")
        state[name] = 1
        for dep in needs[name]:
            if dep not in needs:
                raise ValueError(f"{name} depends on {dep!r}, which is not a container here")
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for name in needs:
        visit(name, [])
    return order


_DEPLOYMENT_FIELDS = ("alias", "depends_on", "containers")
# fields a spec hashes without when they are empty, so older specs keep their hashes
_LEFT_OUT_WHEN_EMPTY = (*_DEPLOYMENT_FIELDS, "snapshot_s")


def service_spec_hash(spec: ServiceSpec) -> str:
    """keccak256 of the spec's canonical JSON: the lease's spec hash on chain. It covers
    every container of a deployment; a spec of one container hashes without the
    deployment's fields (as it did before deployments had several), and one without
    snapshots without ``snapshot_s``."""
    body = hashed_body(spec)
    for key in _LEFT_OUT_WHEN_EMPTY:
        if not body.get(key):
            body.pop(key, None)
    return "0x" + keccak(canonical_json(body)).hex()


class ServiceState(enum.StrEnum):
    """A service's life as the provider sees it."""

    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class ServiceReport(Wire):
    """What a provider reports about a service it runs (signed, purpose service.report)."""

    name: ServiceName
    lease_id: int = Field(ge=1)
    host_port: int = Field(ge=1, le=65535, description="where the provider publishes it")
    state: ServiceState
    restarts: int = Field(default=0, ge=0)
    uptime_s: float = Field(default=0, ge=0, description="since the last healthy start")
    last_error: Annotated[str, StringConstraints(max_length=1000)] = ""


class ServiceRoute(Wire):
    """Where the ingress gateway sends a name's traffic now."""

    name: ServiceName
    target: str = Field(description="http://host:port of the provider's published port")
    lease_id: int = Field(ge=1)
    healthy: bool
