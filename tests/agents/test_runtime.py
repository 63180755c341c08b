"""The provider's Docker runtime against the real engine and the local job images."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from agents.errors import AgentError, RefusedError
from agents.provider.runtime import LOG_CAP, DockerRuntime, RunLimits, RunResult, _timestamp

BUSYBOX = "dcloud/busybox:1"
PYTHON = "dcloud/python:3.11"
ROOT = Path(__file__).resolve().parents[2]

integration = pytest.mark.integration
pytestmark = pytest.mark.timeout(120)


def limits(**kw: object) -> RunLimits:
    base: dict[str, object] = {"cpu": 1.0, "memory_mb": 64, "disk_mb": 16, "time_limit_s": 30}
    return RunLimits(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
def make_runtime(docker_engine, job_images, tmp_path):
    """Runtimes of one test agent; every container they leave is removed afterwards."""
    agent_id = f"test-{uuid.uuid4().hex[:8]}"
    made: list[DockerRuntime] = []

    def make(**kw: object) -> DockerRuntime:
        rt = DockerRuntime(
            client=docker_engine, work_root=tmp_path / "work", agent_id=agent_id, **kw
        )
        made.append(rt)
        return rt

    yield make
    for key in made[0].orphans() if made else []:
        made[0].kill(key)


@pytest.fixture
def runtime(make_runtime) -> DockerRuntime:
    return make_runtime()


def sh(rt: DockerRuntime, script: str, *, inputs=None, **kw: object) -> RunResult:
    key = f"job-{uuid.uuid4().hex[:8]}"
    try:
        return rt.run(
            key,
            image=BUSYBOX,
            command=["sh", "-c", script],
            env={},
            inputs=inputs or {},
            limits=limits(**kw),
        )
    finally:
        rt.cleanup(key)


@integration
def test_files_written_to_output_are_collected(runtime):
    r = sh(runtime, "echo hi > a.txt; mkdir d; echo x > /output/d/b; echo to the log")
    assert (r.exit_code, r.error, r.oom_killed, r.timed_out) == (0, "", False, False)
    assert r.outputs == {"a.txt": b"hi\n", "d/b": b"x\n"}
    assert r.logs == b"to the log\n"
    assert 0 < r.started_at <= r.finished_at


@integration
def test_nonzero_exit_code_is_reported(runtime):
    r = sh(runtime, "echo failing >&2; exit 3")
    assert (r.exit_code, r.error, r.logs) == (3, "", b"failing\n")


@integration
def test_memory_hog_is_oom_killed(runtime):
    r = sh(runtime, "dd if=/dev/zero of=/dev/null bs=256M count=1", memory_mb=16)
    assert r.oom_killed
    assert r.exit_code == 137
    assert "memory limit 16 MB exceeded (OOM)" in r.error


@integration
def test_job_over_its_time_limit_is_killed(runtime):
    r = sh(runtime, "echo sleeping; sleep 60", time_limit_s=2)
    assert r.timed_out and r.exit_code == 137
    assert r.error == "killed after the 2 s time limit"
    assert r.logs == b"sleeping\n"


@integration
@pytest.mark.parametrize("tmpfs_max_mb", [256, 0], ids=["tmpfs", "folder"])
def test_writing_past_the_work_area_is_an_error(make_runtime, tmpfs_max_mb):
    rt = make_runtime(tmpfs_max_mb=tmpfs_max_mb)
    r = sh(rt, "dd if=/dev/zero of=/output/big bs=1M count=20", disk_mb=4)
    assert "output exceeded the 4 MB work area" in r.error
    assert r.outputs == {}


@integration
def test_folder_work_area_overflow_kills_the_job_before_its_time_limit(make_runtime):
    rt = make_runtime(tmpfs_max_mb=0)
    r = sh(rt, "dd if=/dev/zero of=/output/big bs=1M count=20; sleep 60", disk_mb=4)
    assert not r.timed_out and r.exit_code == 137
    assert r.error == "output exceeded the 4 MB work area"


@integration
def test_tmpfs_work_area_does_not_use_the_jobs_memory(runtime):
    r = sh(runtime, "dd if=/dev/zero of=/output/f bs=1M count=12", memory_mb=8, disk_mb=16)
    assert (r.exit_code, r.error, r.oom_killed) == (0, "", False)
    assert len(r.outputs["f"]) == 12 * 2**20


@integration
def test_network_is_disabled_unless_allowed(runtime):
    assert sh(runtime, "ls /sys/class/net").logs == b"lo\n"
    r = sh(runtime, "wget -q -T 2 -O /dev/null http://172.17.0.1:9/; echo rc=$?")
    assert b"rc=0" not in r.logs
    assert b"eth0" in sh(runtime, "ls /sys/class/net", network=True).logs


@integration
def test_root_file_system_is_read_only(runtime):
    r = sh(runtime, "touch /etc/x")
    assert r.exit_code != 0
    assert b"Read-only file system" in r.logs


@integration
def test_job_runs_as_uid_65534(runtime):
    assert sh(runtime, "id -u; id -g").logs == b"65534\n65534\n"


@integration
def test_job_has_no_capabilities(runtime):
    r = sh(
        runtime, "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; grep NoNewPrivs /proc/self/status"
    )
    assert r.logs.split() == [
        b"CapPrm:", b"0000000000000000", b"CapEff:", b"0000000000000000",
        b"CapBnd:", b"0000000000000000", b"NoNewPrivs:", b"1",
    ]  # fmt: skip


@integration
def test_fork_bomb_is_stopped_by_the_pids_limit(runtime):
    r = sh(runtime, "for i in $(seq 100); do sleep 30 & done; echo all forked", pids=20)
    assert b"can't fork" in r.logs
    assert b"all forked" not in r.logs


@integration
def test_cgroup_limits_and_low_cpu_priority_are_applied(runtime):
    r = sh(
        runtime,
        "cd /sys/fs/cgroup; cat cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us"
        " memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max",
        cpu=0.5,
        memory_mb=48,
        disk_mb=16,
        pids=40,
    )
    values = [int(x) for x in r.logs.split()]
    assert values[0] == 2  # the lowest CPU weight
    assert values[1] / values[2] == 0.5
    assert values[3] == values[4] == (48 + 16) * 2**20  # memory + the tmpfs work area, no swap
    assert values[5] == 40


@integration
def test_inputs_are_readable_and_read_only(runtime):
    r = sh(
        runtime,
        "cat /input/data/in.txt; echo x >> /input/data/in.txt || echo refused;"
        " touch /input/new || echo refused",
        inputs={"data/in.txt": b"hello\n"},
    )
    assert r.logs.startswith(b"hello\nrefused\nrefused\n")  # stdout, then stderr


@integration
def test_unsafe_input_path_is_refused(runtime):
    with pytest.raises(RefusedError, match="not a relative path inside /input"):
        sh(runtime, "true", inputs={"../escape": b""})


@integration
def test_python_image_runs_python(runtime):
    r = runtime.run(
        "py",
        image=PYTHON,
        command=["python3", "-c", "import sys; open('v', 'w').write(sys.version[:4])"],
        env={"A": "1"},
        inputs={},
        limits=limits(),
    )
    runtime.cleanup("py")
    assert (r.exit_code, r.error, r.outputs) == (0, "", {"v": b"3.11"})


@integration
def test_environment_reaches_the_job(runtime):
    r = runtime.run(
        "env", image=BUSYBOX, command=["sh", "-c", 'echo "$GREETING"'], env={"GREETING": "hi"},
        inputs={}, limits=limits(),
    )  # fmt: skip
    runtime.cleanup("env")
    assert r.logs == b"hi\n"


@integration
def test_missing_image_is_refused_with_the_offered_images(runtime):
    with pytest.raises(RefusedError, match=r"does not have the image 'nope:1'.*dcloud/busybox:1"):
        runtime.run("x", image="nope:1", command=["true"], env={}, inputs={}, limits=limits())
    assert runtime.orphans() == []


@integration
def test_command_that_cannot_start_is_a_failed_run(runtime):
    r = runtime.run(
        "bad", image=BUSYBOX, command=["/no/such/program"], env={}, inputs={}, limits=limits()
    )
    runtime.cleanup("bad")
    assert r.exit_code != 0
    assert r.error.startswith("the container could not start")


@integration
def test_logs_are_stdout_then_stderr_each_keeping_its_last_bytes(runtime):
    r = sh(
        runtime, "echo E1 >&2; head -c 3000000 /dev/zero | tr '\\0' a; echo; echo END; echo E2 >&2"
    )
    assert len(r.logs) == LOG_CAP // 2 + len(b"E1\nE2\n")
    assert r.logs.endswith(b"a\nEND\nE1\nE2\n")


@integration
def test_images_lists_the_offered_images(runtime, job_images):
    assert set(job_images) <= set(runtime.images())
    assert runtime.has_image(BUSYBOX)
    assert not runtime.has_image("dcloud/absent:0")
    assert not runtime.has_image("Not A Valid Name")


def _abandon_a_running_job(work_root: Path, agent_id: str, key: str, client) -> None:
    """Start a job in another process and SIGKILL it while the job waits for /tmp/go."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from agents.provider.runtime import DockerRuntime, RunLimits
        rt = DockerRuntime(work_root=Path({str(work_root)!r}), agent_id={agent_id!r})
        rt.run({key!r}, image={BUSYBOX!r}, env={{}}, inputs={{}},
               command=["sh", "-c", "echo waiting; until [ -e /tmp/go ]; do sleep 0.05; done;"
                                    " echo done > /output/r"],
               limits=RunLimits(cpu=1, memory_mb=64, disk_mb=16, time_limit_s=60))
        """
    )
    agent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        give_up = time.monotonic() + 60
        while not client.containers.list(filters={"label": f"dcloud.job={key}"}):
            assert agent.poll() is None, "the agent process exited before its job started"
            assert time.monotonic() < give_up, "the job's container never started"
            time.sleep(0.05)
    finally:
        agent.kill()
        agent.wait(timeout=30)


@integration
def test_restarted_agent_resumes_and_collects_a_running_job(make_runtime, tmp_path, docker_engine):
    agent_id = make_runtime().agent_id
    _abandon_a_running_job(tmp_path / "work", agent_id, "77", docker_engine)

    restarted = make_runtime()
    assert restarted.orphans() == ["77"]
    (container,) = docker_engine.containers.list(filters={"label": "dcloud.job=77"})
    container.exec_run(["touch", "/tmp/go"])
    r = restarted.resume("77", limits=limits(time_limit_s=60), deadline=time.time() + 60)

    assert r is not None
    assert (r.exit_code, r.error, r.outputs, r.logs) == (0, "", {"r": b"done\n"}, b"waiting\n")
    restarted.kill("77")
    assert restarted.orphans() == []
    assert list((tmp_path / "work").iterdir()) == []


@integration
def test_resume_kills_a_job_at_its_deadline(make_runtime, tmp_path, docker_engine):
    agent_id = make_runtime().agent_id
    _abandon_a_running_job(tmp_path / "work", agent_id, "78", docker_engine)

    r = make_runtime().resume("78", limits=limits(time_limit_s=60), deadline=time.time() + 1)

    assert r is not None and r.timed_out
    assert r.error == "killed at the job's deadline"


@integration
def test_resume_collects_a_job_that_finished_while_the_agent_was_down(
    make_runtime, tmp_path, docker_engine
):
    agent_id = make_runtime().agent_id
    _abandon_a_running_job(tmp_path / "work", agent_id, "79", docker_engine)
    (container,) = docker_engine.containers.list(filters={"label": "dcloud.job=79"})
    container.exec_run(["touch", "/tmp/go"])
    container.wait(timeout=30)

    r = make_runtime().resume("79", limits=limits(time_limit_s=60), deadline=time.time() - 1)

    assert r is not None and not r.timed_out
    assert (r.exit_code, r.error, r.outputs) == (0, "", {"r": b"done\n"})


@integration
def test_kill_stops_a_running_job_and_its_run_call_says_so(runtime, docker_engine, tmp_path):
    outcome: list[BaseException | RunResult] = []

    def target() -> None:
        try:
            outcome.append(
                runtime.run(
                    "doomed", image=BUSYBOX, command=["sleep", "60"], env={}, inputs={},
                    limits=limits(),
                )
            )  # fmt: skip
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    give_up = time.monotonic() + 60
    while not docker_engine.containers.list(filters={"label": "dcloud.job=doomed"}):
        assert time.monotonic() < give_up, "the job's container never started"
        time.sleep(0.05)
    runtime.kill("doomed")
    worker.join(timeout=60)

    assert isinstance(outcome[0], AgentError)
    assert "was removed while it ran" in str(outcome[0])
    assert runtime.orphans() == []
    assert list((tmp_path / "work").iterdir()) == []


@integration
def test_resume_without_a_container_returns_none_and_kill_is_safe(runtime):
    assert runtime.resume("absent", limits=limits(), deadline=time.time() + 5) is None
    runtime.kill("absent")
    runtime.cleanup("absent")


@integration
def test_orphans_are_per_agent(make_runtime, docker_engine, tmp_path):
    mine = make_runtime()
    other = DockerRuntime(
        client=docker_engine, work_root=tmp_path / "other", agent_id=f"other-{uuid.uuid4().hex[:8]}"
    )
    r = mine.run("kept", image=BUSYBOX, command=["true"], env={}, inputs={}, limits=limits())
    assert r.exit_code == 0
    assert mine.orphans() == ["kept"]
    assert other.orphans() == []
    mine.cleanup("kept")
    assert mine.orphans() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21T18:56:01.123456789Z", 1795287361.123456),
        ("2026-11-21T18:56:01Z", 1795287361.0),
        ("2026-11-21T19:56:01.5+01:00", 1795287361.5),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
    ],
)
def test_docker_timestamps_are_parsed(value, expected):
    assert _timestamp(value) == expected
