"""Connections into a container's own network namespace, from the agent's process.

A service with no outbound network runs with no network interface but loopback, so
nothing outside can reach it and it can reach nothing. The agent still reaches its port:
a short-lived thread enters the namespace of the container's first process
(``setns(2)`` on ``/proc/<pid>/ns/net``, which changes only the calling thread), opens a
TCP connection to the port on the container's loopback, and exits; the socket stays in
that namespace and is used from any thread. Needs root (CAP_SYS_ADMIN), as the agent's
other Docker work does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_JOIN_MARGIN_S = 5.0


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns into a container's network: {os.strerror(code)}")


def open_netns(pid: int, container_id: str) -> int:
    """A file descriptor of the network namespace of `pid`, checked to be in the container.

    The check (the process's cgroup names the container, after the namespace is opened)
    makes sure a recycled process id never leads into someone else's namespace.

    Raises:
        ProcessLookupError: the process is gone or is not the container's.
    """
    if pid <= 0:
        raise ProcessLookupError(errno.ESRCH, "the container has no running process")
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, "the container's process is gone") from None
    if not same_netns(fd, pid, container_id):
        os.close(fd)
        raise ProcessLookupError(errno.ESRCH, "the container's process is gone")
    return fd


def same_netns(fd: int, pid: int, container_id: str) -> bool:
    """Whether `pid` still is a process of the container and `fd` still its namespace."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii", errors="replace") as f:
            if container_id not in f.read():
                return False
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


def connect_in(netns_fd: int, port: int, *, timeout: float) -> socket.socket:
    """A blocking TCP socket connected to `port` on the loopback of the namespace `netns_fd`.

    Tries 127.0.0.1, then ::1 (a service may listen on either). Closes `netns_fd`.

    Raises:
        OSError: the namespace cannot be entered, or nothing listens
            (ConnectionRefusedError) or answers in time (TimeoutError).
    """
    outcome: list[socket.socket | OSError] = []

    def inside() -> None:
        try:
            try:
                _setns(netns_fd)
            finally:
                os.close(netns_fd)
            last: OSError = ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
            for host in ("127.0.0.1", "::1"):
                try:
                    sock = socket.create_connection((host, port), timeout=timeout)
                except ConnectionRefusedError as exc:
                    last = exc
                    continue
                except OSError as exc:  # ::1 absent when the container has no IPv6
                    if host == "127.0.0.1":
                        last = exc
                    continue
                sock.settimeout(None)
                outcome.append(sock)
                return
            outcome.append(last)
        except OSError as exc:
            outcome.append(exc)

    # the thread ends after connecting, so its changed namespace dies with it
    worker = threading.Thread(target=inside, name="netns-connect", daemon=True)
    worker.start()
    worker.join(2 * timeout + _JOIN_MARGIN_S)
    if not outcome:
        raise TimeoutError(errno.ETIMEDOUT, "connecting into the container timed out")
    got = outcome[0]
    if isinstance(got, OSError):
        raise got
    return got
