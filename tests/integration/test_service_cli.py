"""`dcloud service` on a real chain, marketplace, provider agent (real Docker) and ingress
gateway (real nginx): refused deploys move no money; a site deployed from a folder
answers through the gateway, costs by the second, takes a top-up and refunds the rest
when stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agents.devnet.network import PASSWORD, ProviderSpec, dev_account
from agents.provider.services import engine as eng
from agents.renter.client import Renter
from agents.service import Services
from agents.service.lease import RenterLeases
from agents.units import fmt_tokens
from protocol import purposes
from protocol.leases import LeaseStatus
from protocol.services import ServiceSpec
from tests.integration.services_net import gateway_for, service_network

pytestmark = pytest.mark.integration

PYTHON = "dcloud/python:3.11"
RENTER, OTHER = 6, 8
RATE = 5 * 10**11  # the provider's 10**12 wei per CPU-second, times 0.5 CPU
TOKEN = 10**18


@pytest.fixture(scope="module")
def net(docker_engine, job_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("net")
    with service_network(root, [ProviderSpec("p-frankfurt", 1, 50.11, 8.68)]) as network:
        yield network


@pytest.fixture(scope="module")
def gateway(net, tmp_path_factory):
    with gateway_for(net.market_url, tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture(scope="module")
def home(net, gateway, tmp_path_factory):
    folder = tmp_path_factory.mktemp("renter")
    done = dcloud(
        "job", "init", "--marketplace", net.market_url, "--rpc", net.rpc_url,
        "--origin", "Frankfurt", "--gateway", gateway.url, home=folder,
        key=dev_account(RENTER).key.hex(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture(scope="module")
def sdk(net, gateway, home):
    renter = Renter(
        account=dev_account(RENTER),
        marketplace_url=net.market_url,
        rpc_url=net.rpc_url,
        home=home,
    )
    yield Services(renter)
    renter.close()


def dcloud(*args: str, home: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DCLOUD_PASSWORD=PASSWORD, COLUMNS="200")
    if key:
        env["DCLOUD_PRIVATE_KEY"] = key
    cut = args.index("--") if "--" in args else len(args)  # --home before the command's args
    argv = [sys.executable, "-m", "agents", *args[:cut], "--home", str(home), *args[cut:]]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def money(net, sdk) -> tuple[int, int]:
    """The renter's tokens and the number of leases ever opened."""
    return net.escrow.balance_of(sdk.address), sdk.chain.leases.lease_count()


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command prints; it must exit 1 without a traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    return " ".join(done.stderr.split())


def deploy_args(name: str, *, max_rate: str = "0.01/h", deposit: str = "1") -> list[str]:
    return [
        "service", "deploy", "--name", name, "--image", PYTHON, "--port", "8000",
        "--cpu", "0.5", "--memory-mb", "128", "--disk-mb", "16",
        "--max-rate", max_rate, "--deposit", deposit,
    ]  # fmt: skip


def spec(name: str) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "name": name,
            "image": PYTHON,
            "port": 8000,
            "resources": {"cpu": 0.5, "memory_mb": 128, "disk_mb": 16},
            "max_rate_wei_per_s": 10**12,
            "origin": {"lat": 50.0, "lon": 8.0},
        }
    )


# ---------------------------------------------------------------- refused deploys


def test_quote_names_the_provider_and_its_rate_per_second(sdk):
    q = sdk.quote(spec("quoted"))
    assert q["reason"] == ""
    assert q["rate_wei_per_s"] == RATE
    assert q["provider"] == sdk.market.get("/v1/providers")["items"][0]["address"]


def test_a_bad_name_is_refused_with_the_naming_rule(net, sdk, home):
    before = money(net, sdk)
    out = refused(dcloud(*deploy_args("My_Blog"), home=home))
    assert "'My_Blog' cannot be a service name" in out
    assert "lower-case letters, digits and hyphens" in out
    assert money(net, sdk) == before


def test_a_max_rate_below_every_ask_is_refused_and_moves_no_money(net, sdk, home):
    before = money(net, sdk)
    out = refused(dcloud(*deploy_args("too-cheap", max_rate="0.001/h"), home=home))
    assert "no provider can run too-cheap" in out
    assert "above your max rate" in out and "raise --max-rate" in out
    assert money(net, sdk) == before


def test_a_deposit_below_the_minimum_states_the_minimum_and_moves_no_money(net, sdk, home):
    before = money(net, sdk)
    out = refused(dcloud(*deploy_args("too-small", deposit="0.00001"), home=home))
    # 60 s at 0.0018 DCT/h
    assert "below this service's minimum of 0.00003 DCT (60 s at 0.0018 DCT/h)" in out
    assert "raise --deposit" in out
    assert money(net, sdk) == before


