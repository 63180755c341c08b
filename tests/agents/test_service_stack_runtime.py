"""Deployments of several containers on the provider, against the real Docker engine: one
private network per deployment, names that resolve on it, and nothing reaching it from
another renter's containers."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from agents.provider.services import engine as eng
from agents.provider.services import fence
from agents.provider.services.store import HEALTHY
from protocol.services import ServiceSpec
from tests.agents import test_service_runtime as base

pytestmark = [pytest.mark.timeout(180), pytest.mark.integration]

make_runtime = base.make_runtime  # the runtime tests' fixture: one test agent, cleaned up
supervised = base.supervised  # ... with a supervisor (fast checks, short backoff)
PROBE = base.PROBE
wait_for, answers, exec_in = base.wait_for, base.answers, base.exec_in

API = ["python3", "-m", "http.server", "9000", "--directory", "/input"]


def stack(**kw: object) -> ServiceSpec:
    """web (public, port 8000) depends on api (port 9000 on the private network only)."""
    return base.spec(
        resources={"cpu": 0.75, "memory_mb": 128, "disk_mb": 8},
        alias="web",
        depends_on=["api"],
        containers=[
            {"name": "api", "image": base.PYTHON, "command": API,
             "resources": {"cpu": 0.25, "memory_mb": 64}},
        ],
        **kw,
    )  # fmt: skip


def member(client, rt, lease: str, name: str):
    found = client.containers.list(
        all=True,
        filters={
            "label": [
                f"{eng.AGENT_LABEL}={rt.agent_id}",
                f"{eng.SERVICE_LABEL}={lease}",
                f"{eng.CONTAINER_LABEL}={name}",
            ]
        },
    )
    assert len(found) == 1
    return found[0]


def test_containers_reach_each_other_by_name_and_only_the_main_port_is_published(
    make_runtime, docker_engine
):
    rt = make_runtime()
    rec = rt.deploy("a", stack(), {"probe.py": PROBE.encode(), "index.html": b"a\n"})
    wait_for(lambda: answers(rec.host_port), "the main container to answer on the host")

    code, out = exec_in(
        docker_engine, rt, "a", "python3", "/input/probe.py", "api:9000", "web:8000"
    )
    assert (code, out.split()) == (0, [b"open", b"open"])
    api = member(docker_engine, rt, "a", "api")
    assert api.attrs["NetworkSettings"]["Ports"] in ({}, None)  # nothing published
    assert api.attrs["HostConfig"]["Memory"] == (64 + 8) * 2**20  # its own cap (+ tmpfs /data)
    assert api.attrs["HostConfig"]["NanoCpus"] == 250_000_000
    assert (
        api.attrs["HostConfig"]["ReadonlyRootfs"] and api.attrs["Config"]["User"] == "65534:65534"
    )
    web = docker_engine.containers.get(rec.container_id)
    assert web.attrs["HostConfig"]["Memory"] == (128 - 64 + 8) * 2**20
    assert docker_engine.networks.get(rec.network).attrs["Internal"] is True


def test_each_container_has_its_own_folder_of_data(make_runtime, docker_engine):
    rt = make_runtime()
    rec = rt.deploy("a", stack(), {})
    exec_in(docker_engine, rt, "a", "sh", "-c", "echo web > /data/mine")
    code, out = member(docker_engine, rt, "a", "api").exec_run(["ls", "/data"])
    assert (code, out) == (0, b"")
    assert (Path(rec.data_area) / "output" / "web" / "mine").read_bytes() == b"web\n"


def test_another_renters_containers_cannot_resolve_or_reach_a_deployment(
    make_runtime, docker_engine
):
    rt = make_runtime(allow_network=True, publish_host="0.0.0.0")
    a = rt.deploy("a", stack(), {"index.html": b"a\n"})
    rt.deploy("b", stack(), {"probe.py": PROBE.encode()})  # another renter's deployment
    rt.deploy("c", base.spec(network=True), {"probe.py": PROBE.encode()})  # one with network
    wait_for(lambda: answers(a.host_port), "deployment a to answer on the host")
    nets = member(docker_engine, rt, "a", "api").attrs["NetworkSettings"]["Networks"]
    api_ip = nets[a.network]["IPAddress"]
    web_ip = docker_engine.containers.get(a.container_id).attrs["NetworkSettings"]["Networks"][
        a.network
    ]["IPAddress"]
    host_ip = socket.gethostbyname(socket.gethostname())
    targets = [f"{api_ip}:9000", f"{web_ip}:8000", f"{host_ip}:{a.host_port}"]
    for lease in ("b", "c"):
        code, out = exec_in(docker_engine, rt, lease, "python3", "/input/probe.py", *targets)
        assert (code, out.split()) == (0, [b"closed"] * 3), lease
    # b's own "api" is its own: the name never leads into a's network
    code, out = exec_in(docker_engine, rt, "b", "python3", "/input/probe.py", "api:9000")
    assert (code, out.split()) == (0, [b"open"])
    b_api = member(docker_engine, rt, "b", "api")
    code, out = exec_in(docker_engine, rt, "b", "getent", "hosts", "api")
    assert code == 0 and out.split()[0].decode() != api_ip
    assert b_api.attrs["NetworkSettings"]["Networks"].keys() != nets.keys()


def test_a_stopped_member_makes_the_deployment_not_running_and_restart_brings_it_back(
    make_runtime, docker_engine
):
    rt = make_runtime()
    rt.deploy("a", stack(), {})
    api = member(docker_engine, rt, "a", "api")
    api.kill()
    assert rt.running("a") == (False, "container api killed (exit code 137)")
    rt.restart("a")
    assert rt.running("a") == (True, "")
    assert member(docker_engine, rt, "a", "api").id == api.id


def test_reconcile_recreates_a_removed_member_and_stop_removes_every_trace(
    make_runtime, docker_engine
):
    rt = make_runtime()
    rec = rt.deploy("a", stack(), {})
    member(docker_engine, rt, "a", "api").remove(force=True)

    report = rt.reconcile(["a"])

    assert report.recreated == ["a"]
    assert member(docker_engine, rt, "a", "api").status == "running"
    assert rt.get("a").container_id == rec.container_id  # the main one was kept
    rt.stop("a")
    assert (
        docker_engine.containers.list(
            all=True, filters={"label": f"{eng.AGENT_LABEL}={rt.agent_id}"}
        )
        == []
    )
    assert docker_engine.networks.list(names=[rec.network]) == []


def test_logs_of_a_deployment_name_each_line_s_container(make_runtime, docker_engine):
    rt = make_runtime()
    rec = rt.deploy("a", stack(), {"probe.py": PROBE.encode(), "index.html": b"a\n"})
    wait_for(lambda: answers(rec.host_port), "the main container to answer on the host")
    exec_in(docker_engine, rt, "a", "python3", "/input/probe.py", "api:9000")

    lines = rt.logs_tail("a").decode().splitlines()

    assert any(line.startswith("api | ") and '"GET / HTTP/1.0" 200' in line for line in lines)
    assert any(line.startswith("web | ") and '"GET / HTTP/1.1" 200' in line for line in lines)


@pytest.mark.parametrize("outbound", [False, True], ids=["internal", "with-outbound-network"])
def test_a_deployments_containers_cannot_reach_the_providers_own_machine(
    make_runtime, docker_engine, outbound
):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        rt = make_runtime(allow_network=outbound)
        rec = rt.deploy("a", stack(network=outbound), {"probe.py": PROBE.encode()})
        assert docker_engine.networks.get(rec.network).attrs["Internal"] is not outbound
        gateway = docker_engine.networks.get(rec.network).attrs["IPAM"]["Config"][0]["Gateway"]
        host_ip = socket.gethostbyname(socket.gethostname())
        assert answers(port)  # the owner's program listens on every address
        targets = [f"{gateway}:{port}", f"{host_ip}:{port}", f"127.0.0.1:{port}"]
        code, out = exec_in(docker_engine, rt, "a", "python3", "/input/probe.py", *targets)
        assert (code, out.split()) == (0, [b"closed"] * 3)
        bridge = fence.bridge_of(rec.network)
        assert f"-i {bridge} -j DROP" in iptables_input()
        rt.stop("a")
        assert bridge not in iptables_input()
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def iptables_input() -> str:
    return subprocess.run(
        ["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True, check=True
    ).stdout


def test_the_supervisor_starts_a_member_that_exited_again(supervised, docker_engine):
    rt, _ = supervised()
    rt.deploy("a", stack(), {"index.html": b"a\n"})
    wait_for(lambda: (r := rt.get("a")) is not None and r.state == HEALTHY, "a healthy deployment")
    api = member(docker_engine, rt, "a", "api")
    api.kill()

    def back() -> bool:
        r = rt.get("a")
        return r is not None and r.restarts == 1 and r.state == HEALTHY

    wait_for(back, "the deployment to be restarted and healthy")
    assert rt.get("a").last_error == "container api killed (exit code 137)"
    api.reload()
    assert api.status == "running"


def test_following_a_deployments_logs_streams_every_containers_lines(make_runtime, docker_engine):
    rt = make_runtime()
    rec = rt.deploy("a", stack(), {"probe.py": PROBE.encode(), "index.html": b"a\n"})
    wait_for(lambda: answers(rec.host_port), "the main container to answer on the host")
    exec_in(docker_engine, rt, "a", "python3", "/input/probe.py", "api:9000")
    stream = rt.logs_follow("a", since=time.time() - 600)
    try:
        seen: set[str] = set()
        while seen != {"api", "web"}:
            name, _, text = next(stream).decode().partition(" | ")
            if "GET / HTTP" in text:
                seen.add(name)
    finally:
        stream.close()
