"""Services on the provider against the real Docker engine and the local job images."""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.errors import RefusedError
from agents.provider.services.engine import AGENT_LABEL, SERVICE_LABEL
from agents.provider.services.health import Backoff
from agents.provider.services.runtime import ServiceRuntime
from agents.provider.services.store import FAILED, HEALTHY, ServiceStore
from agents.provider.services.supervisor import Supervisor
from protocol.services import ServiceSpec

PYTHON = "dcloud/python:3.11"
integration = pytest.mark.integration
pytestmark = [pytest.mark.timeout(180), integration]

# From inside a container: GET / from each host:port; print "open" when an HTTP answer
# came back, else "closed" (a refused, dropped, timed-out or cut connection).
PROBE = (
    "import socket, sys\n"
    "for t in sys.argv[1:]:\n"
    "    h, p = t.rsplit(':', 1)\n"
    "    try:\n"
    "        s = socket.create_connection((h, int(p)), timeout=3)\n"
    "        s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
    "        print('open' if s.recv(5) == b'HTTP/' else 'closed')\n"
    "    except OSError:\n"
    "        print('closed')\n"
)


def spec(**kw: object) -> ServiceSpec:
    base: dict[str, object] = {
        "name": "web",
        "image": PYTHON,
        "command": ["python3", "-m", "http.server", "8000", "--directory", "/input"],
        "resources": {"cpu": 0.5, "memory_mb": 64, "disk_mb": 8},
        "port": 8000,
        "health": {"interval_s": 0.2, "start_period_s": 30, "timeout_s": 2},
        "max_rate_wei_per_s": 10**12,
        "origin": {"lat": 48.14, "lon": 11.58},
    }
    return ServiceSpec.model_validate({**base, **kw})


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(0.1)


def get(port: int, path: str = "/", host: str = "127.0.0.1") -> bytes:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        return bytes(r.read())


def answers(port: int, path: str = "/") -> bool:
    try:
        get(port, path)
    except OSError:
        return False
    return True


@pytest.fixture
def make_runtime(docker_engine, job_images, tmp_path):
    """Runtimes of one test agent over one store; everything is removed afterwards."""
    agent_id = f"test-{uuid.uuid4().hex[:8]}"
    first = random.Random(agent_id).randrange(20000, 60000, 100)
    made: list[ServiceRuntime] = []

    def make(**kw: object) -> ServiceRuntime:
        options: dict[str, object] = {
            "client": docker_engine,
            "store": ServiceStore(tmp_path / "services.db"),
            "work_root": tmp_path / "services",
            "agent_id": agent_id,
            "public_host": "127.0.0.1",
            "publish_host": "127.0.0.1",
            "ports": range(first, first + 100),
            **kw,
        }
        rt = ServiceRuntime(**options)  # type: ignore[arg-type]
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()
    if made:
        made[-1].reconcile([])
        for rt in made:
            rt.store.close()


@pytest.fixture
def supervised(make_runtime):
    """A runtime with a running supervisor (fast checks, short backoff)."""
    sups: list[Supervisor] = []

    def make(**kw: object) -> tuple[ServiceRuntime, Supervisor]:
        rt = make_runtime(**kw)
        sup = Supervisor(rt, backoff=Backoff(base_s=0.2, cap_s=2), tick_s=0.1)
        sup.start()
        sups.append(sup)
        return rt, sup

    yield make
    for sup in sups:
        sup.stop()


def containers(client, agent_id: str, lease: str) -> list:
    labels = [f"{AGENT_LABEL}={agent_id}", f"{SERVICE_LABEL}={lease}"]
    return client.containers.list(all=True, filters={"label": labels})


def exec_in(client, rt: ServiceRuntime, lease: str, *cmd: str) -> tuple[int, bytes]:
    rec = rt.get(lease)
    assert rec is not None
    code, out = client.containers.get(rec.container_id).exec_run(list(cmd))
    return int(code), bytes(out)


