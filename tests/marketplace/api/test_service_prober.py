"""The prober checks services where their providers publish them: a real HTTP server on a
free port is healthy, a port nobody listens on is not."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from marketplace.services.prober import Prober
from tests.marketplace.api.conftest import account
from tests.marketplace.api.services_helpers import deploy, register, report, service_spec

ALICE, P1 = account("alice"), account("provider-probe")


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 500)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _running(client, port: int, *, name: str = "blog", path: str = "/healthz", kind="http"):
    register(client, P1, cpu=4)
    health = {"kind": kind, "path": path, "timeout_s": 2}
    assert deploy(client, ALICE, service_spec(name, health=health)).status_code == 201
    assert report(client, P1, name, host_port=port, state="starting").status_code == 200


def _probe(client):
    return Prober(client.app.state.service).run_once()


def test_a_live_http_server_is_recorded_healthy(client, http_port):
    _running(client, http_port)
    probes = _probe(client)
    assert [(p.target.name, p.healthy) for p in probes] == [("blog", True)]
    health = client.get("/v1/services/blog").json()["health"]
    assert health["probe_healthy"] is True and health["first_healthy_at"] is not None
    assert "HTTP 200" in health["probe_detail"]
    assert client.get("/v1/services/routes").json()[0]["healthy"] is True


def test_an_error_status_is_recorded_unhealthy(client, http_port):
    _running(client, http_port, path="/broken")
    assert [p.healthy for p in _probe(client)] == [False]
    health = client.get("/v1/services/blog").json()["health"]
    assert health["probe_healthy"] is False and "HTTP 500" in health["probe_detail"]


def test_a_dead_port_is_recorded_unhealthy(client, dead_port):
    _running(client, dead_port)
    assert [p.healthy for p in _probe(client)] == [False]
    health = client.get("/v1/services/blog").json()["health"]
    assert health["probe_healthy"] is False and health["first_healthy_at"] is None
    assert client.get("/v1/services/routes").json()[0]["healthy"] is False


def test_a_tcp_check_needs_only_an_accepted_connection(client, http_port):
    _running(client, http_port, kind="tcp")
    assert [p.healthy for p in _probe(client)] == [True]


def test_services_without_a_reported_port_are_not_probed(client):
    register(client, P1, cpu=4)
    deploy(client, ALICE, service_spec("blog"))
    assert _probe(client) == []
