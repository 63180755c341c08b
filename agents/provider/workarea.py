"""A job's folder on the provider's disk: its inputs, and the size-limited area it writes.

Each job gets ``<work_root>/<name>/`` holding ``input/`` (bind-mounted read-only at
``/input``) and ``output/`` (bind-mounted at ``/output``, the only place a job can keep
files). The output area has one of two kinds of size limit:

- ``tmpfs``: when the agent runs as root and mounting a tmpfs works, a tmpfs of exactly
  ``disk_mb`` is mounted on ``output/``; writes past it fail inside the job with "No space
  left on device". The area lives in RAM, and the kernel charges its pages to the job's
  memory cgroup (the runtime raises the container's memory cap by ``disk_mb`` for that).
- ``folder``: otherwise, or when ``disk_mb`` is above the runtime's tmpfs ceiling, a plain
  folder on disk whose size the runtime checks while the job runs and after it exits; a
  job can overshoot the limit by what it writes in about a second before it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import logging
import os
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from agents.errors import RefusedError
from protocol.result_proof import read_outputs

logger = logging.getLogger(__name__)

TMPFS = "tmpfs"
FOLDER = "folder"
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2  # from <sys/mount.h>
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if os.name == "posix" else None
_INODES_PER_MB = 256  # tmpfs file-count limit: 4096 files in a 16 MB area


class WorkArea:
    """The folder of one job; every method is safe to call again after a crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.input = root / "input"
        self.output = root / "output"

    def prepare(
        self,
        *,
        inputs: Mapping[str, bytes],
        disk_mb: int,
        uid: int,
        gid: int,
        tmpfs: bool,
        restore: bytes | None = None,
    ) -> str:
        """Create the folders, write `inputs`, and set up the output area, with the tar
        `restore` unpacked in it (a service's snapshot); returns its kind.

        Raises:
            RefusedError: an input path is not a plain relative path, or `restore` is not a
                tar whose members all stay inside the area.
        """
        files = {_safe_path(p): data for p, data in inputs.items()}
        self.remove()
        self.input.mkdir(parents=True)
        self.output.mkdir()
        try:
            for rel, data in files.items():
                target = self.input.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                target.chmod(0o644)
        except OSError as exc:  # e.g. both "a" and "a/b" given
            self.remove()
            raise RefusedError(f"the job's inputs could not be written: {exc}") from None
        for dirpath, _dirs, _names in os.walk(self.input):
            os.chmod(dirpath, 0o755)  # readable by the job's user whatever our umask
        kind = FOLDER
        if tmpfs and self._mount_tmpfs(disk_mb, uid, gid):
            kind = TMPFS
        else:
            if os.geteuid() == 0:
                os.chown(self.output, uid, gid)
            self.output.chmod(0o700)
        if restore is not None:
            self._unpack(restore, uid, gid)
        return kind

    def _unpack(self, data: bytes, uid: int, gid: int) -> None:
        """Unpack a tar into the output area: plain files and folders only (the "data"
        filter refuses links out, devices and absolute paths), owned by the area's user."""
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                tar.extractall(self.output, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise RefusedError(f"the snapshot of /data could not be restored: {exc}") from None
        if os.geteuid() == 0:
            for dirpath, dirs, names in os.walk(self.output):
                for name in (*dirs, *names):
                    os.lchown(os.path.join(dirpath, name), uid, gid)

    def used_bytes(self) -> int:
        """Bytes the job has written to its output area (file contents, not metadata)."""
        total = 0
        for dirpath, _dirs, names in os.walk(self.output):
            for name in names:
                with contextlib.suppress(OSError):  # removed while we looked
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    def full(self, kind: str, disk_mb: int) -> bool:
        """Whether the job reached (tmpfs: filled) or passed (folder) its output limit."""
        if kind == TMPFS and os.path.ismount(self.output):
            st = os.statvfs(self.output)
            return st.f_bavail == 0 or st.f_favail == 0
        return self.used_bytes() > disk_mb * 2**20

    def outputs(self) -> dict[str, bytes]:
        """Every regular file under the output area ('/'-separated relative paths)."""
        if not self.output.is_dir():
            return {}
        return read_outputs(self.output)

    def remove(self) -> None:
        """Unmount the output area if it is a tmpfs and delete the whole folder."""
        if os.path.ismount(self.output):
            for flags in (0, _MNT_DETACH):  # then lazily, once nothing holds it
                try:
                    _libc_call("umount2", str(self.output).encode(), flags)
                    break
                except OSError as exc:
                    logger.warning(
                        "could not unmount a job's work area",
                        extra={"path": str(self.output), "error": str(exc)},
                    )
        if self.root.exists():
            shutil.rmtree(self.root)

    def _mount_tmpfs(self, disk_mb: int, uid: int, gid: int) -> bool:
        """Mount the output tmpfs with mount(2) itself (no mount(8) process per job)."""
        if os.geteuid() != 0:
            return False
        data = (
            f"size={disk_mb}m,nr_inodes={max(1024, disk_mb * _INODES_PER_MB)},"
            f"mode=0700,uid={uid},gid={gid}"
        )
        try:
            _libc_call(
                "mount",
                b"dcloud-job",
                str(self.output).encode(),
                b"tmpfs",
                _MS_NOSUID | _MS_NODEV,
                data.encode(),
            )
        except OSError as exc:
            logger.warning("tmpfs mount failed; using a plain folder", extra={"error": str(exc)})
            return False
        return True


def _libc_call(name: str, *args: bytes | int) -> None:
    """Call mount(2) or umount2(2) through the C library; raises OSError with its errno."""
    if _LIBC is None:  # not a POSIX system: no tmpfs, the caller uses a folder
        raise OSError(f"{name}(2) is not available here")
    if getattr(_LIBC, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _safe_path(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if not path or rel.is_absolute() or any(p in ("", ".", "..") for p in path.split("/")):
        raise RefusedError(
            f"input path {path!r} is not a relative path inside /input "
            "(no leading '/', no '.' or '..' parts)"
        )
    return rel