def test_a_name_another_renter_holds_is_refused_and_moves_no_money(net, sdk, home):
    other = net.renter(OTHER)
    other.market.post_signed(
        "/v1/services",
        purpose=purposes.SERVICE_DEPLOY,
        payload=spec("theirs").model_dump(mode="json"),
    )
    before = money(net, sdk)
    out = refused(dcloud(*deploy_args("theirs"), home=home))
    assert "the name theirs is taken" in out and "choose another --name" in out
    assert money(net, sdk) == before


@pytest.mark.parametrize("command", ["status", "logs", "stop"])
def test_an_unknown_name_says_how_to_list_yours(home, command):
    out = refused(dcloud("service", command, "nosuch", home=home))
    assert "no service named nosuch" in out and "dcloud service ls" in out


# ---------------------------------------------------------------- a site, deployed


@pytest.fixture(scope="module")
def blog(net, gateway, home, tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "index.html").write_text("<h1>hello from dcloud</h1>\n")
    (site / "notes").mkdir()
    (site / "notes" / "one.txt").write_text("first note\n")
    done = dcloud(
        *deploy_args("blog"), "--input", str(site),
        "--", "python3", "-m", "http.server", "8000", "--directory", "/input",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_deploy_ends_with_the_url_provider_level_and_rate(blog, gateway):
    last = blog.strip().splitlines()[-1]
    port = gateway.url.rsplit(":", 1)[1]
    assert re.fullmatch(
        rf"blog is up: http://blog\.apps\.localhost:{port}/ "
        r"\(provider frankfurt, level \d+, 0\.0018 DCT/h\)",
        last,
    ), blog
    for step in ("placing", "opening the lease", "sending to the provider", "checking the URL"):
        assert f"✓ {step}" in blog


def test_the_site_answers_through_the_gateway_by_path_and_by_host(blog, gateway):
    by_path = httpx.get(f"{gateway.url}/apps/blog/notes/one.txt")
    assert by_path.status_code == 200 and by_path.text == "first note\n"
    host = f"blog.apps.localhost:{gateway.url.rsplit(':', 1)[1]}"
    by_host = httpx.get(f"{gateway.url}/", headers={"Host": host})
    assert by_host.status_code == 200 and "hello from dcloud" in by_host.text


def test_ls_lists_the_service_with_its_url_and_rate(blog, home):
    done = dcloud("service", "ls", home=home)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "│ blog" in line)
    assert "http://blog.apps.localhost" in row and "0.0018 DCT/h" in row


def test_logs_show_the_requests_the_site_served(blog, gateway, sdk, home):
    httpx.get(f"{gateway.url}/apps/blog/notes/one.txt")
    done = dcloud("service", "logs", "blog", home=home)
    assert done.returncode == 0, done.stderr
    assert '"GET /notes/one.txt HTTP/1.1" 200' in done.stdout
    stream = sdk.logs("blog", follow=True)
    try:
        assert "HTTP/1.1" in next(stream)  # a line the site logged, streamed
    finally:
        stream.close()


def test_status_shows_what_was_spent_and_when_the_deposit_runs_out(net, blog, sdk, home):
    net.time_travel(3600)
    done = dcloud("service", "status", "blog", home=home)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    view = sdk.status("blog")
    assert view.spent >= 3600 * RATE
    assert view.left == view.lease.deposit - view.spent
    assert "rate 0.0018 DCT/h · deposit 1 DCT · spent 0.00" in out
    assert "runs out" in out and "(in 2" in out  # 1 DCT at 0.0018 DCT/h: about 23 days
    assert "provider's view: healthy" in out
    assert "(frankfurt) at http://127.0.0.1:" in out


