"""Buckets and objects through boto3, unmodified, against `dcloud s3 serve` over real nodes."""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_bucket_create_list_head_delete(s3: Any) -> None:
    s3.create_bucket(Bucket="my-photos.2025")
    assert "my-photos.2025" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="my-photos.2025")
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="my-photos.2025")
    assert code(exc) == "BucketAlreadyOwnedByYou"
    s3.delete_bucket(Bucket="my-photos.2025")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="my-photos.2025")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("name", ["ab", "Upper", "under_score", "-dash", "a..b", "192.168.1.1"])
def test_bucket_names_follow_s3_rules(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert code(exc) == "InvalidBucketName"


def test_deleting_a_bucket_with_objects_is_refused(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert code(exc) == "BucketNotEmpty"


def test_missing_bucket_and_key_give_s3_codes(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code(exc) == "NoSuchKey"


def test_put_get_keeps_bytes_type_cache_control_and_metadata(s3: Any, bucket: str) -> None:
    data = blob(9 * 2**20 + 123, 1)  # three segments of the storage client
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/photo one.jpg",
        Body=data,
        ContentType="image/jpeg",
        CacheControl="max-age=60",
        Metadata={"camera": "x100", "place": "berlin"},
    )
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/photo one.jpg")
    assert got["Body"].read() == data
    assert (got["ContentType"], got["CacheControl"]) == ("image/jpeg", "max-age=60")
    assert got["Metadata"] == {"camera": "x100", "place": "berlin"}
    assert got["ETag"] == put["ETag"] and got["ContentLength"] == len(data)
    head = s3.head_object(Bucket=bucket, Key="dir/photo one.jpg")
    assert head["ContentLength"] == len(data) and head["Metadata"]["camera"] == "x100"


def test_overwrite_replaces_and_delete_forgets(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"first")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_object(Bucket=bucket, Key="k")  # S3 deletes idempotently
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_empty_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="folder/", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="folder/")
    assert got["Body"].read() == b"" and got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'


def test_ranged_reads_return_exactly_the_bytes_asked_for(s3: Any, bucket: str) -> None:
    data = blob(10 * 2**20, 2)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    seg = 4 * 2**20
    for first, last in [
        (0, 0),
        (5, 99),
        (seg - 3, seg + 3),
        (2 * seg, 2 * seg + 10),
        (len(data) - 7, len(data) - 1),
    ]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={first}-{last}")
        assert got["Body"].read() == data[first : last + 1]
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == data[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data) - 3}-")["Body"].read()
        == data[-3:]
    )
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert code(exc) == "InvalidRange"


def test_conditional_reads_and_writes(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    future = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    past = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:  # write only if absent
        s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert code(exc) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v1"


def test_content_md5_is_checked(s3: Any, bucket: str) -> None:
    good = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="m", Body=b"payload", ContentMD5=good)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="m", Body=b"tampered", ContentMD5=wrong)
    assert code(exc) == "BadDigest"
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"payload"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_sdk_checksums_are_verified_and_returned(s3: Any, bucket: str, algorithm: str) -> None:
    data = blob(300_000, 3)
    put = s3.put_object(Bucket=bucket, Key=algorithm, Body=data, ChecksumAlgorithm=algorithm)
    got = s3.get_object(Bucket=bucket, Key=algorithm, ChecksumMode="ENABLED")
    assert got["Body"].read() == data  # botocore checks the body against the checksum
    assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]


def test_a_wrong_checksum_header_is_refused(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"data", ChecksumCRC32="AAAAAA==")
    assert code(exc) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_copy_object_keeps_or_replaces_metadata(s3: Any, bucket: str) -> None:
    data = blob(6 * 2**20, 4)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ContentType="text/csv", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["Body"].read() == data and got["ContentType"] == "text/csv"
    assert got["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=bucket,
        Key="copy2",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        ContentType="text/plain",
        Metadata={"b": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="copy2")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"b": "2"}
    s3.delete_object(Bucket=bucket, Key="src")  # the copies share its blob, and keep it
    assert s3.get_object(Bucket=bucket, Key="copy2")["Body"].read() == data


def test_delete_objects_removes_each_named_key(s3: Any, bucket: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": f"d/{i}"} for i in range(3)] + [{"Key": "absent"}]},
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["absent", "d/0", "d/1", "d/2"]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == ["d/3", "d/4"]
