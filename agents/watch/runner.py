"""One watcher: read the marketplace's open down stretches, look, co-sign.

Each round (:meth:`Watcher.run_once`) reads ``GET /v1/watch/down`` (the stretches the
marketplace's prober sees down, and the EIP-712 domain), looks at each service through
the ingress gateway by its public name, as its users reach it (its HTTP health path;
a TCP-checked service counts as down when the gateway cannot reach it: 502, 503, 504 or
no answer), and signs a ``WatchReport`` for each stretch it also sees down, posted back in
one ``POST /v1/watch/down``. A watcher signs only what it saw itself: a service that
answers here is not co-signed, whatever the marketplace says. Its key must hold
LeaseEscrow's WATCHER_ROLE for the signatures to count (the marketplace says so per
report).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from eth_account.signers.local import LocalAccount

from protocol.leases import sign_watch_report

logger = logging.getLogger(__name__)

LOOK_TIMEOUT_S = 3.0
UNREACHABLE = (502, 503, 504)  # the gateway could not reach the service


@dataclass(frozen=True)
class Signed:
    lease_id: int
    name: str
    accepted: bool
    detail: str


class Watcher:
    def __init__(
        self,
        account: LocalAccount,
        *,
        marketplace_url: str,
        gateway_url: str,
        domain: str = "localhost",
        http: httpx.Client | None = None,
    ) -> None:
        self.account = account
        self.market = marketplace_url.rstrip("/")
        self.gateway = gateway_url.rstrip("/")
        self.domain = domain
        self.http = http or httpx.Client(timeout=LOOK_TIMEOUT_S)

    def host(self, name: str) -> str:
        port = urlsplit(self.gateway).port
        return f"{name}.apps.{self.domain}" + (f":{port}" if port else "")

    def up(self, name: str) -> bool:
        """Whether `name` answers through the gateway as its health check asks."""
        try:
            spec = self.http.get(f"{self.market}/v1/services/{name}").json()["spec"]
            health = spec.get("health") or {}
            path = health.get("path", "/") if health.get("kind", "http") == "http" else "/"
            r = self.http.get(f"{self.gateway}{path}", headers={"Host": self.host(name)})
        except (httpx.HTTPError, KeyError, ValueError):
            return False
        if (spec.get("health") or {}).get("kind") == "tcp":
            return r.status_code not in UNREACHABLE
        return 200 <= r.status_code < 400

    def run_once(self) -> list[Signed]:
        """Look at every open stretch and co-sign those down here too; what the
        marketplace made of each co-signature."""
        r = self.http.get(f"{self.market}/v1/watch/down")
        if r.status_code == 404:
            return []
        r.raise_for_status()
        down: dict[str, Any] = r.json()
        reports, names = [], {}
        for s in down["stretches"]:
            if self.up(s["name"]):
                logger.info("not co-signed: it answers here", extra={"service": s["name"]})
                continue
            signature = sign_watch_report(
                self.account.key,
                chain_id=down["chain_id"],
                escrow=down["escrow"],
                lease_id=s["lease_id"],
                start=s["start"],
                end=s["end"],
            )
            names[s["lease_id"]] = s["name"]
            reports.append({**s, "signature": "0x" + signature.hex()})
            reports[-1].pop("name")
        if not reports:
            return []
        answer = self.http.post(f"{self.market}/v1/watch/down", json={"reports": reports})
        answer.raise_for_status()
        out = [
            Signed(a["lease_id"], names.get(a["lease_id"], ""), a["accepted"], a["detail"])
            for a in answer.json()
        ]
        for o in out:
            logger.info(
                "co-signed" if o.accepted else "co-signature refused",
                extra={"service": o.name, "lease_id": o.lease_id, "detail": o.detail},
            )
        return out

    def close(self) -> None:
        self.http.close()
