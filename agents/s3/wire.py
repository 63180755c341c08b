"""S3's HTTP fields: the request headers an operation reads and the reply headers it
writes (object metadata, ETags, checksums, conditions, ranges), and the request body as a
checked stream.
"""

from __future__ import annotations

import re

from agents.s3 import conditions
from agents.s3.body import Body, streaming_mode
from agents.s3.checksums import ALGORITHMS, CHECKSUM_HEADER, Digests, declared_checksums
from agents.s3.documents import http_date
from agents.s3.errors import S3Error
from agents.s3.index import Info, ObjectRow
from agents.s3.server import Call, Reply
from agents.s3.sigv4 import STREAMING, Authorized

KEPT = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
META = "x-amz-meta-"
MAX_PUT = 5 * 10**12
BACKGROUND_DIGESTS = 8 * 2**20  # bodies this large are hashed beside the read loop
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def xml(data: bytes, status: int = 200) -> Reply:
    return Reply(status, {"content-type": "application/xml"}, data)


def body(call: Call, auth: Authorized, *, require_integrity: bool = False) -> Body:
    """The request's body as a checked stream of the object's bytes."""
    h = call.headers
    chunked = streaming_mode(auth.payload, h.get("content-encoding"))
    length_header = "x-amz-decoded-content-length" if chunked else "content-length"
    length = h.get(length_header)
    if length is None:
        if call.method in ("GET", "HEAD", "DELETE") or (
            h.get("transfer-encoding") is None and call.method != "PUT"
        ):
            length = "0"
        else:
            raise S3Error(
                "MissingContentLength", f"You must provide the {length_header} HTTP header."
            )
    try:
        size = int(length)
    except ValueError:
        raise S3Error("InvalidArgument", f"{length_header} must be a number") from None
    if not 0 <= size <= MAX_PUT:
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
    trailer = h.get("x-amz-trailer", "").strip().lower()
    declared = declared_checksums(h)
    if require_integrity and not declared and not trailer and "content-md5" not in h:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    digests = Digests(
        content_md5=h.get("content-md5"),
        sha256_hex=auth.payload if _HEX64.match(auth.payload) else None,
        checksums=declared,
        trailer=trailer.removeprefix(CHECKSUM_HEADER) if trailer else None,
    )
    if size >= BACKGROUND_DIGESTS:
        digests.hash_in_background()
    if not chunked and auth.payload in STREAMING:
        raise S3Error("InvalidRequest", f"{auth.payload} needs Content-Encoding: aws-chunked")
    return Body(call.source, size=size, digests=digests, chunked=chunked, auth=auth)


def info(headers: dict[str, str]) -> Info:
    """What a PUT or CreateMultipartUpload asks to keep with the object."""
    kept = {name: headers[name] for name in KEPT if name in headers}
    if "content-encoding" in kept:
        codings = [
            c.strip() for c in kept["content-encoding"].split(",") if c.strip() != "aws-chunked"
        ]
        kept["content-encoding"] = ",".join(codings)
        if not codings:
            del kept["content-encoding"]
    meta = {k[len(META) :]: v for k, v in headers.items() if k.startswith(META)}
    algorithm = headers.get("x-amz-checksum-algorithm") or headers.get(
        "x-amz-sdk-checksum-algorithm"
    )
    algorithm = algorithm.lower() if algorithm else None
    return Info(
        content_type=headers.get("content-type") or "binary/octet-stream",
        headers=kept,
        meta=meta,
        checksum_algorithm=algorithm if algorithm in ALGORITHMS else None,
    )


def object_headers(row: ObjectRow) -> dict[str, str]:
    headers = {
        "etag": f'"{row.etag}"',
        "last-modified": http_date(row.modified),
        "content-type": row.info.content_type,
        "accept-ranges": "bytes",
        **row.info.headers,
    }
    headers |= {META + k: v for k, v in row.info.meta.items()}
    return headers


def checksum_headers(checksums: dict[str, str]) -> dict[str, str]:
    return {CHECKSUM_HEADER + name: value for name, value in checksums.items()}


def check_read_conditions(call: Call, row: ObjectRow) -> None:
    h = call.headers
    conditions.check(
        etag=row.etag,
        modified=row.modified,
        if_match=h.get("if-match"),
        if_none_match=h.get("if-none-match"),
        if_modified_since=h.get("if-modified-since"),
        if_unmodified_since=h.get("if-unmodified-since"),
        read=True,
    )


def check_put_conditions(call: Call, current: ObjectRow | None) -> None:
    """Conditional writes: If-None-Match: * (only if absent), If-Match (only that version)."""
    h = call.headers
    if current is None:
        if "if-match" in h:
            raise S3Error("NoSuchKey", "The specified key does not exist.", resource=call.key)
        return
    conditions.check(
        etag=current.etag,
        modified=current.modified,
        if_match=h.get("if-match"),
        if_none_match=h.get("if-none-match"),
        if_modified_since=None,
        if_unmodified_since=None,
        read=False,
    )


def check_copy_conditions(call: Call, src: ObjectRow) -> None:
    h = call.headers
    prefix = "x-amz-copy-source-"
    conditions.check(
        etag=src.etag,
        modified=src.modified,
        if_match=h.get(prefix + "if-match"),
        if_none_match=h.get(prefix + "if-none-match"),
        if_modified_since=h.get(prefix + "if-modified-since"),
        if_unmodified_since=h.get(prefix + "if-unmodified-since"),
        read=False,
    )


def requested_range(call: Call, size: int) -> tuple[int, int] | None:
    return conditions.byte_range(call.headers.get("range"), size)


def copy_range(call: Call, size: int) -> tuple[int, int]:
    header = call.headers.get("x-amz-copy-source-range")
    if header is None:
        return 0, size - 1
    span = conditions.byte_range(header, size)
    if span is None:
        raise S3Error("InvalidArgument", "x-amz-copy-source-range must be like bytes=0-1048575")
    return span
