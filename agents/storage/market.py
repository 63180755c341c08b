"""The marketplace's storage routes, as a storage node and a renter call them."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from agents.errors import RefusedError, UserError
from agents.market import MarketClient, describe
from protocol.storage import (
    HEARTBEAT,
    REGISTER,
    REPORT,
    NodeReport,
    Placement,
    PlacementRequest,
    ReportResult,
    StorageHeartbeat,
    StorageNodeList,
    StorageNodePublic,
    StorageNodeRegistration,
    StorageReport,
)

logger = logging.getLogger(__name__)

DEFAULT_MARKETPLACE = "http://127.0.0.1:8700"


class NotRegisteredError(RefusedError):
    """The marketplace does not know this node (a heartbeat before registering)."""


class StorageMarket(MarketClient):
    """Signed and plain calls to ``/v1/storage`` of one marketplace (the agents' one
    signed-request client, with the storage routes' error meanings)."""

    def register(self, reg: StorageNodeRegistration) -> StorageNodePublic:
        body = self.post_signed(
            "/v1/storage/nodes", purpose=REGISTER, payload=reg.model_dump(mode="json")
        )
        return StorageNodePublic.model_validate(body)

    def heartbeat(self, hb: StorageHeartbeat) -> StorageNodePublic:
        body = self.post_signed(
            "/v1/storage/nodes/heartbeat", purpose=HEARTBEAT, payload=hb.model_dump(mode="json")
        )
        return StorageNodePublic.model_validate(body)

    def report(self, reports: list[NodeReport]) -> ReportResult | None:
        """Send observations of nodes (at most 256 per request); None when there are none."""
        result = None
        for i in range(0, len(reports), 256):
            payload = StorageReport(reports=reports[i : i + 256]).model_dump(mode="json")
            result = ReportResult.model_validate(
                self.post_signed("/v1/storage/reports", purpose=REPORT, payload=payload)
            )
        return result

    def placement(self, request: PlacementRequest) -> Placement:
        r = self._send("POST", "/v1/storage/placement", json=request.model_dump(mode="json"))
        return Placement.model_validate(self._answer(r))

    def nodes(self) -> list[StorageNodePublic]:
        """Every registered node (online or not)."""
        out: list[StorageNodePublic] = []
        while True:
            r = self._send("GET", "/v1/storage/nodes", params={"limit": 1000, "offset": len(out)})
            page = StorageNodeList.model_validate(self._answer(r))
            out.extend(page.items)
            if not page.items or len(out) >= page.total:
                return out

    def _answer(self, r: httpx.Response) -> Any:
        if r.status_code < 400:
            return r.json()
        if r.status_code == 409:
            raise NotRegisteredError(f"the marketplace refused: {describe(r)}")
        if r.status_code == 422:
            raise UserError(f"the marketplace refused the request: {describe(r)}")
        raise RefusedError(f"the marketplace refused: {describe(r)}")
