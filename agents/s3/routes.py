"""Which S3 operation a request is, and its HTTP side: headers in, headers and XML out.

The operation follows from the method, whether a bucket and key are named, and S3's
sub-resources in the query (``?uploads``, ``?uploadId=``, ``?delete``, ``?list-type=2``,
...); the work itself is :class:`~agents.s3.service.Service`'s and
:class:`~agents.s3.multipart.Multipart`'s. Sub-resources this gateway does not keep (ACLs,
tagging, policies, versions, ...) answer ``NotImplemented``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from urllib.parse import quote, unquote

from agents.s3 import wire as http
from agents.s3.documents import children, document, iso, parse, text
from agents.s3.errors import S3Error
from agents.s3.index import ObjectRow
from agents.s3.multipart import Multipart, chosen_parts, part_number
from agents.s3.server import Call, Reply
from agents.s3.service import Service
from agents.s3.sigv4 import Authorized

UNSUPPORTED = {
    "acl", "tagging", "policy", "versioning", "versions", "lifecycle", "cors", "website",
    "encryption", "logging", "notification", "replication", "object-lock", "retention",
    "legal-hold", "torrent", "restore", "select", "attributes", "ownershipControls",
    "publicAccessBlock", "accelerate", "requestPayment", "analytics", "metrics", "inventory",
    "intelligent-tiering",
}  # fmt: skip


def _int(call: Call, name: str, default: int, cap: int) -> int:
    try:
        value = int(call.query.get(name, default))
    except ValueError:
        raise S3Error("InvalidArgument", f"{name} must be an integer") from None
    if value < 0:
        raise S3Error("InvalidArgument", f"{name} must not be negative")
    return min(value, cap)


def _token(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


class Routes:
    """The callable the server runs per request: (call, authorized) -> reply."""

    def __init__(self, service: Service, multipart: Multipart) -> None:
        self.service = service
        self.multipart = multipart

    def __call__(self, call: Call, auth: Authorized) -> Reply:
        for name in call.query:
            if name in UNSUPPORTED:
                call.op = f"?{name}"
                raise S3Error("NotImplemented", f"?{name} is not implemented by this gateway")
        if not call.bucket:
            if call.method != "GET":
                raise S3Error("MethodNotAllowed", "Only GET (ListBuckets) is allowed at the root")
            call.op = "ListBuckets"
            return self.list_buckets(auth)
        self.service.allow(auth.key, call.bucket)
        if call.key:
            return self.object(call, auth)
        return self.bucket(call, auth)

    # ------------------------------------------------------------------ buckets

    def list_buckets(self, auth: Authorized) -> Reply:
        buckets = [
            [("Name", name), ("CreationDate", iso(at))]
            for name, at in self.service.list_buckets(auth.key)
        ]
        owner = ("Owner", [[("ID", auth.key.access_key_id), ("DisplayName", auth.key.name)]])
        return http.xml(
            document("ListAllMyBucketsResult", [owner, ("Buckets", [[("Bucket", buckets)]])])
        )

    def bucket(self, call: Call, auth: Authorized) -> Reply:
        m, q, b = call.method, call.query, call.bucket
        if m == "PUT":
            call.op = "CreateBucket"
            http.body(call, auth).drain()
            self.service.create_bucket(b)
            return Reply(200, {"location": f"/{b}"})
        if m == "HEAD":
            call.op = "HeadBucket"
            self.service.require_bucket(b)
            return Reply(200, {"x-amz-bucket-region": "us-east-1"})
        if m == "DELETE":
            call.op = "DeleteBucket"
            self.service.delete_bucket(b)
            return Reply(204)
        if m == "POST" and "delete" in q:
            call.op = "DeleteObjects"
            return self.delete_objects(call, auth)
        if m == "GET":
            if "location" in q:
                call.op = "GetBucketLocation"
                self.service.require_bucket(b)
                return http.xml(document("LocationConstraint", []))
            if "uploads" in q:
                call.op = "ListMultipartUploads"
                return self.list_uploads(call)
            call.op = "ListObjectsV2" if q.get("list-type") == "2" else "ListObjects"
            return self.list_objects(call, v2=q.get("list-type") == "2")
        raise S3Error("MethodNotAllowed", f"{m} is not allowed on a bucket")

    def delete_objects(self, call: Call, auth: Authorized) -> Reply:
        body = http.body(call, auth, require_integrity=True)
        root = parse(body.read(), "Delete")
        quiet = (text(root, "Quiet") or "").strip().lower() == "true"
        keys = [text(o, "Key") or "" for o in children(root, "Object")]
        if len(keys) > 1000:
            raise S3Error("MalformedXML", "DeleteObjects takes at most 1000 keys")
        result = self.service.delete_objects(call.bucket, keys)
        fields: list[tuple[str, object]] = []
        if not quiet:
            fields += [("Deleted", [[("Key", k)] for k in result.deleted])]
        fields += [
            (
                "Error",
                [[("Key", k), ("Code", e.code), ("Message", e.message)] for k, e in result.errors],
            )
        ]
        return http.xml(document("DeleteResult", fields))

    def list_objects(self, call: Call, *, v2: bool) -> Reply:
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = _int(call, "max-keys", 1000, 1000)
        url = q.get("encoding-type") == "url"
        if v2:
            token = q.get("continuation-token")
            after = _token(token) if token else q.get("start-after", "")
        else:
            after = q.get("marker", "")
        page = self.service.list_objects(
            call.bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
        )

        def enc(value: str) -> str:
            return quote(value, safe="/") if url else value

        contents = [
            [
                ("Key", enc(o.key)),
                ("LastModified", iso(o.modified)),
                ("ETag", f'"{o.etag}"'),
                ("Size", o.size),
                ("StorageClass", "STANDARD"),
            ]
            for o in page.objects
        ]
        fields: list[tuple[str, object]] = [
            ("Name", call.bucket),
            ("Prefix", enc(prefix)),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("MaxKeys", max_keys),
            ("EncodingType", "url" if url else None),
            ("IsTruncated", page.truncated),
        ]
        if v2:
            next_token = (
                base64.urlsafe_b64encode(page.last.encode()).decode() if page.truncated else None
            )
            fields += [
                ("KeyCount", len(page.objects) + len(page.prefixes)),
                ("ContinuationToken", q.get("continuation-token")),
                ("NextContinuationToken", next_token),
                ("StartAfter", enc(q["start-after"]) if "start-after" in q else None),
            ]
        else:
            fields += [
                ("Marker", enc(after)),
                ("NextMarker", enc(page.last) if page.truncated else None),
            ]
        fields += [
            ("Contents", contents),
            ("CommonPrefixes", [[("Prefix", enc(p))] for p in page.prefixes]),
        ]
        return http.xml(document("ListBucketResult", fields))

    def list_uploads(self, call: Call) -> Reply:
        self.service.require_bucket(call.bucket)
        limit = _int(call, "max-uploads", 1000, 1000)
        key_marker = call.query.get("key-marker", "")
        uploads = [
            u
            for u in self.multipart.index.uploads(call.bucket, prefix=call.query.get("prefix", ""))
            if u.key > key_marker
        ]
        page, truncated = uploads[:limit], len(uploads) > limit
        items = [
            [
                ("Key", u.key),
                ("UploadId", u.upload_id),
                ("Initiated", iso(u.initiated)),
                ("StorageClass", "STANDARD"),
            ]
            for u in page
        ]
        fields: list[tuple[str, object]] = [
            ("Bucket", call.bucket),
            ("KeyMarker", key_marker),
            ("UploadIdMarker", ""),
            ("NextKeyMarker", page[-1].key if truncated else None),
            ("NextUploadIdMarker", page[-1].upload_id if truncated else None),
            ("Prefix", call.query.get("prefix", "")),
            ("MaxUploads", limit),
            ("IsTruncated", truncated),
            ("Upload", items),
        ]
        return http.xml(document("ListMultipartUploadsResult", fields))

    # ------------------------------------------------------------------ objects

    def object(self, call: Call, auth: Authorized) -> Reply:
        m, q = call.method, call.query
        if "uploadId" in q:
            return self.upload_call(call, auth)
        if m == "POST" and "uploads" in q:
            call.op = "CreateMultipartUpload"
            http.body(call, auth).drain()
            upload = self.multipart.create(call.bucket, call.key, http.info(call.headers))
            fields = [("Bucket", call.bucket), ("Key", call.key), ("UploadId", upload.upload_id)]
            return http.xml(document("InitiateMultipartUploadResult", fields))
        if m == "PUT" and "x-amz-copy-source" in call.headers:
            call.op = "CopyObject"
            return self.copy_object(call, auth)
        if m == "PUT":
            call.op = "PutObject"
            http.check_put_conditions(call, self.service.index.get(call.bucket, call.key))
            row = self.service.put_object(
                call.bucket, call.key, http.body(call, auth), http.info(call.headers)
            )
            return Reply(
                200, {"etag": f'"{row.etag}"', **http.checksum_headers(row.info.checksums)}
            )
        if m in ("GET", "HEAD"):
            call.op = "GetObject" if m == "GET" else "HeadObject"
            if "partNumber" in q:
                raise S3Error("NotImplemented", "GET of one part (partNumber) is not implemented")
            return self.get_object(call)
        if m == "DELETE":
            call.op = "DeleteObject"
            self.service.delete_object(call.bucket, call.key)
            return Reply(204)
        raise S3Error("MethodNotAllowed", f"{m} is not allowed on an object")

    def get_object(self, call: Call) -> Reply:
        row = self.service.require_object(call.bucket, call.key)
        http.check_read_conditions(call, row)
        span = http.requested_range(call, row.size)
        headers = http.object_headers(row)
        for name, value in call.query.items():
            if name.startswith("response-") and name != "response-expires":
                headers[name.removeprefix("response-")] = value
        if span is None:
            first, last, status = 0, row.size - 1, 200
            if call.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
                headers |= http.checksum_headers(row.info.checksums)
        else:
            first, last, status = span[0], span[1], 206
            headers["content-range"] = f"bytes {first}-{last}/{row.size}"
        headers["content-length"] = str(last - first + 1)
        if call.method == "HEAD" or last < first:
            return Reply(status, headers)
        chunks = self.service.read(row, first, last)
        head = next(chunks, b"")  # the first segment's trouble is still a clean 503

        def stream() -> Iterator[bytes]:
            yield head
            yield from chunks

        return Reply(status, headers, stream())

    def copy_object(self, call: Call, auth: Authorized) -> Reply:
        src = self.copy_source(call, auth)
        http.body(call, auth).drain()
        directive = call.headers.get("x-amz-metadata-directive", "COPY").upper()
        info = http.info(call.headers) if directive == "REPLACE" else None
        row = self.service.copy_object(src, bucket=call.bucket, key=call.key, info=info)
        fields = [("LastModified", iso(row.modified)), ("ETag", f'"{row.etag}"')]
        return http.xml(document("CopyObjectResult", fields))

    def copy_source(self, call: Call, auth: Authorized) -> ObjectRow:
        raw = unquote(call.headers["x-amz-copy-source"]).split("?", 1)[0].lstrip("/")
        bucket, _, key = raw.partition("/")
        if not bucket or not key:
            raise S3Error("InvalidArgument", "x-amz-copy-source must be /bucket/key")
        self.service.allow(auth.key, bucket)
        src = self.service.require_object(bucket, key)
        http.check_copy_conditions(call, src)
        return src

    # ------------------------------------------------------------------ multipart

    def upload_call(self, call: Call, auth: Authorized) -> Reply:
        m, q = call.method, call.query
        upload = self.multipart.upload_of(call.bucket, call.key, q["uploadId"])
        if m == "PUT":
            number = part_number(q.get("partNumber"))
            if "x-amz-copy-source" in call.headers:
                call.op = "UploadPartCopy"
                src = self.copy_source(call, auth)
                http.body(call, auth).drain()
                first, last = http.copy_range(call, src.size)
                part = self.multipart.copy_part(upload, number, src, first, last)
                fields = [("LastModified", iso(part.modified)), ("ETag", f'"{part.etag}"')]
                return http.xml(document("CopyPartResult", fields))
            call.op = "UploadPart"
            part = self.multipart.upload_part(upload, number, http.body(call, auth))
            return Reply(200, {"etag": f'"{part.etag}"', **http.checksum_headers(part.checksums)})
        if m == "POST":
            call.op = "CompleteMultipartUpload"
            chosen = chosen_parts(http.body(call, auth).read())
            row = self.multipart.complete(upload, chosen)
            fields = [
                ("Location", f"/{call.bucket}/{quote(call.key)}"),
                ("Bucket", call.bucket),
                ("Key", call.key),
                ("ETag", f'"{row.etag}"'),
            ]
            return http.xml(document("CompleteMultipartUploadResult", fields))
        if m == "DELETE":
            call.op = "AbortMultipartUpload"
            self.multipart.abort(upload)
            return Reply(204)
        if m == "GET":
            call.op = "ListParts"
            return self.list_parts(call, upload.upload_id)
        raise S3Error("MethodNotAllowed", f"{m} is not allowed on an upload")

    def list_parts(self, call: Call, upload_id: str) -> Reply:
        limit = _int(call, "max-parts", 1000, 1000)
        marker = _int(call, "part-number-marker", 0, 10_000)
        parts = [p for p in self.multipart.index.parts(upload_id) if p.number > marker]
        page, truncated = parts[:limit], len(parts) > limit
        items = [
            [
                ("PartNumber", p.number),
                ("LastModified", iso(p.modified)),
                ("ETag", f'"{p.etag}"'),
                ("Size", p.size),
            ]
            for p in page
        ]
        fields: list[tuple[str, object]] = [
            ("Bucket", call.bucket),
            ("Key", call.key),
            ("UploadId", upload_id),
            ("PartNumberMarker", marker),
            ("NextPartNumberMarker", page[-1].number if page else marker),
            ("MaxParts", limit),
            ("IsTruncated", truncated),
            ("StorageClass", "STANDARD"),
            ("Part", items),
        ]
        return http.xml(document("ListPartsResult", fields))