def test_top_up_raises_the_deposit_and_pushes_the_run_out_later(net, blog, sdk, home):
    before = sdk.status("blog", ask_provider=False).lease
    done = dcloud("service", "top-up", "blog", "0.5", home=home)
    assert done.returncode == 0, done.stderr
    assert "blog: deposit 1 DCT → 1.5 DCT; runs out" in " ".join(done.stdout.split())
    after = RenterLeases(sdk.renter).lease(before.lease_id)
    assert after.deposit == before.deposit + TOKEN // 2
    assert after.runs_out_at == before.runs_out_at + (TOKEN // 2) // RATE


def test_stop_closes_the_lease_and_refunds_the_rest_to_the_wallet(net, blog, sdk, home):
    lease_id = sdk.status("blog", ask_provider=False).lease_id
    wallet = net.escrow.balance_of(sdk.address)
    done = dcloud("service", "stop", "blog", home=home)
    assert done.returncode == 0, done.stderr
    lease = RenterLeases(sdk.renter).lease(lease_id)
    assert lease.status == LeaseStatus.ENDED
    refund = lease.deposit - lease.paid
    assert net.escrow.balance_of(sdk.address) == wallet + refund
    out = " ".join(done.stdout.split())
    assert f"blog stopped (lease {lease_id} closed)" in out
    assert f"the rest of the deposit, {fmt_tokens(refund)}, came back to your wallet" in out
    assert sdk.market.get("/v1/services/blog")["status"] in ("ending", "ended")


# ---------------------------------------------------------------- several containers

WEB = """\
import http.server, urllib.request
class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = urllib.request.urlopen("http://api:9000" + self.path, timeout=5).read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("", 8000), Proxy).serve_forever()
"""

STACK = """\
name: shop
services:
  web:
    image: dcloud/python:3.11
    command: python3 /input/web.py
    ports: [8000]
    depends_on: [api]
    resources: {cpu: 0.25, memory_mb: 64, disk_mb: 8}
  api:
    image: dcloud/python:3.11
    command: [python3, -m, http.server, "9000", --directory, /input/api]
    resources: {cpu: 0.25, memory_mb: 64, disk_mb: 8}
"""


@pytest.fixture(scope="module")
def shop(net, gateway, home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    (folder / "stack.yaml").write_text(STACK)
    (folder / "site" / "api").mkdir(parents=True)
    (folder / "site" / "web.py").write_text(WEB)
    (folder / "site" / "api" / "items.txt").write_text("apples\n")
    done = dcloud(
        "service", "deploy", "-f", str(folder / "stack.yaml"), "--max-rate", "0.01/h",
        "--deposit", "1", "--input", str(folder / "site"), home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_manifest_deploys_its_containers_under_one_name_and_lease(shop, sdk):
    assert re.search(r"shop is up: http://shop\.apps\.localhost:\d+/ .*0\.0018 DCT/h", shop)
    view = sdk.status("shop")
    assert view.lease.rate_per_second == RATE  # 0.25 + 0.25 CPU at the provider's ask
    assert view.agent is not None and view.agent["state"] == "healthy"


def test_the_published_service_answers_and_reaches_the_other_by_name(shop, gateway):
    got = httpx.get(f"{gateway.url}/apps/shop/items.txt")  # web, fetching from api:9000
    assert got.status_code == 200 and got.text == "apples\n"


def test_status_lists_the_deployments_containers(shop, home):
    done = dcloud("service", "status", "shop", home=home)
    assert done.returncode == 0, done.stderr
    assert "containers web (published, port 8000) · api" in done.stdout
    assert "provider's view: healthy" in " ".join(done.stdout.split())


def test_logs_of_a_deployment_name_each_container(shop, gateway, home):
    httpx.get(f"{gateway.url}/apps/shop/items.txt")
    done = dcloud("service", "logs", "shop", home=home)
    assert done.returncode == 0, done.stderr
    assert re.search(r'^api \| .*"GET /items.txt HTTP/1.1" 200', done.stdout, re.M), done.stdout


def test_a_bad_manifest_is_refused_with_its_line_and_moves_no_money(net, sdk, home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(STACK.replace("    depends_on: [api]\n", "    links: [api]\n"))
    before = money(net, sdk)
    out = refused(dcloud("service", "deploy", "-f", str(bad), "--max-rate", "0.01/h", home=home))
    assert "bad.yaml line 7, services.web.links: unknown key; use one of: image," in out
    assert money(net, sdk) == before


def test_stopping_a_deployment_closes_its_lease_and_removes_every_container(
    net, shop, sdk, home, docker_engine
):
    lease_id = sdk.status("shop", ask_provider=False).lease_id
    agent = {"label": f"{eng.AGENT_LABEL}={net.providers[0].address.lower()}"}

    def of_lease() -> list[str]:
        found = docker_engine.containers.list(all=True, filters=agent)
        mine = [c for c in found if c.labels[eng.SERVICE_LABEL].endswith(f"-lease-{lease_id}")]
        return sorted(c.labels.get(eng.CONTAINER_LABEL, "main") for c in mine)

    assert of_lease() == ["api", "main"]  # both on the one provider, under the one lease
    done = dcloud("service", "stop", "shop", home=home)
    assert done.returncode == 0, done.stderr
    assert RenterLeases(sdk.renter).lease(lease_id).status == LeaseStatus.ENDED
    assert f"shop stopped (lease {lease_id} closed)" in " ".join(done.stdout.split())
    give_up = time.monotonic() + 60
    while of_lease():  # the provider's lease watcher removes them once it sees the end
        assert time.monotonic() < give_up, "the deployment's containers outlived its lease"
        time.sleep(0.2)
