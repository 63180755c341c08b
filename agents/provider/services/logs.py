"""A service's logs, followed line by line and bounded, for serving to its renter; the
logs of a deployment's containers, merged in time order."""

from __future__ import annotations

import contextlib
import queue
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


def merged_tail(containers: list[Any], *, main: str, lines: int) -> bytes:
    """The last `lines` lines of the containers' output. One container's come as the engine
    gives them; several containers' are merged by the engine's timestamps, each line after
    its container's name in the deployment (`main` for the main container)."""
    if len(containers) == 1:
        with eng.engine("read a service's logs"):
            one: bytes = containers[0].logs(stdout=True, stderr=True, tail=lines)
        return one
    stamped: list[tuple[bytes, int, bytes]] = []
    for c in containers:
        name = (c.labels.get(eng.CONTAINER_LABEL) or main).encode()
        with eng.engine("read a service's logs"):
            data: bytes = c.logs(stdout=True, stderr=True, tail=lines, timestamps=True)
        for i, line in enumerate(data.splitlines()):
            at, _, text = line.partition(b" ")
            stamped.append((at, i, name + b" | " + text + b"\n"))
    stamped.sort(key=lambda t: (t[0], t[1]))
    return b"".join(t[2] for t in stamped[-lines:] if lines)


def merged_follow(
    containers: list[Any],
    *,
    main: str,
    since: float | None,
    max_bytes: int,
    stop: threading.Event | None = None,
) -> Iterator[bytes]:
    """New output lines of the containers, the main one first in `containers`: one
    container's as :func:`follow_lines` yields them; several containers' as they come,
    each after its container's name, until `max_bytes` were yielded, the main container
    stops, `stop` is set, or the iterator is closed."""
    if len(containers) == 1:
        yield from follow_lines(containers[0], since=since, max_bytes=max_bytes, stop=stop)
        return
    lines: queue.Queue[bytes | None] = queue.Queue(maxsize=1024)
    done = threading.Event()

    def pump(c: Any, name: bytes, last: bool) -> None:
        try:
            for line in follow_lines(c, since=since, max_bytes=max_bytes, stop=done):
                while not done.is_set():
                    with contextlib.suppress(queue.Full):
                        lines.put(name + b" | " + line, timeout=0.2)
                        break
        except Exception:  # an engine failure ends that container's lines only
            pass
        finally:
            if last:
                lines.put(None)  # the main container's lines ended: so does the whole

    pumps = [
        threading.Thread(
            target=pump,
            args=(c, (c.labels.get(eng.CONTAINER_LABEL) or main).encode(), i == 0),
            name="logs-merge",
            daemon=True,
        )
        for i, c in enumerate(containers)
    ]
    for t in pumps:
        t.start()
    sent = 0
    try:
        while not (stop is not None and stop.is_set()):
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None or sent + len(line) > max_bytes:
                return
            sent += len(line)
            yield line
    finally:
        done.set()
        for t in pumps:
            t.join(timeout=5)
