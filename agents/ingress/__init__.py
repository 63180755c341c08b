"""The ingress gateway: stable service names routed to the provider serving them now.

``NAME.apps.<domain>`` and ``/apps/NAME/...`` reach the target the marketplace names for
NAME (``GET /v1/services/routes``), over HTTP with WebSockets and streaming responses.

- :mod:`~agents.ingress.nginxconf`: routes -> nginx config (pure).
- :mod:`~agents.ingress.nginx`: the nginx process, started, reloaded and stopped by PID.
- :mod:`~agents.ingress.controller`: polls the marketplace and applies route changes.
- :mod:`~agents.ingress.cli`: ``dcloud gateway run``.

Why nginx and not Caddy: Debian 12's Caddy (2.6.2) cancels every proxied request in
flight when its config is replaced through the admin API (a slow request got a 502,
WebSockets were closed with 1001, streams were cut), and every route change is a config
change. nginx's graceful reload lets the old workers finish what they serve.
"""

from __future__ import annotations

from agents.ingress.controller import Controller, parse_routes, route_set_key
from agents.ingress.nginx import GatewayError, Nginx, check_port
from agents.ingress.nginxconf import GENERATION_PATH, PATH_PREFIX, nginx_config, route_table

__all__ = [
    "GENERATION_PATH",
    "PATH_PREFIX",
    "Controller",
    "GatewayError",
    "Nginx",
    "check_port",
    "nginx_config",
    "parse_routes",
    "route_set_key",
    "route_table",
]
