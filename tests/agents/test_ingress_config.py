"""Routes -> nginx config, without running nginx."""

from __future__ import annotations

import pytest

from agents.ingress import nginx_config, parse_routes, route_set_key, route_table
from agents.ingress.nginxconf import Paths, upstream_of
from protocol.services import ServiceRoute

PATHS = Paths(pid="/g/nginx.pid", error_log="/g/nginx.log", temp="/g/tmp")


def r(name: str, target: str, lease: int, healthy: bool = True) -> ServiceRoute:
    return ServiceRoute(name=name, target=target, lease_id=lease, healthy=healthy)


def test_targets_become_host_port() -> None:
    assert upstream_of("http://10.0.0.2:8000") == "10.0.0.2:8000"
    assert upstream_of("http://[::1]:81/") == "[::1]:81"
    assert upstream_of("http://provider.example") == "provider.example:80"
    for bad in ("ftp://x:1", "http://x:1/path", "http://u@x:1", "x:1"):
        with pytest.raises(ValueError):
            upstream_of(bad)


def test_routes_are_grouped_newest_lease_first_and_bad_targets_dropped() -> None:
    table = route_table(
        [r("blog", "http://a:1", 1), r("blog", "http://b:1", 7), r("shop", "ftp://c:1", 2)]
    )
    assert list(table) == ["blog"]
    assert [x.lease_id for x in table["blog"]] == [7, 1]


def test_config_proxies_healthy_names_and_marks_unhealthy_ones() -> None:
    text = nginx_config(
        [r("blog", "http://a:1", 1), r("blog", "http://b:2", 2), r("down", "http://c:3", 3, False)],
        listen="127.0.0.1:8780",
        paths=PATHS,
        domain="example.com",
        generation=4,
    )
    assert "server b:2 max_fails=1 fail_timeout=5s;" in text
    assert "server a:1 max_fails=1 fail_timeout=5s backup;" in text
    assert "upstream svc_down" not in text
    assert "    blog up;" in text and "    down unhealthy;" in text
    assert r"\.apps\.example\.com$" in text
    assert "return 200 '4\\n'" in text
    assert "proxy_buffering off;" in text


def test_bad_domain_is_refused() -> None:
    with pytest.raises(ValueError, match="domain"):
        nginx_config([], listen="127.0.0.1:1", paths=PATHS, domain="bad domain; x")


def test_route_list_parsing_and_set_key() -> None:
    good = {"name": "blog", "target": "http://a:1", "lease_id": 1, "healthy": True}
    other = {"name": "shop", "target": "http://b:1", "lease_id": 2, "healthy": False}
    routes = parse_routes([good, {"name": "?"}, other])
    assert [x.name for x in routes] == ["blog", "shop"]
    assert parse_routes({"routes": [good]})[0].name == "blog"
    assert route_set_key(routes) == route_set_key(routes[::-1])
    with pytest.raises(ValueError):
        parse_routes({"nope": 1})
