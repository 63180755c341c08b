"""Docker details of services: labels, names, the hardened container config, networks.

A service container gets the same hardening as a job (``agents.provider.runtime``):
CPU, memory (no extra swap) and process-count caps, the lowest CPU share and highest OOM
score, a read-only root with a small ``/tmp``, a non-root user, no capabilities,
no-new-privileges; plus its data area at ``/data`` (``workarea.py``'s size-limited area,
kept across container restarts), its inputs read-only at ``/input``, and either no
network at all or, when it asked for outbound network and the owner allows it, a bridge
network of its own (so it shares a network with no other container). The containers of a
deployment share one network of their own instead, where each answers to its name
(``stack.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from agents.errors import AgentError
from agents.provider.runtime import DEFAULT_DISK_MB
from agents.provider.workarea import TMPFS
from protocol.schemas import Demand
from protocol.services import ServiceSpec

# Distinct from the job runtime's dcloud.agent label on purpose: that runtime takes every
# container with its agent label for a job of its own.
AGENT_LABEL = "dcloud.service-agent"
SERVICE_LABEL = "dcloud.service"
KIND_LABEL = "dcloud.workarea"
DISK_LABEL = "dcloud.disk-mb"
CONTAINER_LABEL = "dcloud.container"  # a deployment's other containers: their name
TMP_MB = 16
LOG_FILE = "16m"  # two such files of log records per container
API_TIMEOUT_S = 30


def name_of(agent_id: str, lease: str) -> str:
    """A name unique to the agent and lease, usable for containers, networks and folders."""
    digest = hashlib.sha256(f"{agent_id}\0{lease}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-zA-Z0-9_.-]", "_", lease) or "lease"
    return f"svc-{slug[:40]}-{digest}"


def data_mb(spec: ServiceSpec) -> int:
    """The size of the service's /data: its disk_mb, or the jobs' default when 0."""
    return spec.resources.disk_mb or DEFAULT_DISK_MB


def labels(agent_id: str, lease: str, **more: str) -> dict[str, str]:
    return {AGENT_LABEL: agent_id, SERVICE_LABEL: lease, **more}


def container_config(
    *,
    name: str,
    agent_id: str,
    lease: str,
    spec: ServiceSpec,
    user: tuple[int, int],
    area_root: str,
    kind: str,
    network: str,
    env: dict[str, str],
    member: Member | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``containers.create`` for the service, or for one `member` of a
    deployment (its own resources, hostname and folder of /data, its name on the network)."""
    r = member.resources if member else spec.resources
    # a tmpfs data area is charged to the container's memory cgroup: add it to the cap
    memory_mb = r.memory_mb + (data_mb(spec) if kind == TMPFS else 0)
    net: dict[str, Any] = {"network": network} if network else {"network_disabled": True}
    more = {KIND_LABEL: kind, DISK_LABEL: str(data_mb(spec))}
    data = f"{area_root}/output"
    if member is not None:
        net["networking_config"] = {network: member.endpoint}
        data += f"/{member.name}"
        if member.extra:
            more[CONTAINER_LABEL] = member.name
    return {
        "name": f"dcloud-{name}",
        "hostname": member.name if member else spec.name,
        "labels": labels(agent_id, lease, **more),
        "environment": env,
        "user": f"{user[0]}:{user[1]}",
        "working_dir": "/data",
        "volumes": {
            f"{area_root}/input": {"bind": "/input", "mode": "ro"},
            data: {"bind": "/data", "mode": "rw"},
        },
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_MB}m,mode=1777"},
        "read_only": True,
        "nano_cpus": round(min(r.cpu, os.cpu_count() or 1) * 1e9),
        "cpu_shares": 2,  # the lowest weight: the owner's processes come first
        "mem_limit": f"{memory_mb}m",
        "memswap_limit": f"{memory_mb}m",
        "oom_score_adj": 1000,
        "pids_limit": 256,
        "ulimits": [docker.types.Ulimit(name="nofile", soft=1024, hard=1024)],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "log_config": docker.types.LogConfig(
            type="json-file", config={"max-size": LOG_FILE, "max-file": "2"}
        ),
        "restart_policy": {"Name": "no"},  # the supervisor restarts, with its backoff
        **net,
    }


@dataclass(frozen=True)
class Member:
    """One container of a deployment: its name on the deployment's network (and folder
    under the data area), what it runs and may use, whether it is one of the others (not
    the main container), and its endpoint on the network
    (``APIClient.create_endpoint_config``, which carries the name as a DNS alias)."""

    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    resources: Demand
    extra: bool
    endpoint: Any


def exit_reason(state: dict[str, Any]) -> str:
    """Why a stopped container stopped, from its engine state."""
    if state.get("OOMKilled"):
        return "killed for going over its memory limit (OOM)"
    if state.get("Error"):
        return f"could not run: {state['Error']}"
    code = int(state.get("ExitCode") or 0)
    if code == 137:
        return "killed (exit code 137)"
    return f"exited with code {code}"


def client_from_env() -> docker.DockerClient:
    try:
        return docker.from_env(timeout=API_TIMEOUT_S, max_pool_size=32)
    except docker.errors.DockerException as exc:
        raise AgentError(
            f"cannot reach the Docker engine ({exc}); start it "
            "(tools/dockerd.sh start in a dcloud checkout) or set DOCKER_HOST"
        ) from None


@contextlib.contextmanager
def engine(doing: str) -> Iterator[None]:
    """Turn the engine's failures into one AgentError that says what was being done."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise AgentError(f"the Docker engine failed to {doing}: {exc}") from exc
