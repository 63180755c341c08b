"""The ingress gateway with a real nginx and real upstream servers (uvicorn, WebSockets)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from agents.errors import UserError
from agents.ingress import Nginx
from protocol.services import ServiceRoute
from tests.agents.ingress_upstreams import Upstream, upstream

pytestmark = pytest.mark.integration


def route(name: str, up: Upstream | str, *, lease: int = 1, healthy: bool = True) -> ServiceRoute:
    target = up if isinstance(up, str) else up.url
    return ServiceRoute(name=name, target=target, lease_id=lease, healthy=healthy)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def blue() -> Iterator[Upstream]:
    with upstream("blue") as up:
        yield up


@pytest.fixture
def green() -> Iterator[Upstream]:
    with upstream("green") as up:
        yield up


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Nginx]:
    gw = Nginx(tmp_path / "gateway", port=free_port())
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def get(gw: Nginx, path: str, host: str | None = None) -> httpx.Response:
    headers = {"Host": f"{host}:{gw.port}"} if host else {}
    return httpx.get(gw.url + path, headers=headers, timeout=10)


def body(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    value: dict[str, Any] = answer.json()
    return value


def test_host_form_reaches_the_upstream_with_forwarded_headers(gateway, blue) -> None:
    gateway.apply([route("blog", blue)])
    seen = body(get(gateway, "/posts/1?x=2", host="blog.apps.localhost"))
    assert seen["tag"] == "blue"
    assert seen["path"] == "/posts/1"
    assert seen["headers"]["x-forwarded-host"] == f"blog.apps.localhost:{gateway.port}"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_path_form_strips_the_prefix(gateway, blue) -> None:
    gateway.apply([route("blog", blue)])
    seen = body(get(gateway, "/apps/blog/posts/a%20b"))
    assert seen["tag"] == "blue"
    assert seen["path"] == "/posts/a b"
    assert seen["headers"]["x-forwarded-prefix"] == "/apps/blog"
    bare = get(gateway, "/apps/blog")
    assert bare.status_code == 308
    assert bare.headers["location"] == "/apps/blog/"


def test_two_names_reach_two_upstreams(gateway, blue, green) -> None:
    gateway.apply([route("blog", blue), route("shop", green, lease=2)])
    assert body(get(gateway, "/", host="blog.apps.localhost"))["tag"] == "blue"
    assert body(get(gateway, "/", host="shop.apps.localhost"))["tag"] == "green"
    assert body(get(gateway, "/apps/blog/"))["tag"] == "blue"
    assert body(get(gateway, "/apps/shop/"))["tag"] == "green"


def test_route_change_applies_without_restart_and_keeps_requests_in_flight(
    gateway, blue, green
) -> None:
    gateway.apply([route("blog", blue)])
    pid = gateway.pid
    answers: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: answers.append(get(gateway, "/apps/blog/slow")))
    slow.start()
    assert blue.slow_arrived.wait(30)
    with connect(f"ws://127.0.0.1:{gateway.port}/apps/blog/ws") as ws:
        ws.send("before")
        assert ws.recv(timeout=10) == "blue:before"

        gateway.apply([route("blog", green, lease=2)])

        assert body(get(gateway, "/", host="blog.apps.localhost"))["tag"] == "green"
        assert gateway.pid == pid and gateway.alive()
        ws.send("after")  # an open WebSocket stays with the upstream it was opened to
        assert ws.recv(timeout=10) == "blue:after"
    blue.slow_release.set()
    slow.join(30)
    assert body(answers[0]) == {"tag": "blue", "released": True}


def test_websocket_echo_through_both_forms(gateway, blue) -> None:
    gateway.apply([route("echo", blue)])
    with connect(f"ws://127.0.0.1:{gateway.port}/apps/echo/ws") as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "blue:hello"
    sock = socket.create_connection(("127.0.0.1", gateway.port))  # NAME.apps.localhost
    with connect(f"ws://echo.apps.localhost:{gateway.port}/ws", sock=sock) as ws:
        ws.send("again")
        assert ws.recv(timeout=10) == "blue:again"


def test_streaming_response_arrives_before_the_upstream_finishes(gateway, blue) -> None:
    gateway.apply([route("feed", blue)])
    url = gateway.url + "/apps/feed/stream"
    with httpx.stream("GET", url, timeout=60) as answer:
        lines = answer.iter_lines()
        assert next(lines) == "first"
        blue.first_chunk_read.set()  # the upstream sends the rest only after this
        assert list(lines) == ["second after the client read the first"]


def test_unknown_name_answers_a_clear_404(gateway, blue) -> None:
    gateway.apply([route("blog", blue)])
    for answer in (get(gateway, "/", host="nope.apps.localhost"), get(gateway, "/apps/nope/x")):
        assert answer.status_code == 404
        assert answer.text == 'no service named "nope" on this gateway\n'
    other = get(gateway, "/")
    assert other.status_code == 404
    assert "NAME.apps.localhost" in other.text


def test_unhealthy_name_answers_503_with_retry_after(gateway, blue) -> None:
    gateway.apply([route("blog", blue, healthy=False)])
    for answer in (get(gateway, "/", host="blog.apps.localhost"), get(gateway, "/apps/blog/")):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.text.startswith('service "blog" is starting or unhealthy')


def test_unhealthy_instance_is_skipped_for_a_healthy_one(gateway, blue, green) -> None:
    gateway.apply([route("blog", blue, lease=3, healthy=False), route("blog", green, lease=2)])
    assert body(get(gateway, "/apps/blog/"))["tag"] == "green"


def test_upstream_that_does_not_answer_gives_502_naming_the_service(gateway) -> None:
    gateway.apply([route("gone", f"http://127.0.0.1:{free_port()}")])
    answer = get(gateway, "/apps/gone/")
    assert answer.status_code == 502
    assert answer.text.startswith('service "gone" did not answer the gateway (502)')


def test_newest_lease_serves_and_an_older_one_takes_over_when_it_fails(gateway, blue) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gateway.apply([route("blog", dead, lease=5), route("blog", blue, lease=4)])
    assert body(get(gateway, "/apps/blog/"))["tag"] == "blue"


def test_busy_port_is_refused_clearly(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        gw = Nginx(tmp_path / "gw", port=busy.getsockname()[1])
        with pytest.raises(UserError, match=r"cannot listen on 127\.0\.0\.1"):
            gw.start()
        assert gw.popen is None


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                continue
    return members


def test_stop_leaves_no_process(tmp_path, blue) -> None:
    gw = Nginx(tmp_path / "gw", port=free_port())
    gw.start([route("blog", blue)])
    pid = gw.pid
    assert pid is not None and _group_members(pid)  # the master and its workers
    gw.stop()
    assert not gw.alive()
    assert _group_members(pid) == []
    assert not (tmp_path / "gw" / "nginx.pid").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(gw.url + "/", timeout=2)
