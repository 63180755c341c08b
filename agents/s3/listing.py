"""Listing keys as S3 does (pure): prefix, delimiter into common prefixes, max-keys and
continuation, over keys in S3's sort order (UTF-8 bytes).

:func:`list_keys` pulls keys from a ``fetch(after, limit)`` callable in order, so a listing
of a bucket with a million keys reads only as many as the page needs; a common prefix
skips every key beneath it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agents.s3.index import ObjectRow

# Sorts after every key that starts with a given prefix (UTF-8 never encodes above it).
AFTER_ALL = "\U0010ffff"
BATCH = 1000


@dataclass
class Page:
    objects: list[ObjectRow] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str = ""  # the last key or prefix on the page: where the next page starts after


def list_keys(
    fetch: Callable[[str, int], list[ObjectRow]],
    *,
    prefix: str,
    delimiter: str,
    after: str,
    max_keys: int,
) -> Page:
    """One page of at most `max_keys` entries (objects and common prefixes) after `after`."""
    page = Page()
    cursor = after
    if max_keys <= 0:
        return page
    while True:
        rows = fetch(cursor, BATCH)
        if not rows:
            return page
        for row in rows:
            if row.key <= cursor:
                continue
            if len(page.objects) + len(page.prefixes) == max_keys:
                page.truncated = True
                return page
            rest = row.key[len(prefix) :]
            cut = rest.find(delimiter) if delimiter else -1
            if cut >= 0:
                common = prefix + rest[: cut + len(delimiter)]
                page.prefixes.append(common)
                page.last = common
                cursor = common + AFTER_ALL
                break  # fetch again past everything under the common prefix
            page.objects.append(row)
            page.last = cursor = row.key
        else:
            if len(rows) < BATCH:
                return page
