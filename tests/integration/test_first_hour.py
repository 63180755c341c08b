"""A renter's and a provider's first hour, from the README alone.

The README's "Your first hour" blocks are read from the README itself and run as a new
user would run them (a shell, `dcloud` on the PATH, an empty home folder) against a devnet
started by the same command `make demo` runs, so the two cannot drift apart. Then, on the
same devnet, a provider is killed mid-job and the renter claims the no-show from the CLI
once the deadline has passed: the devnet's chain keeps time by itself, so no other
transaction is needed for the claim to see the deadline behind it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from protocol.deployments import connect, load_for
from protocol.escrow import Escrow, JobStatus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKET = "http://127.0.0.1:8700"
CHAIN = "http://127.0.0.1:8545"
GATEWAY = "http://127.0.0.1:8780"
PASSWORD = "first-hour-password"


def readme_commands(block: str) -> list[str]:
    """The shell commands of the README's ``<!-- first-hour:BLOCK -->`` code block, with
    continuation lines joined and trailing comments dropped."""
    text = README.read_text()
    marker = f"<!-- first-hour:{block} -->"
    assert marker in text, f"the README lost its {marker} block"
    body = text.split(marker, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in body.splitlines():
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        command = re.sub(r"(^|\s+)#\s.*$", "", current).strip()
        if command:
            commands.append(command)
        current = ""
    return commands


def test_the_readme_blocks_parse_into_commands():
    renter = readme_commands("renter")
    assert renter[0].startswith("dcloud job init ")
    assert any(c.startswith("dcloud job submit ") and "--input data.txt" in c for c in renter)
    provider = readme_commands("provider")
    assert "dcloud provider run" in provider
    image = readme_commands("image")
    assert image[3] == "dcloud image push myapp:1"
    service = readme_commands("service")
    assert service[1].startswith("dcloud service deploy --name blog")
    assert not any(c.startswith("#") for c in service)


class User:
    """A shell for a new user: an empty home, `dcloud` on the PATH, a working folder."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.cwd = root / "work"
        self.home.mkdir()
        self.cwd.mkdir()
        self.env = dict(
            os.environ,
            HOME=str(self.home),
            DCLOUD_PASSWORD=PASSWORD,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        self.env.pop("DCLOUD_HOME", None)
        self.env.pop("DCLOUD_DEPLOYMENTS", None)
        self.background: list[subprocess.Popen[bytes]] = []

    def run(self, command: str, *, ok: bool = True, timeout: float = 300) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        assert "Traceback" not in output, f"{command}\n{output}"
        if ok:
            assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output}"
        else:
            assert done.returncode != 0, f"{command} should have failed:\n{output}"
        return output

    def start(self, command: str) -> subprocess.Popen[bytes]:
        log = open(self.cwd / "background.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.background.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_for(predicate, *, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def devnet(docker_engine, job_images, tmp_path_factory):
    """`dcloud devnet up --no-demo`: the network `make demo` starts, in a folder of its own."""
    home = tmp_path_factory.mktemp("devnet")
    argv = [sys.executable, "-m", "agents", "devnet", "up", "--no-demo", "--home", str(home)]
    log = open(home / "up.log", "wb")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(
            lambda: (home / "devnet.json").exists() or proc.poll() is not None,
            timeout=420,
            what="the devnet to come up",
        )
        assert proc.poll() is None, (home / "up.log").read_text()[-3000:]
        yield home
    finally:
        down = [sys.executable, "-m", "agents", "devnet", "down", "--home", str(home)]
        subprocess.run(down, capture_output=True, timeout=180, check=False)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def user(devnet, tmp_path_factory):
    u = User(tmp_path_factory.mktemp("user"))
    yield u
    u.stop_all()


def test_a_renter_and_a_provider_follow_the_readme(devnet, user):
    outputs = {}
    for command in readme_commands("renter"):
        outputs[command] = user.run(command)
    init = next(o for c, o in outputs.items() if c.startswith("dcloud job init"))
    assert "chain 31337" in init  # the contracts came from the marketplace
    submit = next(o for c, o in outputs.items() if c.startswith("dcloud job submit"))
    assert "verified" in submit
    (result,) = user.cwd.glob("dcloud-job-*")
    assert (result / "outputs" / "n").read_text().strip() == "3"
    listing = next(o for c, o in outputs.items() if c == "dcloud job list")
    assert "settled" in listing

    # the renter's own image: built in its Docker, pushed to the nodes, pulled by a provider
    for command in readme_commands("image"):
        outputs[command] = user.run(command)
    pushed = next(o for c, o in outputs.items() if c.startswith("dcloud image push"))
    push = " ".join(pushed.split())
    assert re.search(r"myapp:1 sha256:[0-9a-f]{12}", push), push
    ran = next(o for c, o in outputs.items() if c.startswith("dcloud job submit --image myapp"))
    assert "verified" in ran
    (own,) = set(user.cwd.glob("dcloud-job-*")) - {result}
    assert (own / "outputs" / "hello.txt").read_text().strip() == "hello from my own image"
    assert "myapp:1" in outputs["dcloud image ls"]

    # a job that may wait: estimated, then planned (held until its hour, or run now)
    for command in readme_commands("held"):
        outputs[command] = user.run(command)
    estimate = " ".join(next(o for c, o in outputs.items() if "--estimate" in c).split())
    assert "saved for" in estimate and "nothing was paid" in estimate, estimate
    planned = " ".join(next(o for c, o in outputs.items() if "--finish-by" in c).split())
    assert "saved for" in planned, planned
    assert "is held until" in planned or "verified" in planned, planned

    for command in readme_commands("service"):
        outputs[command] = user.run(command)
        if command.startswith("dcloud service deploy"):
            said = " ".join(outputs[command].split())
            assert "blog is up: http://blog.apps.localhost:8780/" in said
            # the site, through the gateway by name (Host) and by path
            by_name = httpx.get(f"{GATEWAY}/", headers={"host": "blog.apps.localhost:8780"})
            assert by_name.status_code == 200 and "<h1>hello</h1>" in by_name.text
            assert "<h1>hello</h1>" in httpx.get(f"{GATEWAY}/apps/blog/").text
    assert "blog stopped" in outputs["dcloud service stop blog"]
    # once stopped, the name routes nowhere
    wait_for(
        lambda: httpx.get(f"{GATEWAY}/apps/blog/", timeout=5).status_code in (404, 503),
        timeout=30,
        what="the stopped service's route to go",
    )

    for command in readme_commands("provider"):
        if command == "dcloud provider run":
            user.start(command)
            wait_for(
                lambda: _answers("http://127.0.0.1:8800/v1/health"),
                timeout=60,
                what="the new provider's agent",
            )
            continue
        outputs[command] = user.run(command)
    config = json.loads((user.home / ".dcloud" / "provider" / "provider.json").read_text())
    assert config["location"] == {"lat": 48.14, "lon": 11.58}  # Munich, from --location
    status = outputs["dcloud provider status"]
    assert "active" in status and "NOT active" not in status
    address = re.search(r"0x[0-9a-fA-F]{40}", status)
    assert address is not None
    listed = httpx.get(f"{MARKET}/v1/providers/{address.group(0)}", timeout=5).json()
    assert listed["online"] is True and listed["stake_active"] is True
    # the new provider and the renter act with keys of their own, never a dev account's
    unlocked = set(connect(CHAIN).eth.accounts)
    assert address.group(0) not in unlocked


def _escrow(devnet: Path) -> Escrow:
    w3 = connect(CHAIN)
    return Escrow(w3, load_for(w3, path=devnet / "deployments.json"))


def _pid_serving(devnet: Path, user: User, endpoint: str) -> int:
    """The PID of the provider agent at `endpoint`: one of the devnet's, or the README's."""
    port = int(endpoint.rsplit(":", 1)[1].strip("/"))
    if port == 8800:
        return user.background[0].pid
    pids = json.loads((devnet / "devnet.json").read_text())["pids"]
    for cfg in (devnet / "providers").glob("*/provider.json"):
        if json.loads(cfg.read_text())["listen_port"] == port:
            return int(pids[cfg.parent.name])
    raise AssertionError(f"no devnet provider listens on {endpoint}")


def test_a_provider_killed_mid_job_is_claimed_from_the_cli_after_its_deadline(devnet, user):
    escrow = _escrow(devnet)
    out = user.run(
        "dcloud job submit --no-wait --image dcloud/busybox:1 --cpu 0.5 --memory-mb 64 "
        "--time-limit 30 --max-price 1 -- sleep 25"
    )
    job_id = int(re.search(r"job (\d+) slot 0", out).group(1))  # type: ignore[union-attr]
    wait_for(lambda: escrow.job(job_id).accepted == 1, timeout=60, what="the provider's accept")
    record = next((user.home / ".dcloud" / "renter" / "jobs").glob(f"*/{job_id}.json"))
    endpoint = json.loads(record.read_text())["assignments"][0]["endpoint"]
    os.kill(_pid_serving(devnet, user, endpoint), signal.SIGKILL)

    early = user.run(f"dcloud job claim-no-show {job_id}", ok=False)
    assert "EscrowNotNoShow" not in early and "would revert" not in early
    assert "deadline" in early

    # the chain's clock jumps past the deadline; only the devnet's own steady blocks
    # (no transaction) bring that time into a block
    job = escrow.job(job_id)
    w3 = escrow.w3
    w3.provider.make_request("evm_increaseTime", [job.deadline - escrow.now() + 2])  # type: ignore[arg-type]
    wait_for(
        lambda: int(w3.eth.get_block("latest")["timestamp"]) > job.deadline,
        timeout=30,
        what="a block past the deadline without any transaction",
    )
    renter = _renter(user)
    before = escrow.balance_of(renter)
    claimed = user.run(f"dcloud job claim-no-show {job_id}")
    assert escrow.job(job_id).status == JobStatus.SETTLED
    assert escrow.balance_of(renter) > before  # the deposit back, and the collateral
    assert "slashed" in claimed or "collateral" in claimed


def _renter(user: User) -> str:
    out = user.run("dcloud token balance")
    found = re.search(r"0x[0-9a-fA-F]{40}", out)
    assert found is not None, out
    return found.group(0)
