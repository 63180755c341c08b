"""The engine objects of services: their containers and networks, found by label, started
and removed, with the engine's failures turned into agent errors (``engine.py``)."""

from __future__ import annotations

import contextlib
from typing import Any

import docker
import docker.errors

from agents.errors import AgentError, RefusedError
from agents.provider.services import engine as eng


def has_image(client: docker.DockerClient, image: str) -> bool:
    """Whether the engine holds `image`."""
    with eng.engine("look up an image"):
        try:
            client.images.get(image)
        except docker.errors.APIError as exc:
            if exc.is_client_error():
                return False
            raise
    return True


LIST_ATTEMPTS = 5


def containers(
    client: docker.DockerClient, agent_id: str, *, every: bool = False
) -> dict[str, list[Any]]:
    """The agent's service containers, by lease: the main ones, or with `every` also the
    other containers of deployments (``stack.py``)."""
    labels = {"label": f"{eng.AGENT_LABEL}={agent_id}"}
    with eng.engine("list service containers"):
        for attempt in range(LIST_ATTEMPTS):  # the SDK lists, then inspects each container:
            try:  # one removed in between is not found
                found = client.containers.list(all=True, filters=labels)
                break
            except docker.errors.NotFound:
                if attempt == LIST_ATTEMPTS - 1:
                    raise
    out: dict[str, list[Any]] = {}
    for c in found:
        if every or eng.CONTAINER_LABEL not in c.labels:
            out.setdefault(c.labels[eng.SERVICE_LABEL], []).append(c)
    return out


def networks(client: docker.DockerClient, agent_id: str) -> dict[str, list[Any]]:
    """The agent's service networks, by lease."""
    with eng.engine("list service networks"):
        found = client.networks.list(filters={"label": f"{eng.AGENT_LABEL}={agent_id}"})
    out: dict[str, list[Any]] = {}
    for n in found:
        out.setdefault(n.attrs["Labels"][eng.SERVICE_LABEL], []).append(n)
    return out


def start(container: Any) -> None:
    try:
        container.start()
    except docker.errors.APIError as exc:
        raise RefusedError(
            f"the service's container could not start: {exc.explanation or exc}"
        ) from None
    except docker.errors.DockerException as exc:
        raise AgentError(f"the Docker engine failed to start a service: {exc}") from exc


def remove_container(container: Any) -> None:
    with (
        eng.engine("remove a service's container"),
        contextlib.suppress(docker.errors.NotFound),
    ):
        container.remove(force=True)


def remove_network(network: Any) -> None:
    with (
        eng.engine("remove a service's network"),
        contextlib.suppress(docker.errors.NotFound),
    ):
        network.remove()
