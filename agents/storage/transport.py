"""A renter's signed requests to storage nodes, safe to use from many threads.

Every call raises a :class:`NodeError` subclass when the node does not deliver, so the
caller can tell a node that is down (:class:`NodeDown`) from one that answers but has no
such shard (:class:`ShardMissing`) or refuses (:class:`NodeRefused`, with the status).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from agents.errors import AgentError
from agents.storage.codec import sha256_hex
from agents.storage.wire import describe, shard_headers
from protocol.storage import CONTENT_SHA256_HEADER, ShardInfo

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 60.0


class NodeError(AgentError):
    """A node did not deliver what was asked."""


class NodeDown(NodeError):  # noqa: N818 (a state, like a 404)
    """The node cannot be reached (refused connection, timeout, broken transfer)."""


class ShardMissing(NodeError):  # noqa: N818
    """The node answers but has no such shard."""


class NodeRefused(NodeError):  # noqa: N818
    """The node answered with an error status (quota full, not owner, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NodeClient:
    """Signed shard requests as `account`; one HTTP connection pool per thread."""

    def __init__(self, account: LocalAccount, *, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.account = account
        self._timeout = httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S)
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def put(self, endpoint: str, shard_id: str, data: bytes, *, sha256: str | None = None) -> None:
        sha256 = sha256 or sha256_hex(data)
        path = f"/v1/shards/{shard_id}"
        headers = shard_headers(self.account, "PUT", path, sha256=sha256, size=len(data))
        headers[CONTENT_SHA256_HEADER] = sha256
        headers["content-type"] = "application/octet-stream"
        self._call("PUT", endpoint, path, headers=headers, content=data)

    def get(self, endpoint: str, shard_id: str) -> bytes:
        path = f"/v1/shards/{shard_id}"
        r = self._call("GET", endpoint, path, headers=shard_headers(self.account, "GET", path))
        return r.content

    def delete(self, endpoint: str, shard_id: str) -> bool:
        """Delete a shard; False when the node did not have it."""
        path = f"/v1/shards/{shard_id}"
        try:
            self._call(
                "DELETE", endpoint, path, headers=shard_headers(self.account, "DELETE", path)
            )
        except ShardMissing:
            return False
        return True

    def meta(self, endpoint: str, shard_id: str, *, verify: bool = False) -> ShardInfo:
        path = f"/v1/shards/{shard_id}/meta" + ("?verify=true" if verify else "")
        r = self._call("GET", endpoint, path, headers=shard_headers(self.account, "GET", path))
        return ShardInfo.model_validate(r.json())

    def proof(self, endpoint: str, shard_id: str, chunk: int) -> dict[str, Any]:
        path = f"/v1/shards/{shard_id}/proof?chunk={chunk}"
        r = self._call("GET", endpoint, path, headers=shard_headers(self.account, "GET", path))
        body: dict[str, Any] = r.json()
        return body

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self._timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, method: str, endpoint: str, path: str, **kw: Any) -> httpx.Response:
        url = endpoint.rstrip("/") + path
        try:
            r = self._client().request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise NodeDown(f"{endpoint} is unreachable ({type(exc).__name__})") from None
        if r.status_code == 404:
            raise ShardMissing(f"{endpoint} has no shard {path.split('/')[3]}")
        if r.status_code >= 400:
            raise NodeRefused(f"{endpoint} refused {method}: {describe(r)}", r.status_code)
        return r
