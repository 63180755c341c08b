"""Service routes -> the nginx config that serves them (pure: no I/O).

For each service name the gateway answers two forms:

- ``NAME.apps.<domain>`` (the Host header, any port), proxied with the path as is;
- ``/apps/NAME/...`` (for clients that cannot set Host): the prefix is stripped and sent
  as ``X-Forwarded-Prefix``; ``/apps/NAME`` redirects to ``/apps/NAME/``.

A name with healthy routes is proxied to them (the newest lease first, the others as
backups while it fails), with no buffering either way (streams and server-sent events
arrive as written) and WebSocket upgrades passed through, over kept-alive upstream
connections. ``X-Forwarded-For`` (the client's address, not what it claims),
``-Proto``, ``-Host`` are set. A name whose routes are all unhealthy answers 503
"starting or unhealthy" with ``Retry-After``; a name with no route answers 404 "no
service named X"; a target that does not answer gives 502 (504 on a timeout) naming the
service. Anything the service itself answers, errors included, passes through unchanged.

``GET /.well-known/dcloud-gateway`` answers the config's generation, so whoever applies a
config can tell when the new one serves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protocol.services import ServiceRoute

logger = logging.getLogger(__name__)

PATH_PREFIX = "/apps/"
GENERATION_PATH = "/.well-known/dcloud-gateway"
RETRY_AFTER_S = 5
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$")
# Headers every proxied request gets (a location that sets one must repeat them all).
_PROXY_HEADERS = [
    ("Host", "$http_host"),
    ("Upgrade", "$http_upgrade"),
    ("Connection", "$dcloud_connection"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Forwarded-Host", "$http_host"),
]


@dataclass(frozen=True)
class Paths:
    """Where the nginx process keeps its files (all inside the gateway's folder)."""

    pid: str
    error_log: str
    temp: str
    access_log: str | None = None


def upstream_of(target: str) -> str:
    """``http://host:port`` -> ``host:port``; raises ValueError on anything else."""
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"target {target!r} is not http://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"target {target!r} must be only scheme, host and port")
    if not re.fullmatch(r"[A-Za-z0-9.:-]+", parts.hostname):
        raise ValueError(f"target {target!r} has an unusable host name")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or 80}"


def route_table(routes: Iterable[ServiceRoute]) -> dict[str, list[ServiceRoute]]:
    """Routes grouped by name, each group newest lease first; unusable targets dropped."""
    table: dict[str, list[ServiceRoute]] = {}
    for route in routes:
        try:
            upstream_of(route.target)
        except ValueError as exc:
            logger.warning("ignored %s's route (lease %d): %s", route.name, route.lease_id, exc)
            continue
        table.setdefault(route.name, []).append(route)
    for group in table.values():
        group.sort(key=lambda r: (-r.lease_id, r.target))
    return dict(sorted(table.items()))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _upstreams(table: dict[str, list[ServiceRoute]]) -> list[str]:
    lines = []
    for name, group in table.items():
        healthy = [r for r in group if r.healthy]
        if not healthy:
            continue
        lines.append(f"  upstream svc_{name} {{")
        seen: set[str] = set()
        for i, route in enumerate(healthy):
            address = upstream_of(route.target)
            if address in seen:
                continue
            seen.add(address)
            backup = " backup" if i else ""
            lines.append(f"    server {address} max_fails=1 fail_timeout=5s{backup};")
        lines += ["    keepalive 64;", "    keepalive_timeout 60s;", "  }"]
    return lines


def _states(table: dict[str, list[ServiceRoute]]) -> list[str]:
    lines = ["  map $dcloud_name $dcloud_state {", "    default unknown;"]
    for name, group in table.items():
        lines.append(f"    {name} {'up' if any(r.healthy for r in group) else 'unhealthy'};")
    return [*lines, "  }"]


