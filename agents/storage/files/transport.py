"""A renter's signed requests to storage nodes, safe to use from many threads.

Shards are the bulk of the bytes a renter moves, so this speaks HTTP/1.1 with the
standard library's ``http.client`` over one kept-alive connection per node and thread: it
reads a body of known length in one piece, which costs about a third of the CPU of a
general-purpose client per shard (measured in bench/storage.py's set-up). A connection
the node closed while idle is reopened once.

Every call raises a :class:`NodeError` subclass when the node does not deliver, so the
caller can tell a node that is down (:class:`NodeDown`) from one that answers but has no
such shard (:class:`ShardMissing`) or refuses (:class:`NodeRefused`, with the status).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from eth_account.signers.local import LocalAccount

from agents.errors import AgentError
from agents.storage.files.codec import sha256_hex
from agents.storage.wire import shard_headers
from protocol.images import SignedGrant
from protocol.storage import CONTENT_SHA256_HEADER, ShardInfo

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 60.0
# A 429 is retried after its Retry-After, at most this often and only for short waits.
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_MAX_WAIT_S = 5.0


class NodeError(AgentError):
    """A node did not deliver what was asked."""


class NodeDown(NodeError):  # noqa: N818 - names the state, like ShardMissing
    """The node cannot be reached (refused connection, timeout, broken transfer)."""


class ShardMissing(NodeError):  # noqa: N818
    """The node answers but has no such shard."""


class NodeRefused(NodeError):  # noqa: N818
    """The node answered with an error status (quota full, not owner, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Connection(http.client.HTTPConnection):
    """Connects within CONNECT_TIMEOUT_S, then waits up to the read timeout."""

    def __init__(self, host: str, port: int | None, read_timeout_s: float) -> None:
        super().__init__(host, port, timeout=read_timeout_s)

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.timeout)


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, read_timeout_s: float) -> None:
        super().__init__(host, port, timeout=read_timeout_s)


class NodeClient:
    """Signed shard requests as `account`; one connection per node and thread."""

    def __init__(self, account: LocalAccount, *, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.account = account
        self.read_timeout_s = read_timeout_s
        self._local = threading.local()
        self._all: list[dict[str, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for pool in self._all:
                for conn in pool.values():
                    conn.close()
                pool.clear()

    def put(self, endpoint: str, shard_id: str, data: bytes, *, sha256: str | None = None) -> None:
        sha256 = sha256 or sha256_hex(data)
        path = f"/v1/shards/{shard_id}"
        headers = shard_headers(self.account, "PUT", path, sha256=sha256, size=len(data))
        headers[CONTENT_SHA256_HEADER] = sha256
        headers["content-type"] = "application/octet-stream"
        self._call("PUT", endpoint, path, headers, data)

    def get(self, endpoint: str, shard_id: str) -> bytes:
        path = f"/v1/shards/{shard_id}"
        return self._call("GET", endpoint, path, shard_headers(self.account, "GET", path))

    def delete(self, endpoint: str, shard_id: str) -> bool:
        """Delete a shard; False when the node did not have it."""
        path = f"/v1/shards/{shard_id}"
        try:
            self._call("DELETE", endpoint, path, shard_headers(self.account, "DELETE", path))
        except ShardMissing:
            return False
        return True

    def meta(self, endpoint: str, shard_id: str, *, verify: bool = False) -> ShardInfo:
        path = f"/v1/shards/{shard_id}/meta" + ("?verify=true" if verify else "")
        body = self._call("GET", endpoint, path, shard_headers(self.account, "GET", path))
        return ShardInfo.model_validate_json(body)

    def proof(self, endpoint: str, shard_id: str, chunk: int) -> dict[str, Any]:
        path = f"/v1/shards/{shard_id}/proof?chunk={chunk}"
        body = self._call("GET", endpoint, path, shard_headers(self.account, "GET", path))
        answer: dict[str, Any] = json.loads(body)
        return answer

    def post_grant(self, endpoint: str, signed: SignedGrant) -> None:
        """Post a read grant whose grantee is this client's account (``POST /v1/grants``).

        Raises:
            NodeRefused: the node refused it (401: not signed by the shards' owner, for
                another node or grantee, or expired; 503: the node's grant book is full).
            NodeDown: the node cannot be reached.
        """
        path = "/v1/grants"
        headers = shard_headers(self.account, "POST", path)
        headers["content-type"] = "application/json"
        self._call("POST", endpoint, path, headers, signed.model_dump_json().encode())

    def _connection(self, endpoint: str) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = {}
            self._local.pool = pool
            with self._lock:
                self._all.append(pool)
        conn = pool.get(endpoint)
        if conn is None:
            url = urlsplit(endpoint)
            kind = _TlsConnection if url.scheme == "https" else _Connection
            conn = kind(url.hostname or "", url.port, self.read_timeout_s)
            pool[endpoint] = conn
        return conn

    def _call(
        self, method: str, endpoint: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> bytes:
        for limited in range(RATE_LIMIT_RETRIES + 1):
            response, data = self._exchange(method, endpoint, path, headers, body)
            wait = _retry_after_s(response)
            if wait is None or wait > RATE_LIMIT_MAX_WAIT_S or limited == RATE_LIMIT_RETRIES:
                break
            time.sleep(wait)  # refused before the node checked it: the same signature is new
        status = response.status
        if status == 429:
            raise NodeRefused(
                f"{endpoint} is rate limiting this key or address: {_reason(status, data)}; "
                "send fewer requests at once",
                status,
            )
        if status == 404 and path.startswith("/v1/shards/"):
            raise ShardMissing(f"{endpoint} has no shard {path.split('/')[3].split('?')[0]}")
        if status >= 400:
            raise NodeRefused(f"{endpoint} refused {method}: {_reason(status, data)}", status)
        return data

    def _exchange(
        self, method: str, endpoint: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[http.client.HTTPResponse, bytes]:
        prefix = urlsplit(endpoint).path.rstrip("/")
        for attempt in (1, 2):
            conn = self._connection(endpoint)
            reused = conn.sock is not None
            try:
                conn.request(method, prefix + path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and attempt == 1 and _closed_while_idle(exc):
                    continue  # the node dropped a kept-alive connection: one fresh try
                raise NodeDown(f"{endpoint} is unreachable ({type(exc).__name__})") from None
            if response.will_close:
                conn.close()
            return response, data
        raise AssertionError("unreachable")


def _retry_after_s(response: http.client.HTTPResponse) -> float | None:
    """The seconds a 429 asks to wait (None: not a 429)."""
    if response.status != 429:
        return None
    try:
        return max(1.0, float(response.getheader("retry-after") or 1))
    except ValueError:
        return 1.0


def _closed_while_idle(exc: Exception) -> bool:
    return isinstance(
        exc,
        http.client.RemoteDisconnected
        | http.client.BadStatusLine
        | ConnectionResetError
        | BrokenPipeError,
    )


def _reason(status: int, body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(str(e.get("msg")) for e in detail[:3] if isinstance(e, dict))
    return f"HTTP {status}: {detail or body[:200].decode(errors='replace')}"
