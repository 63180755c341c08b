"""The gateway's controller following a route list, with a real nginx and real upstreams.

The marketplace's ``GET /v1/services/routes`` is served here by a small FastAPI app the
test starts (a stand-in for that one endpoint only, until the marketplace serves it): it
returns a route list the test controls, with an ETag, and counts its answers.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from agents.ingress import Controller, Nginx
from tests.agents.ingress_upstreams import serve, upstream

pytestmark = pytest.mark.integration


@dataclass
class RouteList:
    routes: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


def stand_in(state: RouteList) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/services/routes")
    def routes(request: Request) -> Response:
        text = json.dumps(state.routes)
        etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'
        status = 304 if request.headers.get("if-none-match") == etag else 200
        state.answers.append(status)
        return Response(
            "" if status == 304 else text,
            status_code=status,
            media_type="application/json",
            headers={"ETag": etag},
        )

    return app


@pytest.fixture
def market() -> Iterator[tuple[RouteList, str]]:
    state = RouteList()
    with serve(stand_in(state)) as url:
        yield state, url


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Nginx]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = Nginx(tmp_path / "gateway", port=port)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def tag(gw: Nginx, name: str) -> str:
    answer = httpx.get(f"{gw.url}/apps/{name}/", timeout=10)
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["tag"]
    return value


def entry(name: str, url: str, lease: int, healthy: bool = True) -> dict[str, Any]:
    return {"name": name, "target": url, "lease_id": lease, "healthy": healthy}


def test_controller_applies_routes_and_follows_a_change(market, gateway) -> None:
    state, url = market
    controller = Controller(gateway, url)
    with upstream("blue") as blue, upstream("green") as green:
        state.routes = [entry("blog", blue.url, 1)]
        assert controller.poll_once()
        assert tag(gateway, "blog") == "blue"
        pid = gateway.pid

        state.routes = [entry("blog", green.url, 2), entry("shop", blue.url, 3)]
        assert controller.poll_once()
        assert tag(gateway, "blog") == "green"
        assert tag(gateway, "shop") == "blue"
        assert gateway.pid == pid
    controller.stop()


def test_unchanged_routes_cost_one_conditional_request(market, gateway) -> None:
    state, url = market
    controller = Controller(gateway, url)
    state.routes = [entry("blog", "http://127.0.0.1:9", 1)]
    assert controller.poll_once()
    generation = gateway.generation
    assert not controller.poll_once()
    assert not controller.poll_once()
    assert state.answers == [200, 304, 304]
    assert gateway.generation == generation  # nothing reloaded
    controller.stop()


def test_bad_entries_are_skipped_and_an_unreachable_marketplace_keeps_routes(
    market, gateway
) -> None:
    state, url = market
    controller = Controller(gateway, url)
    with upstream("blue") as blue:
        state.routes = [entry("blog", blue.url, 1), {"name": "X!", "target": "nope"}]
        assert controller.poll_once()
        assert [r.name for r in controller.routes] == ["blog"]

        away = Controller(gateway, "http://127.0.0.1:9")
        assert not away.poll_once()
        assert tag(gateway, "blog") == "blue"
        away.stop()
    controller.stop()


def test_controller_thread_applies_a_new_route(market, gateway) -> None:
    state, url = market
    controller = Controller(gateway, url, interval_s=0.05).start()
    try:
        with upstream("blue") as blue:
            applied = threading.Event()
            state.routes = [entry("blog", blue.url, 1)]
            while not applied.wait(0.05):
                if [x.name for x in controller.routes] == ["blog"]:
                    applied.set()
            assert tag(gateway, "blog") == "blue"
    finally:
        controller.stop()
