"""The renter gateway (`dcloud file serve`) as a process, over real storage-node processes."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agents.storage.files.manifest import RenterStore
from tests.agents.storage.network import (
    ROOT,
    Network,
    Node,
    _stop,
    _wait_http,
    account,
    env,
    free_port,
    write_keystore,
)

pytestmark = pytest.mark.integration

SERVE = [sys.executable, "-m", "agents", "file", "serve"]


class Gateway:
    """`dcloud file serve` for a renter in `home`, on a free loopback port."""

    def __init__(self, home: Path, *, market: str, renter: str, args: tuple[str, ...] = ()):
        if not (home / "key.json").exists():
            write_keystore(home / "key.json", account(renter))
        self.address = account(renter).address
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "gateway.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*SERVE, f"--home={home}", "--marketplace", market, f"--port={self.port}", *args],
                env=env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"{self.url}/v1/info", self.proc, "gateway")
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def upload(self, filename: str, data: bytes, **form: str) -> httpx.Response:
        return self.http.post("/v1/files", files={"file": (filename, data)}, data=form)

    def stop(self) -> None:
        self.http.close()
        _stop(self.proc)


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def used_bytes(network: Network) -> int:
    return sum(n.health()["used_bytes"] for n in network.nodes if n.running)


def holders(network: Network, gateway: Gateway, name: str) -> list[Node]:
    """The nodes holding the first segment's shards, read from the renter's manifest."""
    store = RenterStore(gateway.log.parent, account("gateway-renter"))
    return [network.by_address(s.node) for s in store.find(name).segments[0].shards]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, network: Network) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("gateway-renter")
    gw = Gateway(
        home,
        market=network.market.url,
        renter="gateway-renter",
        args=("--k", "4", "--n", "6", "--health-every", "1"),
    )
    try:
        yield gw
    finally:
        gw.stop()


def test_upload_list_download_round_trip_gives_the_same_bytes(gateway):
    data = blob(300_000, 1)
    r = gateway.upload("round trip.bin", data)
    assert r.status_code == 201, r.text
    stored = r.json()
    assert (stored["name"], stored["size"], stored["k"], stored["n"]) == (
        "round trip.bin",
        300_000,
        4,
        6,
    )
    assert stored["health"]["state"] == "healthy" and stored["health"]["min_healthy"] == 6

    listed = {f["name"]: f for f in gateway.http.get("/v1/files").json()["files"]}
    assert listed["round trip.bin"]["segments"] == 1
    assert listed["round trip.bin"]["health"]["state"] == "healthy"

    got = gateway.http.get("/v1/files/round trip.bin")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"].startswith("attachment")


def test_upload_takes_name_and_code_from_the_form(gateway):
    r = gateway.upload("ignored.txt", b"small", name="notes/today.txt", k="2", n="3")
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["k"], r.json()["n"]) == ("notes/today.txt", 2, 3)
    assert gateway.http.get("/v1/files/notes/today.txt").content == b"small"
    health = gateway.http.get("/v1/files/notes/today.txt/health").json()
    assert health["segments"] == [{"index": 0, "healthy": 3, "problems": {}}]


def test_health_shows_lost_shards_and_repair_rebuilds_them(gateway, network):
    assert gateway.upload("fragile.bin", blob(50_000, 2)).status_code == 201
    down = holders(network, gateway, "fragile.bin")[:2]
    with network.down(down):
        health = gateway.http.get("/v1/files/fragile.bin/health").json()
        assert (health["state"], health["min_healthy"], health["degraded_segments"]) == (
            "degraded",
            4,
            1,
        )
        assert sorted(health["segments"][0]["problems"].values()) == ["unreachable"] * 2

        repaired = gateway.http.post("/v1/files/fragile.bin/repair")
        assert repaired.status_code == 200, repaired.text
        body = repaired.json()
        assert body["shards_rebuilt"] == 2 and body["failures"] == []
        assert body["health"]["state"] == "healthy" and body["health"]["min_healthy"] == 6
        listed = {f["name"]: f for f in gateway.http.get("/v1/files").json()["files"]}
        assert listed["fragile.bin"]["health"]["state"] == "healthy"
        assert gateway.http.get("/v1/files/fragile.bin").content == blob(50_000, 2)


def test_fewer_than_k_shards_reachable_is_a_503_that_says_so(gateway, network):
    assert gateway.upload("scarce.bin", blob(20_000, 3)).status_code == 201
    with network.down(holders(network, gateway, "scarce.bin")[:3]):
        r = gateway.http.get("/v1/files/scarce.bin")
        assert r.status_code == 503
        assert r.json()["error"] == "NotEnoughShardsError"
        assert "only 3 intact shards could be fetched and 4 are needed" in r.json()["detail"]
        health = gateway.http.get("/v1/files/scarce.bin/health").json()
        assert (health["state"], health["min_healthy"]) == ("unreadable", 3)


def test_delete_frees_the_nodes_space_and_forgets_the_file(gateway, network):
    before = used_bytes(network)
    assert gateway.upload("doomed.bin", blob(100_000, 4)).status_code == 201
    assert used_bytes(network) > before
    r = gateway.http.delete("/v1/files/doomed.bin")
    assert r.status_code == 200, r.text
    assert (r.json()["deleted"], r.json()["failed"]) == (6, 0)
    assert used_bytes(network) == before
    assert "doomed.bin" not in {f["name"] for f in gateway.http.get("/v1/files").json()["files"]}
    assert gateway.http.get("/v1/files/doomed.bin").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/files/ghost"),
        ("DELETE", "/v1/files/ghost"),
        ("GET", "/v1/files/ghost/health"),
        ("POST", "/v1/files/ghost/repair"),
    ],
)
def test_a_missing_file_is_a_404_that_names_it(gateway, method, path):
    r = gateway.http.request(method, path)
    assert r.status_code == 404
    assert r.json() == {
        "detail": "no stored file named 'ghost'; GET /v1/files lists them",
        "error": "FileMissingError",
    }


def test_bad_uploads_are_422_with_the_reason(gateway):
    no_file = gateway.http.post("/v1/files", data={"name": "x"})
    assert no_file.status_code == 422
    assert no_file.json() == {"detail": "file: Field required", "error": "ValidationError"}
    bad_code = gateway.upload("a.bin", b"abc", k="6", n="6")
    assert bad_code.status_code == 422 and "1 <= k < n" in bad_code.json()["detail"]
    bad_name = gateway.upload("a.bin", b"abc", name="tab\there")
    assert bad_name.status_code == 422 and "control characters" in bad_name.json()["detail"]
    not_a_number = gateway.upload("a.bin", b"abc", k="many")
    assert not_a_number.status_code == 422 and not_a_number.json()["detail"].startswith("k: ")


def test_a_name_stored_already_is_a_409(gateway):
    assert gateway.upload("twice.txt", b"one").status_code == 201
    again = gateway.upload("twice.txt", b"two")
    assert again.status_code == 409 and again.json()["error"] == "NameTakenError"
    assert gateway.http.get("/v1/files/twice.txt").content == b"one"


def test_a_file_the_nodes_cannot_hold_is_refused_with_the_reason(tmp_path):
    small = Network(tmp_path / "small", nodes=4, quota=10**6)  # 1 MB each
    gw = Gateway(tmp_path / "renter", market=small.market.url, renter="quota-renter")
    try:
        r = gw.upload("big.bin", blob(3 * 10**6, 5), k="2", n="4")  # 1.5 MB shards
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "RefusedError"
        assert "online storage nodes have" in r.json()["detail"]
        assert "4 distinct nodes are needed" in r.json()["detail"]
        assert gw.http.get("/v1/files").json() == {"files": [], "uploads": []}
    finally:
        gw.stop()
        small.stop()


def test_only_the_dashboard_origin_and_loopback_names_get_an_answer(gateway, network):
    dashboard = network.market.url
    ok = gateway.http.get("/v1/files", headers={"origin": dashboard})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == dashboard
    preflight = gateway.http.options(
        "/v1/files/x",
        headers={
            "origin": dashboard,
            "access-control-request-method": "DELETE",
            "access-control-request-private-network": "true",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-private-network"] == "true"
    other = gateway.http.post("/v1/files/x/repair", headers={"origin": "http://evil.example"})
    assert other.status_code == 403 and "--allow-origin http://evil.example" in other.text
    rebound = gateway.http.get("/v1/files", headers={"host": f"evil.example:{gateway.port}"})
    assert rebound.status_code == 403 and rebound.json()["error"] == "ForbiddenError"


def test_info_names_the_renter_and_the_default_code(gateway, network):
    info = gateway.http.get("/v1/info").json()
    assert info["address"] == gateway.address
    assert (info["marketplace"], info["k"], info["n"]) == (network.market.url, 4, 6)


def test_a_port_in_use_is_a_one_line_error(gateway, tmp_path):
    home = tmp_path / "renter"
    write_keystore(home / "key.json", account("gateway-renter"))
    r = subprocess.run(
        [*SERVE, "--home", str(home), "--port", str(gateway.port)],
        env=env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{gateway.port}" in r.stderr
    assert "Traceback" not in r.stderr