def test_service_is_served_on_its_host_port_with_its_url_in_the_environment(make_runtime):
    rt = make_runtime()
    rec = rt.deploy(
        "l1",
        spec(command=["sh", "-c", "env > /data/env; exec python3 -m http.server 8000"]),
        {"hello.txt": b"hi\n"},
    )
    wait_for(lambda: answers(rec.host_port, "/env"), "the service to answer")
    env = get(rec.host_port, "/env").decode()
    assert f"DCLOUD_SERVICE_URL=http://127.0.0.1:{rec.host_port}\n" in env
    assert "DCLOUD_SERVICE_NAME=web\n" in env and "PORT=8000\n" in env
    assert f"DCLOUD_SERVICE_PORTS=8000:{rec.host_port}\n" in env
    code, out = exec_in(rt.client, rt, "l1", "cat", "/input/hello.txt")
    assert (code, out) == (0, b"hi\n")


def test_deploy_twice_keeps_one_container_and_port(make_runtime, docker_engine):
    rt = make_runtime()
    first = rt.deploy("l1", spec(), {})
    again = rt.deploy("l1", spec(), {})
    assert (again.container_id, again.host_port) == (first.container_id, first.host_port)
    assert len(containers(docker_engine, rt.agent_id, "l1")) == 1


def test_killed_service_is_restarted_and_healthy_again(supervised, docker_engine):
    rt, _ = supervised()
    rec = rt.deploy("l1", spec(), {"index.html": b"up\n"})
    wait_for(lambda: (rt.get("l1") or rec).state == HEALTHY, "the service to be healthy")
    docker_engine.containers.get(rec.container_id).kill()

    wait_for(
        lambda: (r := rt.get("l1")) is not None and r.restarts == 1 and r.state == HEALTHY,
        "the service to be restarted and healthy",
    )
    after = rt.get("l1")
    assert after is not None
    assert after.container_id == rec.container_id and after.host_port == rec.host_port
    assert after.last_error == "killed (exit code 137)"
    assert after.healthy_since is not None and after.uptime() >= 0
    assert get(rec.host_port) == b"up\n"


def test_failing_health_checks_make_a_service_unhealthy_then_restart_it(supervised):
    rt, _ = supervised()
    failing = spec(
        health={"path": "/missing", "interval_s": 0.2, "start_period_s": 0, "restart_after": 3}
    )
    rt.deploy("l1", failing, {})
    wait_for(
        lambda: (
            (r := rt.get("l1")) is not None
            and r.restarts >= 1
            and r.last_error == "failed 3 health checks in a row: GET /missing answered 404"
        ),
        "a restart for failed checks",
    )


def test_reconcile_after_an_agent_restart_keeps_the_container_and_port(make_runtime, docker_engine):
    rt = make_runtime()
    rec = rt.deploy("l1", spec(), {"index.html": b"up\n"})
    rt.close()  # the agent stops; the container keeps running
    assert not answers(rec.host_port)

    restarted = make_runtime()
    first = restarted.reconcile(["l1"])
    second = restarted.reconcile(["l1"])

    assert (first.kept, second.kept) == (["l1"], ["l1"])
    (container,) = containers(docker_engine, rt.agent_id, "l1")
    assert container.id == rec.container_id
    wait_for(lambda: answers(rec.host_port), "the same host port to serve again")
    assert get(rec.host_port) == b"up\n"


def test_reconcile_starts_a_stopped_service_once_and_removes_ended_leases(
    make_runtime, docker_engine, tmp_path
):
    rt = make_runtime()
    kept = rt.deploy("live", spec(), {"index.html": b"up\n"})
    ended = rt.deploy("ended", spec(network=True), {})
    docker_engine.containers.get(kept.container_id).kill()
    rt.close()

    restarted = make_runtime()
    first = restarted.reconcile(["live", "new"])
    second = restarted.reconcile(["live", "new"])

    assert (first.started, first.removed, first.unknown) == (["live"], ["ended"], ["new"])
    assert (second.kept, second.started, second.removed) == (["live"], [], [])
    (container,) = containers(docker_engine, rt.agent_id, "live")
    assert container.id == kept.container_id
    assert containers(docker_engine, rt.agent_id, "ended") == []
    assert restarted.get("ended") is None
    assert not Path(ended.data_area).exists()
    wait_for(lambda: answers(kept.host_port), "the restarted service to answer")


