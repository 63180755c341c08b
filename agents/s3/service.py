"""Buckets and objects: the S3 operations over the index and the blobs, HTTP aside.

Each method does one S3 operation for a caller whose access key is already checked, and
raises :class:`~agents.s3.errors.S3Error` with S3's code when it cannot. Writes store the
bytes first and record them after, in one step, so a failed or cut-off upload leaves the
old object as it was and no shards behind; what an overwrite or delete frees is deleted
from the nodes after the record changed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from agents.s3.blobs import Blobs, label
from agents.s3.body import Body
from agents.s3.errors import S3Error, no_such_bucket, no_such_key
from agents.s3.index import Index, Info, ObjectRow
from agents.s3.keys import AccessKey
from agents.s3.listing import Page, list_keys

logger = logging.getLogger(__name__)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024


def check_bucket_name(name: str) -> None:
    """S3's naming rules for buckets.

    Raises:
        S3Error: InvalidBucketName.
    """
    bad = (
        not _BUCKET.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(("xn--", "sthree-"))
        or name.endswith(("-s3alias", "--ol-s3"))
    )
    if not bad:
        try:
            ipaddress.IPv4Address(name)
            bad = True
        except ValueError:
            pass
    if bad:
        raise S3Error(
            "InvalidBucketName",
            "The specified bucket is not valid: use 3-63 lower-case letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit",
            resource=name,
        )


def check_key(key: str) -> None:
    if not key:
        raise S3Error("InvalidArgument", "An object key must not be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long (1024 bytes at most)")


@dataclass
class Deleted:
    deleted: list[str] = field(default_factory=list)
    errors: list[tuple[str, S3Error]] = field(default_factory=list)


class Service:
    """The S3 operations for one renter."""

    def __init__(self, index: Index, blobs: Blobs) -> None:
        self.index = index
        self.blobs = blobs

    # ------------------------------------------------------------------ access

    @staticmethod
    def allow(key: AccessKey, bucket: str) -> None:
        if not key.allows(bucket):
            raise S3Error("AccessDenied", f"Access Denied: this key is not for bucket {bucket}")

    def require_bucket(self, bucket: str) -> None:
        if not self.index.bucket_exists(bucket):
            raise no_such_bucket(bucket)

    def require_object(self, bucket: str, key: str) -> ObjectRow:
        self.require_bucket(bucket)
        row = self.index.get(bucket, key)
        if row is None:
            raise no_such_key(key)
        return row

    def release(self, freed: list[str] | None) -> None:
        if freed:
            self.blobs.delete(freed)

    # ------------------------------------------------------------------ buckets

    def list_buckets(self, key: AccessKey) -> list[tuple[str, float]]:
        return [(name, at) for name, at in self.index.buckets() if key.allows(name)]

    def create_bucket(self, bucket: str) -> None:
        check_bucket_name(bucket)
        if not self.index.create_bucket(bucket):
            raise S3Error(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already "
                "own it.",
                resource=bucket,
            )
        logger.info("bucket created bucket=%s", bucket)

    def delete_bucket(self, bucket: str) -> None:
        outcome, freed = self.index.delete_bucket(bucket)
        if outcome == "missing":
            raise no_such_bucket(bucket)
        if outcome == "not-empty":
            raise S3Error(
                "BucketNotEmpty", "The bucket you tried to delete is not empty", resource=bucket
            )
        self.release(freed)
        logger.info("bucket deleted bucket=%s", bucket)

    # ------------------------------------------------------------------ objects

    def put_object(self, bucket: str, key: str, body: Body, info: Info) -> ObjectRow:
        self.require_bucket(bucket)
        check_key(key)
        if body.size == 0:
            body.drain()
            blobs = []
        else:
            blobs = [self.blobs.put(body, size=body.size, name=label(bucket, key))]
        info.checksums = body.checksums
        row = ObjectRow(
            bucket=bucket,
            key=key,
            size=body.size,
            etag=body.digests.etag(),
            modified=time.time(),
            info=info,
            blobs=blobs,
        )
        self.release(self.index.put(row))
        logger.info("object stored bucket=%s key=%s size=%d", bucket, key, body.size)
        return row

    def read(self, row: ObjectRow, first: int, last: int) -> Iterator[bytes]:
        """Bytes `first..last` (inclusive) of the object."""
        return self.blobs.read(row.blobs, first, last)

    def delete_object(self, bucket: str, key: str) -> None:
        """As S3: deleting a key that is not there succeeds."""
        self.require_bucket(bucket)
        self.release(self.index.delete(bucket, key))

    def delete_objects(self, bucket: str, keys: list[str]) -> Deleted:
        self.require_bucket(bucket)
        out = Deleted()
        for key in keys:
            try:
                check_key(key)
                self.release(self.index.delete(bucket, key))
                out.deleted.append(key)
            except S3Error as err:
                out.errors.append((key, err))
        return out

    def copy_object(self, src: ObjectRow, *, bucket: str, key: str, info: Info | None) -> ObjectRow:
        """`src` as `bucket`/`key`: its blobs shared, not copied; `info` replaces its
        metadata (REPLACE) or None keeps it (COPY)."""
        self.require_bucket(bucket)
        check_key(key)
        if info is None and (src.bucket, src.key) == (bucket, key):
            raise S3Error(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
            )
        kept = info if info is not None else src.info
        if info is not None:
            kept.checksums = src.info.checksums
        row = ObjectRow(
            bucket=bucket,
            key=key,
            size=src.size,
            etag=src.etag,
            modified=time.time(),
            info=kept,
            blobs=list(src.blobs),
        )
        self.release(self.index.put(row))
        return row

    def list_objects(
        self, bucket: str, *, prefix: str, delimiter: str, after: str, max_keys: int
    ) -> Page:
        self.require_bucket(bucket)
        return list_keys(
            lambda cursor, limit: self.index.keys_from(
                bucket, prefix=prefix, after=max(cursor, after), limit=limit
            ),
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            max_keys=max_keys,
        )
