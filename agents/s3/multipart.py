"""Multipart uploads: create, upload parts (streamed, or copied from an object's range),
list, complete, abort.

Each part is stored as its own blob as it arrives, so a part of any size is never held
whole in memory; completing an upload only records the chosen parts, in order, as the
object (no bytes move), and its ETag is S3's: the MD5 of the parts' MD5s, then ``-N``.
Parts not chosen, and every part of an aborted upload, are deleted from the nodes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import secrets
import time
from dataclasses import dataclass

from agents.s3.blobs import label
from agents.s3.body import Body
from agents.s3.checksums import Digests, new_checksum
from agents.s3.documents import children, parse, text
from agents.s3.errors import S3Error, no_such_key
from agents.s3.index import Blob, Info, ObjectRow, PartRow, UploadRow
from agents.s3.service import Service, check_key

logger = logging.getLogger(__name__)

MIN_PART = 5 * 2**20
MAX_PARTS = 10_000


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload "
        "may have been aborted or completed.",
        resource=upload_id,
    )


def part_number(text_value: str | None) -> int:
    try:
        number = int(text_value or "")
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PARTS:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000")
    return number


@dataclass(frozen=True)
class Chosen:
    number: int
    etag: str


def chosen_parts(document: bytes) -> list[Chosen]:
    """The parts a CompleteMultipartUpload document names, checked to ascend.

    Raises:
        S3Error: MalformedXML, InvalidPartOrder.
    """
    root = parse(document, "CompleteMultipartUpload")
    out: list[Chosen] = []
    for part in children(root, "Part"):
        etag = (text(part, "ETag") or "").strip().strip('"')
        out.append(Chosen(part_number(text(part, "PartNumber")), etag))
    if not out:
        raise S3Error("MalformedXML", "The XML you provided named no parts.")
    if any(b.number <= a.number for a, b in itertools.pairwise(out)):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order.")
    return out


class Multipart:
    """The multipart operations, over the same index and blobs as :class:`Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.index = service.index

    def upload_of(self, bucket: str, key: str, upload_id: str) -> UploadRow:
        upload = self.index.upload(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise no_such_upload(upload_id)
        return upload

    def create(self, bucket: str, key: str, info: Info) -> UploadRow:
        self.service.require_bucket(bucket)
        check_key(key)
        upload = UploadRow(
            upload_id=secrets.token_urlsafe(24),
            bucket=bucket,
            key=key,
            initiated=time.time(),
            info=info,
        )
        self.index.create_upload(upload)
        return upload

    def upload_part(self, upload: UploadRow, number: int, body: Body) -> PartRow:
        if body.size == 0:
            body.drain()
            blob = ""
        else:
            name = label(upload.bucket, upload.key, f"#{upload.upload_id[:8]}.{number}")
            blob = self.service.blobs.put(body, size=body.size, name=name).object_id
        part = PartRow(
            number=number,
            size=body.size,
            etag=body.digests.etag(),
            modified=time.time(),
            blob=blob,
            checksums=body.checksums,
        )
        freed = self.index.put_part(upload.upload_id, part)
        if freed is None:  # aborted while the part streamed in
            self.service.release([blob] if blob else [])
            raise no_such_upload(upload.upload_id)
        self.service.release([f for f in freed if f])
        return part

    def copy_part(
        self, upload: UploadRow, number: int, src: ObjectRow, first: int, last: int
    ) -> PartRow:
        chunks = self.service.read(src, first, last) if last >= first else iter(())
        body = Body(lambda: next(chunks, b""), size=last - first + 1, digests=Digests())
        return self.upload_part(upload, number, body)

    def complete(self, upload: UploadRow, chosen: list[Chosen]) -> ObjectRow:
        """Raises S3Error: InvalidPart, EntityTooSmall, NoSuchUpload."""
        parts = {p.number: p for p in self.index.parts(upload.upload_id)}
        picked: list[PartRow] = []
        for i, want in enumerate(chosen):
            part = parts.get(want.number)
            if part is None or part.etag != want.etag:
                raise S3Error(
                    "InvalidPart",
                    "One or more of the specified parts could not be found. The part may not "
                    "have been uploaded, or the specified entity tag may not match the part's "
                    "entity tag.",
                )
            if part.size < MIN_PART and i < len(chosen) - 1:
                raise S3Error(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size: "
                    "every part but the last must be at least 5 MiB.",
                )
            picked.append(part)
        md5s = b"".join(bytes.fromhex(p.etag) for p in picked)
        info = upload.info
        algorithm = info.checksum_algorithm
        if algorithm and all(algorithm in p.checksums for p in picked):
            composite = new_checksum(algorithm)
            for p in picked:
                composite.update(base64.b64decode(p.checksums[algorithm]))
            info.checksums = {
                algorithm: f"{base64.b64encode(composite.digest()).decode()}-{len(picked)}"
            }
        row = ObjectRow(
            bucket=upload.bucket,
            key=upload.key,
            size=sum(p.size for p in picked),
            etag=f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(picked)}",
            modified=time.time(),
            info=info,
            blobs=[Blob(p.blob, p.size) for p in picked if p.blob],
        )
        freed = self.index.complete(upload.upload_id, row)
        if freed is None:
            raise no_such_upload(upload.upload_id)
        self.service.release([f for f in freed if f])
        logger.info("upload completed bucket=%s key=%s parts=%d", row.bucket, row.key, len(picked))
        return row

    def abort(self, upload: UploadRow) -> None:
        freed = self.index.abort(upload.upload_id)
        if freed is None:
            raise no_such_upload(upload.upload_id)
        self.service.release([f for f in freed if f])

    def source(self, bucket: str, key: str) -> ObjectRow:
        row = self.index.get(bucket, key)
        if row is None:
            raise no_such_key(key)
        return row