def _proxy_block(indent: str, *, prefix: bool) -> list[str]:
    """Answer unknown and unhealthy names, else proxy to the name's upstream group."""
    unknown = _quote('no service named "$dcloud_name" on this gateway\n')
    unhealthy = _quote(
        'service "$dcloud_name" is starting or unhealthy: none of its instances passes its '
        "health check right now; retry in a few seconds\n"
    )
    lines = [
        f"if ($dcloud_state = unknown) {{ return 404 {unknown}; }}",
        "if ($dcloud_state = unhealthy) {",
        f"  add_header Retry-After {RETRY_AFTER_S} always;",
        f"  return 503 {unhealthy};",
        "}",
    ]
    lines += [f"proxy_set_header {k} {v};" for k, v in _PROXY_HEADERS]
    if prefix:
        lines += [
            "proxy_set_header X-Forwarded-Prefix /apps/$dcloud_name;",
            r"rewrite ^/apps/[^/]+(/.*)$ $1 break;",
        ]
    lines += [
        "proxy_pass http://svc_$dcloud_name;",
        "error_page 502 = @dcloud_502;",
        "error_page 504 = @dcloud_504;",
    ]
    return [indent + line for line in lines]


def _down_locations(indent: str) -> list[str]:
    lines = []
    for status in (502, 504):
        body = _quote(
            f'service "$dcloud_name" did not answer the gateway ({status}): its provider '
            "may be restarting it or unreachable\n"
        )
        lines += [f"location @dcloud_{status} {{ return {status} {body}; }}"]
    return [indent + line for line in lines]


def nginx_config(
    routes: Iterable[ServiceRoute],
    *,
    listen: str,
    paths: Paths,
    domain: str = "localhost",
    generation: int = 0,
    workers: int | str = "auto",
    user: str | None = None,
) -> str:
    """The whole nginx config: the gateway on `listen` (``host:port``), routes from `routes`."""
    domain = domain.lower().strip(".")
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"domain {domain!r} is not a DNS name like localhost or example.com")
    table = route_table(routes)
    host_re = r"^(?<dcloud_name>[a-z0-9-]+)\.apps\." + re.escape(domain) + "$"
    gateway_help = _quote(
        f"dcloud gateway: ask for NAME.apps.{domain} or {PATH_PREFIX}NAME/ to reach the "
        "service NAME\n"
    )
    access = f"access_log {paths.access_log};" if paths.access_log else "access_log off;"
    temp = paths.temp
    lines = [
        "# generated by agents/ingress: every change is written whole and reloaded",
        "daemon off;",
        "master_process on;",
        f"worker_processes {workers};",
        "worker_shutdown_timeout 1h;",
        f"pid {paths.pid};",
        f"error_log {paths.error_log} notice;",
        *([f"user {user};"] if user else []),
        "events { worker_connections 4096; }",
        "http {",
        f"  {access}",
        "  server_tokens off;",
        "  absolute_redirect off;",
        "  default_type text/plain;",
        "  charset utf-8;",
        f"  client_body_temp_path {temp}/body;",
        f"  proxy_temp_path {temp}/proxy;",
        f"  fastcgi_temp_path {temp}/fastcgi;",
        f"  uwsgi_temp_path {temp}/uwsgi;",
        f"  scgi_temp_path {temp}/scgi;",
        "  client_max_body_size 1g;",
        "  keepalive_requests 100000;",
        "  proxy_http_version 1.1;",
        "  proxy_buffering off;",
        "  proxy_request_buffering off;",
        "  proxy_connect_timeout 3s;",
        "  proxy_read_timeout 1h;",
        "  proxy_send_timeout 1h;",
        "  proxy_next_upstream error timeout;",
        "  proxy_next_upstream_tries 3;",
        "  map $http_upgrade $dcloud_connection { default upgrade; '' ''; }",
        *_states(table),
        *_upstreams(table),
        "  server {",
        f"    listen {listen};",
        f"    server_name ~{host_re};",
        "    location / {",
        *_proxy_block("      ", prefix=False),
        "    }",
        *_down_locations("    "),
        "  }",
        "  server {",
        f"    listen {listen} default_server;",
        "    server_name _;",
        "    set $dcloud_name '';",
        f"    location = {GENERATION_PATH} {{ return 200 '{generation}\\n'; }}",
        r"    location ~ ^/apps/(?<dcloud_name>[a-z0-9-]+)$ { return 308 /apps/$dcloud_name/; }",
        r"    location ~ ^/apps/(?<dcloud_name>[a-z0-9-]+)/ {",
        *_proxy_block("      ", prefix=True),
        "    }",
        r"    location ~ ^/apps/(?<dcloud_name>[^/]*) {",
        '      return 404 "no service named \\"$dcloud_name\\" on this gateway\\n";',
        "    }",
        f"    location / {{ return 404 {gateway_help}; }}",
        *_down_locations("    "),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"
