"""Snapshots of a service's /data: the spec's hash covers asking for them, a snapshot
secret opens only for its provider and lease, and a restore unpacks plain files only."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from eth_account import Account

from agents.errors import RefusedError
from agents.provider.lease_store import LeaseStore
from agents.provider.snapshots import Snapshots, _tar
from agents.provider.workarea import WorkArea
from protocol import keywrap
from protocol import snapshots as wire
from protocol.services import ServiceSpec, service_spec_hash

BASE: dict[str, object] = {
    "name": "notes",
    "image": "dcloud/python:3.11",
    "port": 8000,
    "resources": {"cpu": 0.5, "memory_mb": 128, "disk_mb": 16},
    "max_rate_wei_per_s": 10**12,
    "origin": {"lat": 48.14, "lon": 11.58},
}


def test_asking_for_snapshots_is_part_of_the_funded_spec():
    plain = ServiceSpec.model_validate(BASE)
    every_minute = ServiceSpec.model_validate({**BASE, "snapshot_s": 60})
    assert service_spec_hash(plain) != service_spec_hash(every_minute)
    assert service_spec_hash(plain) == service_spec_hash(
        ServiceSpec.model_validate({**BASE, "snapshot_s": None})
    )
    with pytest.raises(ValueError, match="greater than or equal to 5"):
        ServiceSpec.model_validate({**BASE, "snapshot_s": 1})


@pytest.fixture
def snaps(tmp_path: Path) -> Snapshots:
    store = LeaseStore(tmp_path / "leases.db")
    provider = Account.create()
    return Snapshots(
        home=tmp_path,
        account=provider,
        marketplace_url="http://127.0.0.1:9",
        leases=store,
        data_area=lambda key: None,
    )


def test_a_snapshot_secret_opens_only_for_its_provider_and_lease(snaps: Snapshots):
    secret = os.urandom(32)
    mine = keywrap.public_key_of(bytes(snaps.account.key))
    for_lease_7 = keywrap.wrap(secret, mine, context=wire.context(7))
    with pytest.raises(RefusedError, match="not wrapped to this provider for this lease"):
        snaps.accept_secret(8, for_lease_7)
    other = keywrap.public_key_of(bytes(Account.create().key))
    with pytest.raises(RefusedError):
        snaps.accept_secret(7, keywrap.wrap(secret, other, context=wire.context(7)))
    assert snaps.secret(7) is None
    assert snaps.accept_secret(7, for_lease_7) == secret
    assert snaps.secret(7) == secret
    mode = stat.S_IMODE((snaps.folder / "7" / "secret").stat().st_mode)
    assert mode == 0o600


def _area(tmp_path: Path, restore: bytes) -> WorkArea:
    area = WorkArea(tmp_path / "area")
    area.prepare(
        inputs={}, disk_mb=4, uid=os.getuid(), gid=os.getgid(), tmpfs=False, restore=restore
    )
    return area


def test_a_restore_brings_back_the_files_of_a_snapshot(tmp_path: Path):
    source = tmp_path / "data"
    (source / "db").mkdir(parents=True)
    (source / "db" / "notes.txt").write_text("kept\n")
    (source / "born").write_text("123")
    area = _area(tmp_path, _tar(source))
    assert (area.output / "db" / "notes.txt").read_text() == "kept\n"
    assert (area.output / "born").read_text() == "123"


@pytest.mark.parametrize(
    ("member", "kind"),
    [("../escaped", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)],
)
def test_a_snapshot_that_reaches_outside_data_is_refused(tmp_path: Path, member: str, kind: bytes):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:") as tar:
        info = tarfile.TarInfo(member)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        data = b"x"
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    with pytest.raises(RefusedError, match="could not be restored"):
        _area(tmp_path, out.getvalue())
    assert not (tmp_path / "escaped").exists()


def test_an_absolute_path_in_a_snapshot_lands_inside_data(tmp_path: Path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:") as tar:
        info = tarfile.TarInfo("/etc/dcloud-escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    area = _area(tmp_path, out.getvalue())
    assert (area.output / "etc" / "dcloud-escaped").read_bytes() == b"x"
    assert not Path("/etc/dcloud-escaped").exists()
