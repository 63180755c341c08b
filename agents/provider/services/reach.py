"""How the agent reaches its services, and tells a container's connection from others'.

:class:`Reach` keeps, per lease, the network namespace of the service's container (an
open descriptor, checked against the container before each use, so a restarted
container or a recycled process id is noticed), and the subnets of the engine's
networks, so the forwarder can refuse connections that come from any container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import docker

from agents.errors import AgentError
from agents.provider.services import engine as eng
from agents.provider.services.netns import open_netns, same_netns

_SUBNETS_TTL_S = 5.0  # how long a list of the engine's subnets is trusted
_PRIVATE_TTL_S = 0.5  # ... when a private address is not in it (a new network, maybe)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Reach:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._netns: dict[str, tuple[str, int, int]] = {}  # lease -> container id, pid, fd
        self._lock = threading.Lock()
        self._subnets: list[Network] = []
        self._subnets_at = 0.0

    def netns_fd(self, lease: str, container: Callable[[], Any]) -> int:
        """A new descriptor of the lease's container's network namespace (the caller closes
        it); `container()` looks the container up when the cached one is stale.

        Raises:
            OSError: the container is gone or does not run.
        """
        with self._lock:
            cached = self._netns.get(lease)
            if cached is not None and same_netns(cached[2], cached[1], cached[0]):
                return os.dup(cached[2])
        found = container()
        if found is None:
            raise ConnectionRefusedError(f"lease {lease}'s container is gone")
        pid = int(found.attrs["State"].get("Pid") or 0)
        fd = open_netns(pid, found.id)
        with self._lock:
            self._forget(lease)
            self._netns[lease] = (found.id, pid, fd)
            return os.dup(fd)

    def forget(self, lease: str) -> None:
        with self._lock:
            self._forget(lease)

    def close(self) -> None:
        with self._lock:
            for lease in list(self._netns):
                self._forget(lease)

    def _forget(self, lease: str) -> None:
        old = self._netns.pop(lease, None)
        if old is not None:
            os.close(old[2])

    def from_container(self, ip: str) -> bool:
        """Whether `ip` belongs to one of the engine's networks (a container is calling)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return True
        if addr.is_loopback:
            return False
        if any(addr in net for net in self._subnets):
            return True
        ttl = _PRIVATE_TTL_S if addr.is_private else _SUBNETS_TTL_S
        if time.monotonic() - self._subnets_at > ttl:
            self._subnets = self._engine_subnets()
            self._subnets_at = time.monotonic()
        return any(addr in net for net in self._subnets)

    def _engine_subnets(self) -> list[Network]:
        subnets: list[Network] = []
        with contextlib.suppress(AgentError), eng.engine("list networks"):
            for n in self.client.networks.list():
                for conf in (n.attrs.get("IPAM") or {}).get("Config") or []:
                    with contextlib.suppress(KeyError, ValueError):
                        subnets.append(ipaddress.ip_network(conf["Subnet"]))
        return subnets
