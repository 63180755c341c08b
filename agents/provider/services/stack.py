"""Deployments of several containers on the provider: one private network, names, order.

A deployment's containers (the main one, whose port the agent publishes, and the others
its spec lists) share a Docker network made for the lease alone: ``internal`` (no route
out of it, and so none to any other network or the internet) unless the spec asked for
outbound network and the owner allows it. On it each container answers to its name (a
DNS alias on the engine's resolver). No other container joins it, and the engine drops
traffic between bridge networks, so another renter's containers can neither resolve the
names nor reach the addresses, and the bridge is fenced off from the provider's own
machine (``fence.py``). Each container gets its own folder of the deployment's
``/data`` area, its own CPU and memory, and the hardening every service gets
(``engine.py``); they start in depends_on order (``protocol.services.start_order``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker

from agents.provider.services import engine as eng
from agents.provider.services import fence, objects
from agents.provider.services.store import ServiceRecord
from protocol.services import ServiceSpec, main_resources, start_order


def members(client: docker.DockerClient, spec: ServiceSpec) -> dict[str, eng.Member]:
    """The deployment's containers by name, in start order; empty for a single container."""
    if not spec.containers:
        return {}
    main = eng.Member(
        name=spec.alias or spec.name,
        image=spec.image,
        command=list(spec.command),
        env=dict(spec.env),
        resources=main_resources(spec),
        extra=False,
        endpoint=client.api.create_endpoint_config(aliases=[spec.alias or spec.name]),
    )
    found = {main.name: main}
    for c in spec.containers:
        found[c.name] = eng.Member(
            name=c.name,
            image=c.image,
            command=list(c.command),
            env=dict(c.env),
            resources=c.resources,
            extra=True,
            endpoint=client.api.create_endpoint_config(aliases=[c.name]),
        )
    return {name: found[name] for name in start_order(spec)}


def images(spec: ServiceSpec) -> list[str]:
    """Every image the deployment runs, the main container's first."""
    return list(dict.fromkeys([spec.image, *(c.image for c in spec.containers)]))


def ensure_network(
    client: docker.DockerClient,
    *,
    name: str,
    agent_id: str,
    lease: str,
    internal: bool,
    deployment: bool,
) -> None:
    """Make the lease's network unless it exists; a deployment's bridge gets the name
    ``fence.py`` fences off from the host."""
    options = {fence.BRIDGE_OPTION: fence.bridge_of(name)} if deployment else {}
    with eng.engine("create a service's network"):
        if not client.networks.list(names=[name]):
            client.networks.create(
                name,
                driver="bridge",
                internal=internal,
                options=options,
                labels=eng.labels(agent_id, lease),
            )


def data_folder(area_output: Path, name: str, user: tuple[int, int]) -> None:
    """The member's folder of /data, made (owned by the containers' user) unless it is."""
    folder = area_output / name
    if folder.is_dir():
        return
    folder.mkdir()
    if os.geteuid() == 0:
        os.chown(folder, *user)
    folder.chmod(0o700)


def by_name(found: Iterable[Any]) -> dict[str, list[Any]]:
    """A lease's other containers (not the main one), by their name in the deployment."""
    out: dict[str, list[Any]] = {}
    for c in found:
        name = c.labels.get(eng.CONTAINER_LABEL)
        if name:
            out.setdefault(name, []).append(c)
    return out


def pick(found: list[Any]) -> tuple[Any, list[Any]]:
    """Which of a member's containers to keep (a running one first), and the duplicates."""
    keep = next((c for c in found if c.status == "running"), None)
    keep = keep or (found[0] if found else None)
    return keep, [c for c in found if c is not keep]


def stopped(spec: ServiceSpec, found: Iterable[Any]) -> str:
    """Why one of the deployment's other containers does not run ('' when all run)."""
    named = by_name(found)
    for c in spec.containers:
        keep, _ = pick(named.get(c.name, []))
        if keep is None:
            return f"container {c.name} is gone"
        state = keep.attrs["State"]
        if not state.get("Running") or state.get("Restarting"):
            return f"container {c.name} {eng.exit_reason(state)}"
    return ""


def logged(
    client: docker.DockerClient, agent_id: str, rec: ServiceRecord | None, main: Any
) -> tuple[list[Any], str]:
    """The containers whose logs are the service's, the `main` one first, and the main
    one's name in its deployment ('' for a single container)."""
    if rec is None or not rec.spec.containers:
        return [main], ""
    every = objects.containers(client, agent_id, every=True).get(rec.lease, [])
    return [main, *(c for c in every if eng.CONTAINER_LABEL in c.labels)], rec.spec.alias or ""
