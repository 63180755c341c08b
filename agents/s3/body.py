"""Request bodies read as a stream, checked as they pass: plain and ``aws-chunked``.

A :class:`Body` is a file-like ``read(n)`` over the bytes the client sends, for the storage
client's streaming put. It knows the object's size before the first byte (Content-Length,
or ``x-amz-decoded-content-length`` for ``aws-chunked``), never holds more than one
network chunk, and when the last byte of the object is read it checks everything the
client declared (Content-MD5, the signed payload hash, ``x-amz-checksum-*`` in a header or
trailer, the chunk signatures). A failed check raises from that last read, so the put
fails and nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from agents.s3.checksums import Digests
from agents.s3.errors import S3Error
from agents.s3.sigv4 import STREAMING, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, Authorized

Source = Callable[[], bytes]  # the next bytes the client sent; b"" at the end
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_LINE = 4096


class Body:
    """The object's bytes, read from `source` (``aws-chunked`` decoded when `chunked`)."""

    def __init__(
        self,
        source: Source,
        *,
        size: int,
        digests: Digests,
        chunked: bool = False,
        auth: Authorized | None = None,
    ) -> None:
        self.size = size
        self.digests = digests
        self.checksums: dict[str, str] = {}
        self._source = source
        self._buf = bytearray()
        self._eof = False
        self._left = size  # object bytes not yet returned
        self._chunked = chunked
        self._chunk_left = 0  # data bytes left in the current aws-chunked chunk
        signed = auth is not None and auth.payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        self._auth = auth if signed else None
        self._prev_sig = auth.seed_signature if auth is not None else ""
        self._chunk_hash = hashlib.sha256()
        self._chunk_sig = ""
        self._done = False

    # ------------------------------------------------------------------ raw bytes

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._eof:
            data = self._source()
            if not data:
                self._eof = True
            self._buf += data

    def _take(self, n: int) -> bytes:
        self._fill(1)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if self._eof or len(self._buf) > MAX_LINE:
                raise S3Error("IncompleteBody", "the aws-chunked body is malformed or cut short")
            self._fill(len(self._buf) + 1)

    # ------------------------------------------------------------------ aws-chunked

    def _chunk_header(self) -> int:
        line = self._line().decode("latin-1")
        size_text, _, ext = line.partition(";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise S3Error("IncompleteBody", "the aws-chunked body is malformed") from None
        if self._auth is not None:
            name, _, sig = ext.partition("=")
            if name.strip() != "chunk-signature":
                raise S3Error("SignatureDoesNotMatch", "every chunk must carry chunk-signature")
            self._chunk_sig = sig.strip()
            self._chunk_hash = hashlib.sha256()
        return size

    def _check_chunk(self) -> None:
        auth = self._auth
        if auth is None:
            return
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                auth.timestamp,
                auth.scope,
                self._prev_sig,
                EMPTY_SHA256,
                self._chunk_hash.hexdigest(),
            ]
        )
        expected = hmac.new(auth.signing_key, text.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self._chunk_sig):
            raise S3Error("SignatureDoesNotMatch", "a chunk's signature does not match its bytes")
        self._prev_sig = expected

    def _end_chunk(self) -> None:
        if self._line() != b"":
            raise S3Error("IncompleteBody", "an aws-chunked chunk is longer than it said")
        self._check_chunk()

    def _trailers(self) -> dict[str, str]:
        """After the last data chunk: the zero chunk, trailer lines, the blank line."""
        while self._chunk_left == 0:
            size = self._chunk_header()
            if size == 0:
                self._check_chunk()
                break
            raise S3Error("IncompleteBody", "the body is longer than x-amz-decoded-content-length")
        trailers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()
        return trailers

    def _read_chunked(self, n: int) -> bytes:
        if self._chunk_left == 0:
            self._chunk_left = self._chunk_header()
            if self._chunk_left == 0:
                raise S3Error(
                    "IncompleteBody", "the body ended before x-amz-decoded-content-length"
                )
        self._fill(1)
        if not self._buf:
            raise S3Error("IncompleteBody", "the body ended early")
        data = self._take(min(n, self._chunk_left))
        self._chunk_left -= len(data)
        if self._auth is not None:
            self._chunk_hash.update(data)
        if self._chunk_left == 0:
            self._end_chunk()
        return data

    # ------------------------------------------------------------------ file-like

    def read(self, n: int = -1) -> bytes:
        """Up to `n` object bytes (all that is left when negative); b"" at the end."""
        if self._left == 0:
            self._finish()
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        parts: list[bytes] = []
        got = 0
        while got < want:
            if self._chunked:
                data = self._read_chunked(want - got)
            else:
                self._fill(1)
                data = self._take(want - got)
                if not data:
                    raise S3Error(
                        "IncompleteBody",
                        "You did not provide the number of bytes specified by the Content-Length",
                    )
            parts.append(data)
            got += len(data)
        out = b"".join(parts)
        self._left -= len(out)
        self.digests.update(out)
        if self._left == 0:
            self._finish()
        return out

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        trailers = self._trailers() if self._chunked else {}
        if not self._chunked:
            self._fill(1)
            if self._buf:
                raise S3Error("InvalidRequest", "the body is longer than its Content-Length")
        self.checksums = self.digests.verify(trailers)

    def drain(self) -> None:
        """Read to the end (a body the operation does not store, checked all the same)."""
        while self.read(1 << 20):
            pass
        self._finish()


def streaming_mode(payload: str, content_encoding: str | None) -> bool:
    """Whether the body is ``aws-chunked`` (by its payload mode or Content-Encoding)."""
    encodings = [e.strip() for e in (content_encoding or "").split(",")]
    return payload in STREAMING or "aws-chunked" in encodings
