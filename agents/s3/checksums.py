"""The integrity checks a client may attach to a body: Content-MD5, the SigV4 payload hash,
and the ``x-amz-checksum-*`` family (CRC32, CRC32C, SHA1, SHA256) that current SDKs send on
every upload, in a header or in an ``aws-chunked`` trailer.

:class:`Digests` runs over the bytes as they stream past and, at the end, compares every
declared value; the MD5 it always computes is the object's ETag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import crc32c as _crc32c

from agents.s3.errors import S3Error

CHECKSUM_HEADER = "x-amz-checksum-"
ALGORITHMS = ("crc32", "crc32c", "sha1", "sha256")
MAX_PENDING = 16  # chunks queued for the digest thread before the reader waits
NOT_VALUES = ("algorithm", "type", "mode")  # x-amz-checksum-* headers that carry no checksum


class _Crc:
    def __init__(self, fn: Callable[[bytes, int], int]) -> None:
        self._fn = fn
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value) & 0xFFFFFFFF

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Hash:
    def __init__(self, name: str) -> None:
        self._h = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()


def new_checksum(algorithm: str) -> _Crc | _Hash:
    """A running checksum for `algorithm` (one of :data:`ALGORITHMS`)."""
    if algorithm == "crc32":
        return _Crc(zlib.crc32)
    if algorithm == "crc32c":
        return _Crc(_crc32c.crc32c)
    if algorithm in ("sha1", "sha256"):
        return _Hash(algorithm)
    raise S3Error(
        "InvalidRequest",
        f"checksum algorithm {algorithm.upper()} is not supported here; use CRC32, CRC32C, "
        "SHA1 or SHA256",
    )


def declared_checksums(headers: dict[str, str]) -> dict[str, str]:
    """``x-amz-checksum-<alg>`` headers sent with the body: algorithm -> base64 value."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith(CHECKSUM_HEADER) and name[len(CHECKSUM_HEADER) :] not in NOT_VALUES:
            out[name[len(CHECKSUM_HEADER) :]] = value
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Digests:
    """MD5 (the ETag) and every declared check over a body, checked by :meth:`verify`."""

    def __init__(
        self,
        *,
        content_md5: str | None = None,
        sha256_hex: str | None = None,
        checksums: dict[str, str] | None = None,
        trailer: str | None = None,
    ) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.expected_md5: bytes | None = None
        if content_md5 is not None:
            try:
                self.expected_md5 = base64.b64decode(content_md5, validate=True)
            except binascii.Error:
                self.expected_md5 = b""
            if len(self.expected_md5) != 16:
                raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.")
        self.sha256 = hashlib.sha256() if sha256_hex is not None else None
        self.expected_sha256 = sha256_hex
        self.expected = dict(checksums or {})
        names = set(self.expected) | ({trailer} if trailer else set())
        self.running = {name: new_checksum(name) for name in names}
        self.trailer = trailer
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()

    def hash_in_background(self) -> None:
        """Hash on a thread of its own from now on (hashlib and zlib release the GIL), so a
        large body's digests run beside the read loop and the storage pipeline."""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="s3-digests")

    def update(self, data: bytes) -> None:
        if self._pool is None:
            self._update(data)
            return
        self._pending.append(self._pool.submit(self._update, data))
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft().result()

    def _update(self, data: bytes) -> None:
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        for checksum in self.running.values():
            checksum.update(data)

    def _settle(self) -> None:
        while self._pending:
            self._pending.popleft().result()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def verify(self, trailers: dict[str, str] | None = None) -> dict[str, str]:
        """Compare every declared value; the checksums that held, as base64 by algorithm.

        Raises:
            S3Error: BadDigest (Content-MD5 or a checksum), XAmzContentSHA256Mismatch.
        """
        self._settle()
        if self.expected_md5 is not None and self.md5.digest() != self.expected_md5:
            raise S3Error(
                "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        if self.sha256 is not None and self.sha256.hexdigest() != self.expected_sha256:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        expected = dict(self.expected)
        if self.trailer is not None:
            value = (trailers or {}).get(CHECKSUM_HEADER + self.trailer)
            if value is None:
                raise S3Error(
                    "InvalidRequest", f"the trailer {CHECKSUM_HEADER}{self.trailer} is missing"
                )
            expected[self.trailer] = value
        good: dict[str, str] = {}
        for name, value in expected.items():
            got = b64(self.running[name].digest())
            if got != value:
                raise S3Error(
                    "BadDigest",
                    f"The {name.upper()} you specified did not match the calculated checksum.",
                )
            good[name] = got
        return good

    def etag(self) -> str:
        self._settle()
        return self.md5.hexdigest()
