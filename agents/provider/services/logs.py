"""A service's logs, followed line by line and bounded, for serving to its renter."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from agents.provider.services import engine as eng

MAX_LINE = 16 * 2**10  # a longer line is cut here (and ended with a newline)


def follow_lines(
    container: Any,
    *,
    since: float | None,
    max_bytes: int,
    stop: threading.Event | None = None,
) -> Iterator[bytes]:
    """Yield the container's new output lines (stdout and stderr as they interleave), each
    ending with b"\\n" and at most MAX_LINE + 1 bytes, until `max_bytes` were yielded, the
    container stops, `stop` is set, or the iterator is closed."""
    with eng.engine("follow a service's logs"):
        if since is None:
            stream = container.logs(stdout=True, stderr=True, stream=True, follow=True, tail=0)
        else:
            stream = container.logs(stdout=True, stderr=True, stream=True, follow=True, since=since)
    done = threading.Event()

    def watch() -> None:  # a stream blocked in a read ends only when closed
        while not done.wait(0.2):
            if stop is not None and stop.is_set():
                break
        with contextlib.suppress(Exception):
            stream.close()

    watcher = threading.Thread(target=watch, name="logs-follow", daemon=True)
    watcher.start()
    sent = 0
    pending = b""
    try:
        for chunk in _chunks(stream):
            pending += chunk
            while b"\n" in pending or len(pending) > MAX_LINE:
                line, sep, rest = pending.partition(b"\n")
                if len(line) > MAX_LINE or not sep:
                    line, rest = pending[:MAX_LINE], pending[MAX_LINE:]
                    if rest.startswith(b"\n"):
                        rest = rest[1:]
                pending = rest
                line += b"\n"
                if sent + len(line) > max_bytes:
                    return
                sent += len(line)
                yield line
        if pending and sent + len(pending) + 1 <= max_bytes:
            yield pending + b"\n"
    finally:
        done.set()
        with contextlib.suppress(Exception):
            stream.close()
        watcher.join(timeout=5)


def _chunks(stream: Any) -> Iterator[bytes]:
    with contextlib.suppress(Exception):  # closed under us (stop, or the caller went away)
        yield from stream