def test_reconcile_recreates_a_removed_container_keeping_its_data(make_runtime, docker_engine):
    rt = make_runtime()
    rec = rt.deploy("l1", spec(command=["python3", "-m", "http.server", "8000"]), {})
    code, _ = exec_in(docker_engine, rt, "l1", "sh", "-c", "echo kept > /data/f")
    assert code == 0
    docker_engine.containers.get(rec.container_id).remove(force=True)

    report = rt.reconcile(["l1"])

    assert report.recreated == ["l1"]
    wait_for(lambda: answers(rec.host_port, "/f"), "the new container to serve /data")
    assert get(rec.host_port, "/f") == b"kept\n"


def test_two_renters_services_cannot_reach_each_other(make_runtime, docker_engine):
    rt = make_runtime(allow_network=True, publish_host="0.0.0.0")
    a = rt.deploy("a", spec(network=True), {"probe.py": PROBE.encode()})
    b = rt.deploy("b", spec(network=True), {"index.html": b"b\n"})
    rt.deploy("c", spec(), {"probe.py": PROBE.encode()})  # no network at all
    wait_for(lambda: answers(b.host_port), "service b to answer on the host")
    ip = {
        lease: next(iter(docker_engine.containers.get(r.container_id).attrs["NetworkSettings"][
            "Networks"
        ].values()))
        for lease, r in (("a", a), ("b", b))
    }  # fmt: skip
    host_ip = socket.gethostbyname(socket.gethostname())
    targets = [
        f"{ip['a']['IPAddress']}:8000",  # a itself: shows the probe sees an open port
        f"{ip['b']['IPAddress']}:8000",  # b's container
        f"{ip['a']['Gateway']}:{b.host_port}",  # b's published port via a's gateway
        f"{host_ip}:{b.host_port}",  # and via the host's own address
    ]
    code, out = exec_in(docker_engine, rt, "a", "python3", "/input/probe.py", *targets)
    assert (code, out.split()) == (0, [b"open", b"closed", b"closed", b"closed"])
    code, out = exec_in(docker_engine, rt, "c", "python3", "/input/probe.py", *targets[1:])
    assert (code, out.split()) == (0, [b"closed", b"closed", b"closed"])
    code, out = exec_in(docker_engine, rt, "c", "ls", "/sys/class/net")
    assert out.split() == [b"lo"]


def test_service_asking_for_network_gets_none_unless_the_owner_allows(make_runtime):
    rt = make_runtime(allow_network=False)
    rec = rt.deploy("l1", spec(network=True), {})
    assert rec.network == ""
    assert exec_in(rt.client, rt, "l1", "ls", "/sys/class/net") == (0, b"lo\n")


def test_data_is_limited_to_disk_mb_and_outlives_a_restart(supervised, docker_engine):
    rt, _ = supervised()
    rec = rt.deploy("l1", spec(resources={"cpu": 0.5, "memory_mb": 64, "disk_mb": 4}), {})
    code, out = exec_in(
        docker_engine, rt, "l1", "sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=8"
    )
    assert code != 0 and b"No space left on device" in out
    exec_in(docker_engine, rt, "l1", "sh", "-c", "rm /data/big; echo kept > /data/f")
    wait_for(lambda: (rt.get("l1") or rec).state == HEALTHY, "the service to be healthy")
    docker_engine.containers.get(rec.container_id).kill()
    wait_for(
        lambda: (r := rt.get("l1")) is not None and r.restarts == 1 and r.state == HEALTHY,
        "the restart",
    )
    assert exec_in(docker_engine, rt, "l1", "cat", "/data/f") == (0, b"kept\n")


