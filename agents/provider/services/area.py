"""A service's data area: ``workarea.py``'s folder, whose output/ is the service's /data."""

from __future__ import annotations

import os
import shutil

from agents.provider.workarea import FOLDER, TMPFS, WorkArea


def remake_data(area: WorkArea, disk_mb: int, user: tuple[int, int], *, tmpfs: bool) -> str:
    """Make /data again, empty, keeping the inputs (its tmpfs went with a reboot); returns
    its kind."""
    shutil.rmtree(area.output, ignore_errors=True)
    area.output.mkdir()
    uid, gid = user
    if tmpfs and area._mount_tmpfs(disk_mb, uid, gid):
        return TMPFS
    if os.geteuid() == 0:
        os.chown(area.output, uid, gid)
    area.output.chmod(0o700)
    return FOLDER
