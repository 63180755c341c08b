"""Multipart uploads through boto3: 100 MB by the SDK's transfer manager, each step by hand,
copies of parts, and aborts that leave no shard on the nodes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.agents.storage.network import Network

pytestmark = pytest.mark.integration

MiB = 2**20


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def used_bytes(network: Network) -> int:
    return sum(n.health()["used_bytes"] for n in network.nodes if n.running)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * MiB):
            h.update(chunk)
    return h.hexdigest()


def test_100mb_multipart_upload_and_download_give_the_same_bytes(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        for i in range(100):
            fh.write(hashlib.shake_256(i.to_bytes(4, "big")).digest(MiB))
    config = TransferConfig(
        multipart_threshold=8 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4
    )
    s3.upload_file(str(src), bucket, "big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 100 * MiB and head["ETag"].endswith('-7"')  # 6 x 16 MiB + 4
    out = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(out), Config=config)  # ranged GETs in parallel
    assert sha256_file(out) == sha256_file(src)


def test_multipart_by_hand_lists_parts_and_computes_s3_etag(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="m", ContentType="video/mp4", Metadata={"x": "1"}
    )
    uid = upload["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    etags = [
        s3.upload_part(Bucket=bucket, Key="m", UploadId=uid, PartNumber=i + 1, Body=p)["ETag"]
        for i, p in enumerate(parts)
    ]
    listed = s3.list_parts(Bucket=bucket, Key="m", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (i + 1, etags[i], len(p)) for i, p in enumerate(parts)
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]},
    )
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    got = s3.get_object(Bucket=bucket, Key="m")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "video/mp4" and got["Metadata"] == {"x": "1"}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_small_parts_before_the_last_are_refused(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="s")["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key="s", UploadId=uid, PartNumber=n, Body=b"tiny")["ETag"]
        for n in (1, 2)
    ]
    parts = [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="s", UploadId=uid, MultipartUpload={"Parts": parts}
        )
    assert code(exc) == "EntityTooSmall"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="s",
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]},
        )
    assert code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="s", UploadId=uid, MultipartUpload={"Parts": parts[::-1]}
        )
    assert code(exc) == "InvalidPartOrder"


def test_abort_leaves_no_shards_behind(s3: Any, bucket: str, s3_network: Network) -> None:
    before = used_bytes(s3_network)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    for n in (1, 2):
        s3.upload_part(Bucket=bucket, Key="a", UploadId=uid, PartNumber=n, Body=os.urandom(6 * MiB))
    assert used_bytes(s3_network) > before + 12 * MiB
    s3.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=uid)
    assert used_bytes(s3_network) == before
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="a", UploadId=uid)
    assert code(exc) == "NoSuchUpload"


def test_overwrite_and_delete_free_the_old_shards(
    s3: Any, bucket: str, s3_network: Network
) -> None:
    before = used_bytes(s3_network)
    s3.put_object(Bucket=bucket, Key="o", Body=os.urandom(3 * MiB))
    s3.put_object(Bucket=bucket, Key="o", Body=os.urandom(2 * MiB))
    s3.delete_object(Bucket=bucket, Key="o")
    assert used_bytes(s3_network) == before


def test_upload_part_copy_copies_ranges_of_an_object(s3: Any, bucket: str) -> None:
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    spans = [(0, 6 * MiB - 1), (6 * MiB, 12 * MiB - 1)]
    etags = [
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=uid,
            PartNumber=i + 1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=f"bytes={a}-{b}",
        )["CopyPartResult"]["ETag"]
        for i, (a, b) in enumerate(spans)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]},
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data
