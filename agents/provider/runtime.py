"""Run renters' jobs in hardened Docker containers: the provider agent's job runtime.

Every container gets the job's CPU, memory (no extra swap), process-count and wall-clock
limits; a size-limited output area at ``/output`` (:mod:`agents.provider.workarea`); its
inputs read-only at ``/input``; a read-only root file system and a small ``/tmp``; no
network unless the caller allows it; a non-root user (65534, or the agent's own user when
the agent is not root); no capabilities; no-new-privileges; and the lowest CPU share and
highest OOM score, so the machine owner's own work comes first. Containers are labelled
with the agent and the job, so a restarted agent finds them again (:meth:`resume`,
:meth:`orphans`). Every Docker call that can block has a timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions
import urllib3.exceptions

from agents.errors import AgentError, RefusedError
from agents.provider.images.harden import volume_tmpfs
from agents.provider.workarea import FOLDER, TMPFS, WorkArea

logger = logging.getLogger(__name__)

JOB_IMAGE_LABEL = "dcloud.job-image"
AGENT_LABEL = "dcloud.agent"
JOB_LABEL = "dcloud.job"
_KIND_LABEL = "dcloud.workarea"
_DISK_LABEL = "dcloud.disk-mb"

LOG_CAP = 2 * 2**20  # bytes of logs kept: the last half of this from each stream
_LOG_FILE = "16m"  # the engine keeps two such files of log records per container
DEFAULT_DISK_MB = 16
TMPFS_MAX_MB = 256
TMP_MB = 16
API_TIMEOUT_S = 30  # any single Docker call
_KILL_WAIT_S = 10
_POLL_S = 1.0  # how often a folder work area's size is checked while the job runs


@dataclass(frozen=True)
class RunLimits:
    """What one run may use; `network` only when the job asks and the provider allows.

    `memory_mb` covers the job's processes and its 16 MB ``/tmp`` (a tmpfs); a tmpfs
    output area is added to the container's memory cap on top of it. `cpu` above the
    machine's core count is capped at it.
    """

    cpu: float  # cores, at least 0.01
    memory_mb: int  # RAM, at least 6; no swap on top
    disk_mb: int  # the output area (/output); 0 -> DEFAULT_DISK_MB
    time_limit_s: int  # wall clock, then the container is killed
    pids: int = 256
    network: bool = False

    def __post_init__(self) -> None:
        if self.cpu < 0.01 or self.memory_mb < 6 or self.disk_mb < 0:
            raise ValueError(f"impossible limits: {self}")
        if self.time_limit_s <= 0 or self.pids <= 0:
            raise ValueError(f"impossible limits: {self}")

    @property
    def output_mb(self) -> int:
        return self.disk_mb or DEFAULT_DISK_MB


@dataclass(frozen=True)
class RunResult:
    """How a run ended and what it left.

    `logs` is the job's stdout followed by its stderr, each cut to its last
    ``LOG_CAP // 2`` (1 MiB) bytes. Not interleaved on purpose: the engine copies the two
    streams concurrently, so their interleaving differs from run to run, while this is
    the same for the same output (the logs are part of the result hash). The engine
    keeps 32 MB of log records per container, which covers the kept bytes unless a job
    prints hundreds of thousands of tiny lines.
    `outputs` holds the regular files under /output ('/'-separated relative paths; links,
    pipes and devices are left out); it is empty when the job filled or overflowed its
    output area. `oom_killed` is set when any process of the job was killed for memory,
    even if the job then exited 0. `error` is '' or plain sentences joined by '; ':
    "killed after the 5 s time limit", "killed at the job's deadline", "memory limit 64
    MB exceeded (OOM)", "output exceeded the 16 MB work area", "the container could not
    start: ..." (exit code 127 then, unless the engine gave one). Times are Unix seconds
    from the engine's record of the container.
    """

    exit_code: int
    oom_killed: bool
    timed_out: bool
    logs: bytes
    outputs: dict[str, bytes]
    started_at: float
    finished_at: float
    error: str


class DockerRuntime:
    """Runs jobs for one agent; several threads may call it at once for different jobs.

    Args:
        client: a Docker client; by default one from the environment (DOCKER_HOST or
            the local socket) with a 30 s timeout per call.
        work_root: where job folders live; it must be on the machine the engine runs on.
        agent_id: labels this agent's containers (the provider's address, say).
        tmpfs_max_mb: output areas up to this size are RAM-backed tmpfs mounts with an
            exact limit (root only); larger ones are folders on disk.
    """

    def __init__(
        self,
        *,
        client: docker.DockerClient | None = None,
        work_root: Path,
        agent_id: str,
        tmpfs_max_mb: int = TMPFS_MAX_MB,
    ) -> None:
        if client is None:
            try:
                client = docker.from_env(timeout=API_TIMEOUT_S, max_pool_size=32)
            except docker.errors.DockerException as exc:
                raise AgentError(
                    f"cannot reach the Docker engine ({exc}); start it "
                    "(tools/dockerd.sh start in a dcloud checkout) or set DOCKER_HOST"
                ) from None
        self.client = client
        self.work_root = Path(work_root)
        self.agent_id = agent_id
        self.tmpfs_max_mb = tmpfs_max_mb
        root = os.geteuid() == 0
        self._uid, self._gid = (65534, 65534) if root else (os.geteuid(), os.getegid())

    # --- images -------------------------------------------------------------------------

    def images(self) -> list[str]:
        """Tags of the local images labelled ``dcloud.job-image=1`` (the ones offered)."""
        with _engine("list images"):
            found = self.client.images.list(filters={"label": f"{JOB_IMAGE_LABEL}=1"})
        return sorted(tag for image in found for tag in image.tags)

    def has_image(self, name: str) -> bool:
        """Whether the engine holds an image of that name (any image, labelled or not)."""
        with _engine("look up an image"):
            try:
                self.client.images.get(name)
            except docker.errors.APIError as exc:
                if exc.is_client_error():  # not found, or not a valid image name
                    return False
                raise
        return True

    # --- running ------------------------------------------------------------------------

    def run(
        self,
        job_key: str,
        *,
        image: str,
        command: list[str],
        env: dict[str, str],
        inputs: dict[str, bytes],
        limits: RunLimits,
    ) -> RunResult:
        """Run a job to its end (exit, kill at the time limit) and collect its result.

        Raises:
            RefusedError: the image is missing, or an input path is unsafe.
            AgentError: the job already has a container (resume or kill it first), or the
                engine failed.
        """
        if not self.has_image(image):
            offered = ", ".join(self.images()) or "none"
            raise RefusedError(
                f"this provider does not have the image {image!r} (it offers: {offered}); "
                "registries are not used, so pick an offered image"
            )
        if self._find(job_key) is not None:
            raise AgentError(f"job {job_key} already has a container; resume() or kill() it")
        area = self._area(job_key)
        disk_mb = limits.output_mb
        kind = area.prepare(
            inputs=inputs,
            disk_mb=disk_mb,
            uid=self._uid,
            gid=self._gid,
            tmpfs=disk_mb <= self.tmpfs_max_mb,
        )
        try:
            with _engine("create the job's container"):
                config = self._config(job_key, area, kind, limits, env)
                config["tmpfs"] = {**volume_tmpfs(self.client, image), **config["tmpfs"]}
                container = self.client.containers.create(image, command, **config)
        except BaseException:
            area.remove()
            raise
        logger.info(
            "job container starting",
            extra={"job": job_key, "image": image, "workarea": kind, "disk_mb": disk_mb},
        )
        start_error = self._start(container)
        if start_error:
            return self._collect(container, area, limits, error=start_error)
        return self._finish(container, area, limits, kill_at=time.time() + limits.time_limit_s)

    def resume(self, job_key: str, *, limits: RunLimits, deadline: float) -> RunResult | None:
        """After an agent restart: wait for the job's container and collect its result.

        The container is killed at its time limit (counted from when it started) or at
        `deadline` (Unix seconds), whichever comes first. Returns None when the job has
        no container (never started, or already cleaned up).
        """
        container = self._find(job_key)
        if container is None:
            return None
        area = self._area(job_key)
        status = container.attrs["State"]["Status"]
        logger.info("job container found again", extra={"job": job_key, "status": status})
        if status == "created":
            start_error = self._start(container)
            if start_error:
                return self._collect(container, area, limits, error=start_error)
        started = _timestamp(container.attrs["State"]["StartedAt"]) or time.time()
        kill_at = min(deadline, started + limits.time_limit_s)
        return self._finish(container, area, limits, kill_at=kill_at, deadline=deadline)

    def release_all(self) -> None:
        """Kill every container of this agent and remove every work area under work_root.

        For tearing a provider down for good (a devnet or test network closing), not for
        a restart: a restarted agent resumes what this would destroy.
        """
        for key in self.orphans():
            self.kill(key)
        if self.work_root.exists():
            for folder in self.work_root.iterdir():
                if folder.is_dir():
                    WorkArea(folder).remove()

    def kill(self, job_key: str) -> None:
        """Stop and remove the job's container and its work area; safe if absent."""
        container = self._find(job_key)
        if container is not None:
            logger.info("killing a job container", extra={"job": job_key})
            self._remove(container)
        self._area(job_key).remove()

    def cleanup(self, job_key: str) -> None:
        """Remove the job's container and work area once its result is stored elsewhere;
        safe if absent. The container is removed by its name, which only this agent's
        container of that job has (one request, where kill() looks it up first)."""
        with _engine("remove the job's container"), contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(f"dcloud-{self._name(job_key)}", force=True)
        self._area(job_key).remove()

    def orphans(self) -> list[str]:
        """Job keys of every container of this agent (running or not)."""
        with _engine("list containers"):
            found = self.client.containers.list(
                all=True, sparse=True, filters={"label": f"{AGENT_LABEL}={self.agent_id}"}
            )
        return sorted({c.attrs["Labels"][JOB_LABEL] for c in found})

    # --- internals ----------------------------------------------------------------------

    def _name(self, job_key: str) -> str:
        digest = hashlib.sha256(f"{self.agent_id}\0{job_key}".encode()).hexdigest()[:12]
        return f"{_slug(job_key)[:40]}-{digest}"

    def _area(self, job_key: str) -> WorkArea:
        return WorkArea(self.work_root / self._name(job_key))

    def _find(self, job_key: str) -> Any:
        labels = [f"{AGENT_LABEL}={self.agent_id}", f"{JOB_LABEL}={job_key}"]
        with _engine("look up a job's container"):
            found = self.client.containers.list(all=True, filters={"label": labels})
        return found[0] if found else None

    def _config(
        self, job_key: str, area: WorkArea, kind: str, limits: RunLimits, env: dict[str, str]
    ) -> dict[str, Any]:
        # A tmpfs work area is charged to the job's memory cgroup: add it to the cap so
        # the job keeps all of memory_mb for its processes.
        memory_mb = limits.memory_mb + (limits.output_mb if kind == TMPFS else 0)
        network: dict[str, Any] = (
            {"network_mode": "bridge"} if limits.network else {"network_disabled": True}
        )
        return {
            "name": f"dcloud-{self._name(job_key)}",
            "labels": {
                AGENT_LABEL: self.agent_id,
                JOB_LABEL: job_key,
                _KIND_LABEL: kind,
                _DISK_LABEL: str(limits.output_mb),
            },
            "environment": {"HOME": "/tmp", **env},
            "user": f"{self._uid}:{self._gid}",
            "working_dir": "/output",
            "volumes": {
                str(area.input.resolve()): {"bind": "/input", "mode": "ro"},
                str(area.output.resolve()): {"bind": "/output", "mode": "rw"},
            },
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_MB}m,mode=1777"},
            "read_only": True,
            "nano_cpus": round(min(limits.cpu, os.cpu_count() or 1) * 1e9),
            "cpu_shares": 2,  # the lowest weight: the owner's processes come first
            "mem_limit": f"{memory_mb}m",
            "memswap_limit": f"{memory_mb}m",
            "oom_score_adj": 1000,  # the host's OOM killer picks jobs first
            "pids_limit": limits.pids,
            "ulimits": [docker.types.Ulimit(name="nofile", soft=1024, hard=1024)],
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "log_config": docker.types.LogConfig(
                type="json-file", config={"max-size": _LOG_FILE, "max-file": "2"}
            ),
            **network,
        }

    def _start(self, container: Any) -> str:
        """Start the container; returns '' or why it could not start (a bad command, say)."""
        try:
            container.start()
        except docker.errors.APIError as exc:
            return f"the container could not start: {exc.explanation or exc}"
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise AgentError(
                f"the Docker engine failed to start the job's container: {exc}"
            ) from exc
        return ""

    def _finish(
        self,
        container: Any,
        area: WorkArea,
        limits: RunLimits,
        *,
        kill_at: float,
        deadline: float | None = None,
    ) -> RunResult:
        kind = container.labels.get(_KIND_LABEL, FOLDER)
        disk_mb = int(container.labels.get(_DISK_LABEL, limits.output_mb))
        errors: list[str] = []
        timed_out = overflowed = False
        while True:  # a container that already exited is collected, never killed
            remaining = kill_at - time.time()
            if _wait(container, remaining if kind == TMPFS else min(remaining, _POLL_S)):
                break
            if time.time() >= kill_at:
                timed_out = True
                break
            if kind == FOLDER and area.full(kind, disk_mb):
                overflowed = True
                break
        if timed_out or overflowed:
            self._kill(container)
        if timed_out:
            if deadline is not None and kill_at >= deadline:
                errors.append("killed at the job's deadline")
            else:
                errors.append(f"killed after the {limits.time_limit_s} s time limit")
        return self._collect(container, area, limits, error="; ".join(errors), timed_out=timed_out)

    def _collect(
        self,
        container: Any,
        area: WorkArea,
        limits: RunLimits,
        *,
        error: str = "",
        timed_out: bool = False,
    ) -> RunResult:
        try:
            with _engine("read the job's state and logs"):
                container.reload()
                out = container.logs(stdout=True, stderr=False)[-LOG_CAP // 2 :]
                err = container.logs(stdout=False, stderr=True)[-LOG_CAP // 2 :]
        except AgentError:
            if _removed(container):
                raise AgentError(
                    f"job {container.labels.get(JOB_LABEL)}'s container was removed while it "
                    "ran (kill() was called)"
                ) from None
            raise
        state = container.attrs["State"]
        kind = container.labels.get(_KIND_LABEL, FOLDER)
        disk_mb = int(container.labels.get(_DISK_LABEL, limits.output_mb))
        errors = [error] if error else []
        oom = bool(state.get("OOMKilled"))
        if oom:
            errors.append(f"memory limit {limits.memory_mb} MB exceeded (OOM)")
        overflowed = area.full(kind, disk_mb)
        if overflowed:
            errors.append(f"output exceeded the {disk_mb} MB work area")
        exit_code = int(state.get("ExitCode") or 0)
        if error.startswith("the container could not start") and exit_code == 0:
            exit_code = 127
        now = time.time()
        result = RunResult(
            exit_code=exit_code,
            oom_killed=oom,
            timed_out=timed_out,
            logs=out + err,
            outputs={} if overflowed else area.outputs(),
            started_at=_timestamp(state.get("StartedAt", "")) or now,
            # the engine's two stamps can disagree by a clock tick; never report a negative run
            finished_at=max(
                _timestamp(state.get("FinishedAt", "")) or now,
                _timestamp(state.get("StartedAt", "")) or now,
            ),
            error="; ".join(errors),
        )
        logger.info(
            "job container finished",
            extra={
                "job": container.labels.get(JOB_LABEL),
                "exit_code": exit_code,
                "error": result.error,
                "seconds": round(result.finished_at - result.started_at, 3),
            },
        )
        return result

    def _kill(self, container: Any) -> None:
        with contextlib.suppress(docker.errors.APIError):  # it exited meanwhile
            container.kill()
        if not _wait(container, _KILL_WAIT_S):
            raise AgentError(
                f"container {container.name} did not stop within {_KILL_WAIT_S} s of SIGKILL"
            )

    def _remove(self, container: Any) -> None:
        with _engine("remove the job's container"), contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def _removed(container: Any) -> bool:
    """Whether the container is gone or going (kill() removed it while a run waited)."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return True
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False
    return container.status in ("removing", "dead")


def _wait(container: Any, timeout: float) -> bool:
    """Wait up to `timeout` seconds for the container to exit; False if it still runs."""
    try:
        container.wait(timeout=max(timeout, 0.05))
    except requests.exceptions.ReadTimeout:
        return False
    except requests.exceptions.ConnectionError as exc:  # how the SDK reports a read timeout
        if exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError):
            return False
        raise AgentError(f"the Docker engine failed while a job ran: {exc}") from exc
    except docker.errors.DockerException as exc:
        raise AgentError(f"the Docker engine failed while a job ran: {exc}") from exc
    return True


@contextlib.contextmanager
def _engine(doing: str) -> Iterator[None]:
    """Turn the engine's failures into one AgentError that says what was being done."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise AgentError(f"the Docker engine failed to {doing}: {exc}") from exc


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", text) or "job"


def _timestamp(value: str) -> float | None:
    """Unix seconds of a Docker RFC 3339 time (nanoseconds allowed); None for 'never'."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if m is None or value.startswith("0001-"):
        return None
    head, frac, tz = m.groups()
    tz = "+00:00" if tz == "Z" else tz
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}{tz}").timestamp()
