"""Layer tarballs with path tricks, links out of their root or special files are refused."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from agents.provider.images.tarcheck import LayerRefusedError, check_layer

DIFF_ID = "sha256:" + "0" * 64


def info(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0
) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname, member.size = kind, link, size
    return member


def dev(name: str, major: int, minor: int, kind: bytes = tarfile.CHRTYPE) -> tarfile.TarInfo:
    member = info(name, kind)
    member.devmajor, member.devminor = major, minor
    return member


def write(tmp_path: Path, *members: tarfile.TarInfo) -> Path:
    path = tmp_path / "layer.tar"
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            body = io.BytesIO(b"x" * member.size) if member.isreg() else None
            tar.addfile(member, body)
    return path


def test_an_ordinary_layer_passes(tmp_path):
    path = write(
        tmp_path,
        info("etc/", tarfile.DIRTYPE),
        info("etc/hostname", size=5),
        info("./usr/bin/", tarfile.DIRTYPE),
        info("usr/bin/tool", size=10),
        info("usr/bin/alias", tarfile.LNKTYPE, "usr/bin/tool"),
        info("usr/bin/sh", tarfile.SYMTYPE, "/bin/busybox"),  # absolute: inside the container
        info("usr/lib/x", tarfile.SYMTYPE, "../bin/tool"),
        info("a/b/c", tarfile.SYMTYPE, "../../usr"),
        info("etc/.wh.passwd", size=0),  # a whiteout is an ordinary empty file
        dev("./dev/null", 1, 3),  # the devices every container has (a Debian root ships them)
        dev("dev/urandom", 1, 9),
    )
    assert check_layer(path, diff_id=DIFF_ID, max_member_bytes=100) == 11


@pytest.mark.parametrize(
    "members, message",
    [
        ([info("../escape", size=3)], "a member ../escape outside its root"),
        ([info("a/../../escape", size=3)], "a member a/../../escape outside its root"),
        ([info("/etc/passwd", size=3)], "a member /etc/passwd outside its root"),
        (
            [info("a", tarfile.SYMTYPE, "../../.."), info("a/x", size=3)],
            "a member a that is a symlink to ../../.., outside its root",
        ),
        (
            [info("deep/link", tarfile.SYMTYPE, "../../etc")],
            "a member deep/link that is a symlink to ../../etc, outside its root",
        ),
        (
            [info("h", tarfile.LNKTYPE, "../../etc/shadow")],
            "a member h that is hard-linked to ../../etc/shadow, outside its root",
        ),
        (
            [info("h", tarfile.LNKTYPE, "/etc/shadow")],
            "a member h that is hard-linked to /etc/shadow, outside its root",
        ),
        ([info("dev/sda", tarfile.BLKTYPE)], "a member dev/sda that is a device node"),
        ([info("dev/mem", tarfile.CHRTYPE)], "a member dev/mem that is a device node"),
        ([dev("dev/null", 1, 1)], "a member dev/null that is a device node"),  # /dev/mem's
        ([dev("opt/null", 1, 3)], "a member opt/null that is a device node"),  # elsewhere
        ([info("pipe", tarfile.FIFOTYPE)], "a member pipe that is a fifo"),
        ([info("big", size=101)], "a member big of 101 bytes, over the 100 bytes"),
    ],
)
def test_a_layer_with_a_bad_member_is_refused_with_why(tmp_path, members, message):
    path = write(tmp_path, info("ok", size=1), *members)
    with pytest.raises(LayerRefusedError, match=re.escape(message)) as err:
        check_layer(path, diff_id=DIFF_ID, max_member_bytes=100)
    assert str(err.value).startswith(f"layer {DIFF_ID} has ")
    assert str(err.value).endswith("refused; nothing was loaded")


def test_a_file_that_is_not_a_tarball_is_refused(tmp_path):
    path = tmp_path / "layer.tar"
    path.write_bytes(b"\x01" * 2048)
    with pytest.raises(LayerRefusedError, match="is not a readable tarball"):
        check_layer(path, diff_id=DIFF_ID, max_member_bytes=100)
