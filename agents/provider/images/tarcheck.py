"""Inspect one uncompressed layer tarball before the engine sees it.

A renter's layer is refused when any member would land outside the image's root or is
something a job has no business shipping:

- an absolute name (``/etc/passwd``) or one whose ``..`` climb out of the root;
- a hard link whose target is absolute or climbs out;
- a symbolic link whose *relative* target climbs out from where the link sits
  (``a -> ../../..``). An absolute target is fine: it resolves inside the container's
  own root when the container follows it;
- a device node, a fifo, or any other kind than a file, folder or link. The one
  exception is the handful of harmless character devices every container gets anyway
  (``dev/null``, ``zero``, ``full``, ``random``, ``urandom``, ``tty``, ``console``,
  ``ptmx`` with their usual numbers), which a Debian root file system ships: the
  container's ``/dev`` is the runtime's own mount, so they are never even seen;
- a member larger than the limit.

The tarball is read member after member (headers only: the data is skipped), never
unpacked here, and no more than one member is held in memory.
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

from agents.errors import RefusedError

_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "folder",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hard link",
}


_STANDARD_DEVICES = {
    "dev/null": (1, 3),
    "dev/zero": (1, 5),
    "dev/full": (1, 7),
    "dev/random": (1, 8),
    "dev/urandom": (1, 9),
    "dev/tty": (5, 0),
    "dev/console": (5, 1),
    "dev/ptmx": (5, 2),
}


class LayerRefusedError(RefusedError):
    """A layer whose tarball could escape its root or holds forbidden members."""


def check_layer(path: Path, *, diff_id: str, max_member_bytes: int) -> int:
    """Check every member of the layer tarball at `path`; return how many there are.

    Raises:
        LayerRefusedError: a member is outside the root, links outside it, is a device
            or fifo, or is larger than `max_member_bytes`; or the file is not a tarball.
    """
    count = 0
    try:
        with tarfile.open(path, mode="r:") as tar:
            while (member := tar.next()) is not None:
                _check_member(member, diff_id, max_member_bytes)
                tar.members.clear()  # type: ignore[attr-defined]  # headers are not kept
                count += 1
    except tarfile.TarError as exc:
        raise LayerRefusedError(
            f"layer {diff_id} is not a readable tarball ({exc}): refused; nothing was loaded"
        ) from None
    return count


def _check_member(member: tarfile.TarInfo, diff_id: str, max_bytes: int) -> None:
    name = member.name

    def refuse(why: str) -> LayerRefusedError:
        return LayerRefusedError(
            f"layer {diff_id} has a member {name} {why}: refused; nothing was loaded"
        )

    if name.startswith("/") or _escapes(name):
        raise refuse("outside its root")
    kind = _KINDS.get(member.type)
    if kind is None and _standard_device(member):
        return
    if kind is None:
        what = "device node" if member.ischr() or member.isblk() else "fifo"
        what = what if member.ischr() or member.isblk() or member.isfifo() else "special file"
        raise refuse(f"that is a {what} (only files, folders and links are allowed)")
    if member.size > max_bytes:
        raise refuse(f"of {member.size} bytes, over the {max_bytes} bytes this provider allows")
    if member.islnk():
        target = member.linkname
        if target.startswith("/") or _escapes(target):
            raise refuse(f"that is hard-linked to {target}, outside its root")
    elif member.issym():
        target = member.linkname
        if not target.startswith("/") and _escapes(
            posixpath.join(posixpath.dirname(name.rstrip("/")), target)
        ):
            raise refuse(f"that is a symlink to {target}, outside its root")


def _standard_device(member: tarfile.TarInfo) -> bool:
    """One of the character devices every container has, where every root has it."""
    name = posixpath.normpath(member.name)
    want = _STANDARD_DEVICES.get(name)
    return member.ischr() and want == (member.devmajor, member.devminor)


def _escapes(path: str) -> bool:
    """Whether a relative archive path climbs above the archive's root."""
    norm = posixpath.normpath(path)
    return norm == ".." or norm.startswith("../")
