"""Where a service answers through the ingress gateway, and checking that it does.

The gateway serves ``NAME.apps.<domain>`` (by the Host header) and ``/apps/NAME/`` (by
path, no DNS needed). The renter's config says where it listens (``gateway_url``,
default ``http://127.0.0.1:8780``) and its domain (``apps_domain``, default
``localhost``); the check sends the Host form to that address, so it works before any
DNS name exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

DEFAULT_URL = "http://127.0.0.1:8780"
DEFAULT_DOMAIN = "localhost"
# What the gateway itself answers for a name it cannot serve (yet): no route, a route
# not healthy, a target that does not answer.
_GATEWAY_404 = "on this gateway"
_NOT_YET = (502, 503, 504)


@dataclass(frozen=True)
class Gateway:
    url: str = DEFAULT_URL
    domain: str = DEFAULT_DOMAIN

    def host(self, name: str) -> str:
        """The Host header of `name`: ``NAME.apps.<domain>[:port]``."""
        port = urlsplit(self.url).port
        return f"{name}.apps.{self.domain}" + (f":{port}" if port else "")

    def public_url(self, name: str) -> str:
        """``http://NAME.apps.<domain>:<port>/``."""
        return f"{urlsplit(self.url).scheme or 'http'}://{self.host(name)}/"

    def path_url(self, name: str) -> str:
        """``<gateway>/apps/NAME/``: the form that needs no DNS."""
        return f"{self.url.rstrip('/')}/apps/{name}/"

    def check(
        self, name: str, *, path: str = "/", timeout_s: float = 60.0, poll_s: float = 0.5
    ) -> tuple[bool, str]:
        """Wait until `name` answers through the gateway in both forms (a status its
        service sent, not one of the gateway's own); (ok, what was seen)."""
        forms = [
            (self.url.rstrip("/") + path, {"Host": self.host(name)}),
            (self.path_url(name).rstrip("/") + path, {}),
        ]
        end = time.monotonic() + timeout_s
        seen = ""
        with httpx.Client(timeout=10.0) as http:
            for url, headers in forms:
                while True:
                    try:
                        r = http.get(url, headers=headers)
                    except httpx.HTTPError as exc:
                        return False, (
                            f"no gateway answers at {self.url} ({exc.__class__.__name__}); "
                            "start one with `dcloud gateway run`"
                        )
                    seen = f"{url} answered HTTP {r.status_code}"
                    if headers:
                        seen += f" for Host {headers['Host']}"
                    if not _from_gateway(r):
                        break
                    if time.monotonic() > end:
                        return False, seen
                    time.sleep(poll_s)
        return True, seen


def _from_gateway(r: httpx.Response) -> bool:
    """Is this the gateway's own answer (no route yet, starting, target down)?"""
    if r.status_code in _NOT_YET:
        return True
    return r.status_code == 404 and _GATEWAY_404 in r.text
