"""Conditional requests and ranges, as S3 evaluates them (pure functions).

``If-Match`` / ``If-None-Match`` compare ETags (``*`` matches any object);
``If-Modified-Since`` / ``If-Unmodified-Since`` compare the object's last-modified time at
one-second resolution. As in S3 (RFC 7232): a true If-Match overrides a false
If-Unmodified-Since, and a false If-None-Match overrides a true If-Modified-Since.
The same rules serve ``x-amz-copy-source-if-*`` on a copy's source.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from agents.s3.errors import S3Error

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _etags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}


def _when(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError):
        return None  # S3 ignores an unreadable date


def check(
    *,
    etag: str,
    modified: float,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    read: bool,
) -> None:
    """Raise when the conditions do not hold.

    Raises:
        S3Error: PreconditionFailed (412), or NotModified (304) for reads whose
            If-None-Match / If-Modified-Since say the client has this version.
    """
    seconds = int(modified)
    failed = S3Error(
        "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
    )
    if if_match is not None:
        tags = _etags(if_match)
        if "*" not in tags and etag not in tags:
            raise failed
    else:
        since = _when(if_unmodified_since)
        if since is not None and seconds > since:
            raise failed
    not_modified = S3Error("NotModified", "Not Modified") if read else failed
    if if_none_match is not None:
        tags = _etags(if_none_match)
        if "*" in tags or etag in tags:
            raise not_modified
    elif read:
        since = _when(if_modified_since)
        if since is not None and seconds <= since:
            raise not_modified


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) bytes a ``Range`` header asks for; None for the whole
    object (no header, or one S3 ignores, such as several ranges).

    Raises:
        S3Error: InvalidRange when the range starts past the end.
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None
    first_text, last_text = m.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # the last N bytes
        n = int(last_text)
        if n == 0:
            raise S3Error("InvalidRange", "The requested range is not satisfiable")
        return (max(size - n, 0), size - 1) if size else _unsatisfiable()
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        _unsatisfiable()
    return first, min(last, size - 1)


def _unsatisfiable() -> tuple[int, int]:
    raise S3Error("InvalidRange", "The requested range is not satisfiable")