def test_root_is_read_only_and_the_service_is_not_root(make_runtime):
    rt = make_runtime()
    rt.deploy("l1", spec(), {})
    code, out = exec_in(rt.client, rt, "l1", "touch", "/etc/x")
    assert code != 0 and b"Read-only file system" in out
    assert exec_in(rt.client, rt, "l1", "id", "-u")[1] == b"65534\n"
    code, out = exec_in(rt.client, rt, "l1", "grep", "CapEff", "/proc/self/status")
    assert out.split() == [b"CapEff:", b"0000000000000000"]


def test_stop_removes_container_network_data_and_record(make_runtime, docker_engine):
    rt = make_runtime(allow_network=True)
    rec = rt.deploy("l1", spec(network=True), {})
    wait_for(lambda: answers(rec.host_port), "the service to answer")

    rt.stop("l1")

    assert containers(docker_engine, rt.agent_id, "l1") == []
    assert docker_engine.networks.list(names=[rec.network]) == []
    assert not Path(rec.data_area).exists()
    assert rt.get("l1") is None
    assert not answers(rec.host_port)
    rt.stop("l1")  # again: nothing left to do


def test_logs_tail_and_follow(make_runtime):
    rt = make_runtime()
    rec = rt.deploy("l1", spec(), {"index.html": b"up\n"})
    wait_for(lambda: answers(rec.host_port), "the service to answer")
    got: list[bytes] = []
    stop = threading.Event()

    def follow() -> None:
        got.extend(rt.logs_follow("l1", stop=stop, max_bytes=4096))

    follower = threading.Thread(target=follow)
    follower.start()
    wait_for(
        lambda: (
            (answers(rec.host_port, "/followed") or True) and any(b"/followed" in x for x in got)
        ),
        "the followed line",
    )
    stop.set()
    follower.join(timeout=30)
    assert not follower.is_alive()
    assert all(line.endswith(b"\n") for line in got)
    assert b"GET /followed" in rt.logs_tail("l1", lines=50)
    assert len(rt.logs_tail("l1", lines=50, max_bytes=10)) == 10


def test_missing_image_is_refused_and_leaves_nothing(make_runtime, docker_engine):
    rt = make_runtime()
    with pytest.raises(RefusedError, match="does not have the image"):
        rt.deploy("l1", spec(image="dcloud/absent:0"), {})
    assert rt.get("l1") is None
    assert containers(docker_engine, rt.agent_id, "l1") == []


def test_folder_data_area_past_its_limit_stops_the_service_for_good(supervised, docker_engine):
    rt, _ = supervised(tmpfs_max_mb=0)
    rec = rt.deploy("l1", spec(resources={"cpu": 0.5, "memory_mb": 64, "disk_mb": 4}), {})
    assert rec.area_kind == "folder"
    # a plain folder does not stop the write; the supervisor notices
    exec_in(docker_engine, rt, "l1", "sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=6")

    wait_for(lambda: (r := rt.get("l1")) is not None and r.state == FAILED, "the service to fail")
    after = rt.get("l1")
    assert after is not None and after.last_error == "/data grew past its 4 MB; stopped"
    assert after.restarts == 0
    assert docker_engine.containers.get(rec.container_id).status == "exited"


def test_reconcile_after_a_reboot_makes_an_empty_data_area(make_runtime, docker_engine):
    rt = make_runtime()
    rec = rt.deploy("l1", spec(command=["python3", "-m", "http.server", "8000"]), {})
    exec_in(docker_engine, rt, "l1", "sh", "-c", "echo gone > /data/f")
    docker_engine.containers.get(rec.container_id).remove(force=True)
    subprocess.run(["umount", str(Path(rec.data_area) / "output")], check=True)  # as a reboot

    report = rt.reconcile(["l1"])

    assert report.recreated == ["l1"]
    after = rt.get("l1")
    assert after is not None and (after.area_kind, after.last_error) == ("tmpfs", "/data was lost")
    assert exec_in(docker_engine, rt, "l1", "ls", "/data") == (0, b"")
    code, out = exec_in(
        docker_engine, rt, "l1", "sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=20"
    )
    assert code != 0 and b"No space left on device" in out
