"""Follow the marketplace's service routes and apply each change to the gateway.

:class:`Controller` asks ``GET <marketplace>/v1/services/routes`` every `interval_s`
seconds, with ``If-None-Match`` when the marketplace sent an ETag; an unchanged answer
(304, or the same route set) costs one request and nothing else. A changed route set is
applied with a graceful reload (:meth:`~agents.ingress.nginx.Nginx.apply`). While the
marketplace cannot be reached, or answers something that is not a route list, the
gateway keeps serving the last routes it applied.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

import httpx
from pydantic import ValidationError

from agents.ingress.nginx import Nginx
from protocol.services import ServiceRoute

logger = logging.getLogger(__name__)

ROUTES_PATH = "/v1/services/routes"


def parse_routes(payload: Any) -> list[ServiceRoute]:
    """A JSON list of routes (or ``{"routes": [...]}``); entries that do not validate are
    skipped with a warning, so one bad route never hides the others."""
    items = payload.get("routes") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ValueError("the answer is not a list of routes")
    routes = []
    for item in items:
        try:
            routes.append(ServiceRoute.model_validate(item))
        except ValidationError as exc:
            logger.warning("skipped a route that does not validate: %s (%s)", item, exc)
    return routes


def route_set_key(routes: list[ServiceRoute]) -> str:
    """Equal for equal route sets, whatever their order."""
    rows = sorted(json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in routes)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


class Controller:
    """Polls one marketplace and keeps one gateway's routes equal to its answer."""

    def __init__(
        self,
        gateway: Nginx,
        marketplace: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.gateway = gateway
        self.url = marketplace.rstrip("/") + ROUTES_PATH
        self.interval_s = interval_s
        self.client = httpx.Client(timeout=timeout_s)
        self.etag: str | None = None
        self.applied: str | None = None
        self.routes: list[ServiceRoute] = []
        self.applies = 0
        self.last_apply_s: float | None = None
        self._trouble: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """Fetch the routes once; apply them if they changed. True if the gateway changed."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        try:
            answer = self.client.get(self.url, headers=headers)
            if answer.status_code == 304:
                self._ok()
                return False
            answer.raise_for_status()
            routes = parse_routes(answer.json())
        except (httpx.HTTPError, ValueError) as exc:
            self._problem(f"cannot read routes from {self.url}: {exc}; keeping the last ones")
            return False
        self._ok()
        self.etag = answer.headers.get("ETag")
        key = route_set_key(routes)
        if key == self.applied:
            return False
        self.last_apply_s = self.gateway.apply(routes)
        self.applied, self.routes = key, routes
        self.applies += 1
        healthy = len({r.name for r in routes if r.healthy})
        logger.info(
            "routes applied: %d names (%d healthy) in %.0f ms",
            len({r.name for r in routes}),
            healthy,
            self.last_apply_s * 1000,
        )
        return True

    def _problem(self, message: str) -> None:
        if message != self._trouble:
            logger.warning("%s", message)
        self._trouble = message

    def _ok(self) -> None:
        if self._trouble is not None:
            logger.info("routes readable again from %s", self.url)
        self._trouble = None

    def run(self) -> None:
        """Poll until :meth:`stop`; errors applying a config are logged and retried."""
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # a refused config must not end the gateway
                logger.error("applying routes failed: %s", exc)
                self.applied = None  # try again on the next poll
                self.etag = None
            self._stop.wait(self.interval_s)

    def start(self) -> Controller:
        """Poll in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="ingress-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.client.close()
