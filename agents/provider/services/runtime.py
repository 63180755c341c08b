"""Run renters' services (long-running containers) for the provider agent.

:class:`ServiceRuntime` deploys a leased service (:meth:`~ServiceRuntime.deploy`),
publishes its port on a host port it reserves for the lease, serves its logs, restarts
it when the supervisor asks, finds it again after an agent restart
(:meth:`~ServiceRuntime.reconcile`) and removes every trace of it when the lease ends
(:meth:`~ServiceRuntime.stop`). Containers are hardened as jobs are (``engine.py``).

Isolation between renters: a service without outbound network has no network interface
but loopback, so it can reach neither other containers nor the host. One with outbound
network (asked for, and allowed by the owner) has a bridge network of its own: the
engine drops traffic between bridge networks. Either way the port is published by the
agent's own forwarder (``forward.py``), which enters the container's network namespace
to reach the port and refuses connections from any container on this host. While the
agent is down, the ports are not served; the services keep running. A deployment of
several containers has an internal network of its own, where its containers reach each
other by name and nothing else (``stack.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from agents.errors import NotFoundError, RefusedError
from agents.provider.images.harden import volume_tmpfs
from agents.provider.images.source import engine_image
from agents.provider.services import engine as eng
from agents.provider.services import fence, objects, stack
from agents.provider.services.area import remake_data
from agents.provider.services.forward import PortForwarder
from agents.provider.services.logs import merged_follow, merged_tail
from agents.provider.services.netns import connect_in
from agents.provider.services.reach import Reach
from agents.provider.services.store import FAILED, STARTING, ServiceRecord, ServiceStore
from agents.provider.workarea import FOLDER, TMPFS, WorkArea
from protocol.services import ServiceSpec

logger = logging.getLogger(__name__)

DEFAULT_PORTS = range(20000, 30000)
TMPFS_MAX_MB = 256
_KILL_WAIT_S = 10
LOG_TAIL_BYTES = 256 * 2**10


@dataclass
class ReconcileReport:
    """What :meth:`ServiceRuntime.reconcile` did, by lease."""

    kept: list[str] = field(default_factory=list)  # running: left as they were
    started: list[str] = field(default_factory=list)  # stopped containers started again
    recreated: list[str] = field(default_factory=list)  # container gone: made again
    removed: list[str] = field(default_factory=list)  # lease over: container etc. removed
    unknown: list[str] = field(default_factory=list)  # live, but never deployed here


class ServiceRuntime:
    """Services of one agent; thread-safe (one lock serialises changes to containers).

    Args:
        store: the service records (``<home>/services.db``).
        work_root: where data areas live (``<home>/services``); not the job runtime's
            work root, whose release_all() empties its folder.
        agent_id: labels this agent's service containers and networks.
        public_host: the host name or address renters reach this machine at; services
            see ``http://<public_host>:<host port>`` as DCLOUD_SERVICE_URL.
        publish_host: the address forwarders listen on.
        ports: the host ports the agent may reserve for services.
        allow_network: whether the owner lets services have outbound network.
        tmpfs_max_mb: data areas up to this size are tmpfs mounts with an exact limit.
    """

    def __init__(
        self,
        *,
        store: ServiceStore,
        work_root: Path,
        agent_id: str,
        public_host: str,
        client: docker.DockerClient | None = None,
        publish_host: str = "0.0.0.0",
        ports: range = DEFAULT_PORTS,
        allow_network: bool = False,
        tmpfs_max_mb: int = TMPFS_MAX_MB,
    ) -> None:
        self.client = client or eng.client_from_env()
        self.store = store
        self.work_root = Path(work_root)
        self.agent_id = agent_id
        self.public_host = public_host
        self.publish_host = publish_host
        self.ports = ports
        self.allow_network = allow_network
        self.tmpfs_max_mb = tmpfs_max_mb
        root = os.geteuid() == 0
        self._user = (65534, 65534) if root else (os.geteuid(), os.getegid())
        self._lock = threading.RLock()
        self._forwarders: dict[str, PortForwarder] = {}
        self._reach = Reach(self.client)

    # --- life of a service --------------------------------------------------------------

    def deploy(
        self, lease: str, spec: ServiceSpec, inputs: dict[str, bytes], restore: bytes | None = None
    ) -> ServiceRecord:
        """Start the lease's service; for a lease already deployed, make sure it runs.

        Outbound network is given only when the spec asks and the owner allows it.

        Raises:
            RefusedError: the image is missing, an input path is unsafe, no host port is
                free, or the container cannot start (a bad command, say).
            AgentError: the engine failed.
        """
        with self._lock:
            known = self.store.get(lease)
            if known is not None:
                self._ensure(known, objects.containers(self.client, self.agent_id).get(lease, []))
                return self._record(lease)
            for image in stack.images(spec):
                if not objects.has_image(self.client, engine_image(image)):
                    raise RefusedError(f"this provider does not have the image {image!r}")
            name = eng.name_of(self.agent_id, lease)
            area = WorkArea(self.work_root / name)
            forwarder = self._reserve_port(lease)
            rec = ServiceRecord(
                lease=lease,
                spec=spec,
                host_port=forwarder.port,
                data_area=str(area.root),
                network=name if spec.containers or self._outbound(spec) else "",
                state=STARTING,
            )
            if spec.network and not self.allow_network:
                logger.info(
                    "service asked for network; the owner allows none", extra={"lease": lease}
                )
            self.store.add(rec)
            try:
                disk_mb = eng.data_mb(spec)
                kind = area.prepare(
                    inputs=inputs,
                    disk_mb=disk_mb,
                    uid=self._user[0],
                    gid=self._user[1],
                    tmpfs=disk_mb <= self.tmpfs_max_mb,
                    restore=restore,  # a snapshot of /data, unpacked before the start
                )
                self.store.update(lease, area_kind=kind)
                rec.area_kind = kind
                self._ensure(rec, [], serve=False)
            except BaseException:
                forwarder.close()
                self._teardown(lease)
                raise
            self._forwarders[lease] = forwarder
            logger.info(
                "service deployed",
                extra={"lease": lease, "port": rec.host_port, "image": spec.image, "area": kind},
            )
            return self._record(lease)

    def stop(self, lease: str) -> None:
        """The lease ended: remove its container, network, data area and record; safe if absent."""
        with self._lock:
            self._teardown(lease)

    def reconcile(self, live: Iterable[str]) -> ReconcileReport:
        """Match the engine to the leases the agent knows to be live (after a restart, say).

        Containers, networks, areas and records of leases not in `live` are removed. For
        each live lease with a record, exactly one container is kept: a running one is
        left alone (same container, same host port), a stopped one is started, a missing
        one is created again (its /data survives unless the machine rebooted). Live
        leases without a record are reported as unknown: deploy them. Calling it again
        changes nothing.
        """
        live = set(live)
        report = ReconcileReport()
        with self._lock:
            found = objects.containers(self.client, self.agent_id, every=True)
            records = {r.lease: r for r in self.store.all()}
            nets = objects.networks(self.client, self.agent_id)
            for lease in sorted((set(found) | set(records) | set(nets)) - live):
                self._teardown(lease)
                report.removed.append(lease)
            for lease in sorted(live):
                rec = records.get(lease)
                if rec is None:
                    for c in found.get(lease, []):
                        objects.remove_container(c)
                    report.unknown.append(lease)
                    continue
                main = [c for c in found.get(lease, []) if eng.CONTAINER_LABEL not in c.labels]
                getattr(report, self._ensure(rec, main)).append(lease)
            keep = {Path(r.data_area).name for r in records.values() if r.lease in live}
            if self.work_root.is_dir():
                for folder in self.work_root.iterdir():
                    if folder.is_dir() and folder.name not in keep:
                        WorkArea(folder).remove()
        logger.info("services reconciled", extra={k: v for k, v in vars(report).items() if v})
        return report

    def close(self) -> None:
        """Stop serving ports (the agent is stopping); containers keep running."""
        with self._lock:
            for forwarder in self._forwarders.values():
                forwarder.close()
            self._forwarders.clear()
        self._reach.close()

    # --- what the supervisor uses -------------------------------------------------------

    def get(self, lease: str) -> ServiceRecord | None:
        return self.store.get(lease)

    def records(self) -> list[ServiceRecord]:
        return self.store.all()

    def update(self, lease: str, **fields: Any) -> None:
        self.store.update(lease, **fields)

    def running(self, lease: str) -> tuple[bool, str]:
        """Whether the lease's container runs; if not, why (exit code, OOM, gone)."""
        container = self._container(lease)
        if container is None:
            return False, "its container is gone"
        state = container.attrs["State"]
        if not state.get("Running") or state.get("Restarting"):
            return False, eng.exit_reason(state)
        rec = self.store.get(lease)
        if rec is not None and rec.spec.containers:
            every = objects.containers(self.client, self.agent_id, every=True).get(lease, [])
            why = stack.stopped(rec.spec, every)
            return not why, why
        return True, ""

    def restart(self, lease: str) -> None:
        """Start the lease's stopped container again (made again if it is gone)."""
        with self._lock:
            rec = self._record(lease)
            self._ensure(rec, objects.containers(self.client, self.agent_id).get(lease, []))

    def kill(self, lease: str) -> None:
        """Stop the lease's container (SIGKILL); the supervisor restarts it later."""
        container = self._container(lease)
        if container is None:
            return
        with contextlib.suppress(docker.errors.APIError):
            container.kill()
        with contextlib.suppress(Exception):
            container.wait(timeout=_KILL_WAIT_S)

    def serve_port(self, lease: str) -> str:
        """Make sure the lease's host port is served; '' or why it cannot be (port taken)."""
        with self._lock:
            if lease in self._forwarders:
                return ""
            rec = self.store.get(lease)
            if rec is None:
                return "no such service"
            try:
                self._forwarders[lease] = self._forwarder(lease, rec.host_port)
            except OSError as exc:
                return f"host port {rec.host_port} cannot be served: {exc.strerror or exc}"
            return ""

    def data_full(self, lease: str) -> bool:
        """Whether a folder data area grew past its limit (a tmpfs one cannot)."""
        rec = self.store.get(lease)
        if rec is None or rec.area_kind != FOLDER:
            return False
        return WorkArea(Path(rec.data_area)).full(FOLDER, eng.data_mb(rec.spec))

    def connect(self, lease: str, timeout: float) -> socket.socket:
        """A connection to the service's port, inside its container's network.

        Raises:
            OSError: the container does not run, or nothing accepts on the port.
        """
        rec = self.store.get(lease)
        if rec is None:
            raise ConnectionRefusedError(f"lease {lease} has no service")
        fd = self._reach.netns_fd(lease, lambda: self._container(lease))
        return connect_in(fd, rec.spec.port, timeout=timeout)

    # --- logs ---------------------------------------------------------------------------

    def logs_tail(self, lease: str, *, lines: int = 200, max_bytes: int = LOG_TAIL_BYTES) -> bytes:
        """The last `lines` lines of the service's output (stdout and stderr interleaved;
        a deployment's containers' in time order, each line after its container's name),
        at most the last `max_bytes` of them.

        Raises:
            NotFoundError: the lease has no container.
        """
        every, main = self._logged(lease)
        data = merged_tail(every, main=main, lines=max(lines, 0))
        return data[-max_bytes:] if max_bytes > 0 else b""

    def logs_follow(
        self,
        lease: str,
        *,
        since: float | None = None,
        max_bytes: int = 2**20,
        stop: threading.Event | None = None,
    ) -> Iterator[bytes]:
        """New lines of the service's output as they come (see ``logs.follow_lines``; a
        deployment's containers' as they come, each after its container's name).

        Lines since `since` (Unix seconds) first, when given. Ends after `max_bytes`,
        when the (main) container stops (a restart ends it too: follow again), when `stop`
        is set, or when the caller closes the iterator.

        Raises:
            NotFoundError: the lease has no container.
        """
        every, main = self._logged(lease)
        return merged_follow(every, main=main, since=since, max_bytes=max_bytes, stop=stop)

    def _logged(self, lease: str) -> tuple[list[Any], str]:
        container = self._container(lease)
        if container is None:
            raise NotFoundError(f"lease {lease} has no service here")
        return stack.logged(self.client, self.agent_id, self.store.get(lease), container)

    # --- internals ----------------------------------------------------------------------

    def _record(self, lease: str) -> ServiceRecord:
        rec = self.store.get(lease)
        if rec is None:
            raise NotFoundError(f"lease {lease} has no service here")
        return rec

    def _container(self, lease: str) -> Any:
        """The lease's container (the recorded one when there are several), or None."""
        rec = self.store.get(lease)
        found = objects.containers(self.client, self.agent_id).get(lease, [])
        for c in found:
            if rec is not None and c.id == rec.container_id:
                return c
        return found[0] if found else None

    def _ensure(self, rec: ServiceRecord, found: list[Any], *, serve: bool = True) -> str:
        """Leave exactly one container for the record (one per member of a deployment),
        running, started in depends_on order; returns what was done."""
        keep = next((c for c in found if c.id == rec.container_id), None)
        keep = keep or next((c for c in found if c.status == "running"), None)
        keep = keep or (found[0] if found else None)
        for c in found:
            if c is not keep:
                logger.warning("removing a duplicate service container", extra={"lease": rec.lease})
                objects.remove_container(c)
        outcome = "kept"
        members = stack.members(self.client, rec.spec)
        others: dict[str, list[Any]] = {}
        if members and rec.state != FAILED:
            fence.fence(fence.bridge_of(rec.network))  # again after a reboot dropped it
            every = objects.containers(self.client, self.agent_id, every=True)
            others = stack.by_name(every.get(rec.lease, []))
        for member in members.values() or [None]:
            if rec.state == FAILED:
                break
            if member is None or not member.extra:
                keep, done = self._ensure_one(rec, keep, member)
            else:
                extra, duplicates = stack.pick(others.get(member.name, []))
                for c in duplicates:
                    objects.remove_container(c)
                done = self._ensure_one(rec, extra, member)[1]
            outcome = done if outcome == "kept" else outcome
        if keep is not None:
            self.store.update(rec.lease, container_id=keep.id)
        if serve:
            self.serve_port(rec.lease)
        return outcome

    def _ensure_one(
        self, rec: ServiceRecord, keep: Any, member: eng.Member | None
    ) -> tuple[Any, str]:
        """Make `keep` (a container of the record, or of one of its members) run."""
        if keep is None:
            area = WorkArea(Path(rec.data_area))
            if not area.input.is_dir():
                self.store.update(rec.lease, state=FAILED, last_error="its files are gone")
                rec.state = FAILED
                return None, "kept"
            if rec.area_kind == TMPFS and not os.path.ismount(area.output):
                # the machine restarted: the RAM-backed /data is gone; make it again, empty
                tmpfs = eng.data_mb(rec.spec) <= self.tmpfs_max_mb
                kind = remake_data(area, eng.data_mb(rec.spec), self._user, tmpfs=tmpfs)
                self.store.update(rec.lease, area_kind=kind, last_error="/data was lost")
                rec.area_kind = kind
            keep = self._create(rec, member)
            objects.start(keep)
            return keep, "recreated"
        if keep.status == "running":
            return keep, "kept"
        objects.start(keep)
        return keep, "started"

    def _create(self, rec: ServiceRecord, member: eng.Member | None = None) -> Any:
        spec = rec.spec
        network = rec.network
        if network:
            stack.ensure_network(
                self.client,
                name=network,
                agent_id=self.agent_id,
                lease=rec.lease,
                internal=not self._outbound(spec),
                deployment=bool(spec.containers),
            )
        env = {
            "HOME": "/tmp",
            **spec.env,
            "PORT": str(spec.port),
            "DCLOUD_SERVICE_NAME": spec.name,
            "DCLOUD_SERVICE_URL": f"http://{self.public_host}:{rec.host_port}",
            "DCLOUD_SERVICE_PORTS": f"{spec.port}:{rec.host_port}",
        }
        name = eng.name_of(self.agent_id, rec.lease)
        image, command = spec.image, spec.command
        if member is not None:
            stack.data_folder(Path(rec.data_area) / "output", member.name, self._user)
        if member is not None and member.extra:
            env = {"HOME": "/tmp", **member.env, "DCLOUD_SERVICE_NAME": spec.name}
            name, image, command = f"{name}-{member.name}", member.image, member.command
        config = eng.container_config(
            name=name,
            agent_id=self.agent_id,
            lease=rec.lease,
            spec=spec,
            user=self._user,
            area_root=str(Path(rec.data_area).resolve()),
            kind=rec.area_kind,
            network=network,
            env=env,
            member=member,
        )
        with eng.engine("create a service's container"):
            image = engine_image(image)  # a renter's image by its id, never a name
            config["tmpfs"] = {**volume_tmpfs(self.client, image), **config["tmpfs"]}
            container = self.client.containers.create(image, list(command), **config)
        if member is None or not member.extra:
            self.store.update(rec.lease, container_id=container.id, state=STARTING)
        return container

    def _outbound(self, spec: ServiceSpec) -> bool:
        """Whether the service gets outbound network: it asked, and the owner allows it."""
        return spec.network and self.allow_network

    def _teardown(self, lease: str) -> None:
        forwarder = self._forwarders.pop(lease, None)
        if forwarder is not None:
            forwarder.close()
        self._reach.forget(lease)
        for c in objects.containers(self.client, self.agent_id, every=True).get(lease, []):
            objects.remove_container(c)
        for n in objects.networks(self.client, self.agent_id).get(lease, []):
            objects.remove_network(n)
            fence.unfence(fence.bridge_of(n.name))
        rec = self.store.get(lease)
        area = Path(rec.data_area) if rec else self.work_root / eng.name_of(self.agent_id, lease)
        WorkArea(area).remove()
        self.store.remove(lease)
        logger.info("service removed", extra={"lease": lease})

    def _reserve_port(self, lease: str) -> PortForwarder:
        """A forwarder on the first port of the range neither recorded nor taken."""
        taken = self.store.ports()
        for port in self.ports:
            if port in taken:
                continue
            try:
                return self._forwarder(lease, port)
            except OSError:
                continue  # another program holds it
        raise RefusedError(f"no free host port in {self.ports.start}-{self.ports.stop - 1}")

    def _forwarder(self, lease: str, port: int) -> PortForwarder:
        return PortForwarder(
            self.publish_host,
            port,
            connect=lambda: self.connect(lease, 10.0),
            refuse=self._reach.from_container,
            name=lease,
        )
