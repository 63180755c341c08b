"""The dashboard in real headless Chromium against a real anvil chain and marketplace.

Fixtures: a session-wide browser (Debian's chromium through Playwright), a module-wide
network (anvil with the contracts deployed, the marketplace served by uvicorn in a thread
on a free port), and a fresh browser tab per test that fails the test on any console
error or uncaught page exception the test did not declare expected.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from marketplace.app import create_app
from marketplace.dashboard import assets
from marketplace.settings import Settings
from protocol.deployments import Deployment, connect, load_for
from tests.integration.chains import CHAINS, deploy_contracts, running_chain
from tests.marketplace.api.conftest import registration, signed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = 10**18
# anvil's well-known dev keys #1 to #4 (#0 deploys; each of #1..#9 holds 1M DCT)
PROVIDER_KEYS = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
]
# Screenshots for the README are rewritten only when asked (DCLOUD_SCREENSHOTS=1), so a
# test run leaves the checkout as it was; otherwise they go to a scratch folder.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("DCLOUD_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "dcloud-screenshots"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """A uvicorn server for `app` in a background thread, stopped by `stop()`."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the marketplace did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class Network:
    """anvil + contracts + a marketplace: what the dashboard tests drive."""

    rpc_url: str
    deployments: Path
    url: str
    w3: Any
    deployment: Deployment
    registered: list[str] = field(default_factory=list)

    def contract(self, name: str) -> Any:
        return self.deployment.contract(self.w3, name)

    def transact(self, call: Any, sender: str) -> None:
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt.status == 1

    def add_provider(
        self, key: str, *, lat: float, lon: float, endpoint: str | None = None, **kw: Any
    ) -> LocalAccount:
        """Stake on chain and register through the signed API (like a provider agent).

        Without `endpoint` the provider's address is a free local port nobody listens on.
        """
        acct: LocalAccount = Account.from_key(key)
        token, registry = self.contract("ComputeToken"), self.contract("ProviderRegistry")
        staked = registry.functions.stakeOf(acct.address).call()[0]
        if staked == 0:
            self.transact(token.functions.approve(registry.address, 500 * TOKEN), acct.address)
            self.transact(registry.functions.stake(500 * TOKEN), acct.address)
        body = registration(lat=lat, lon=lon, **kw)
        body["endpoint"] = endpoint or f"http://127.0.0.1:{free_port()}"
        r = httpx.post(
            f"{self.url}/v1/providers", json=signed(acct, "dcloud/provider.register", body)
        )
        assert r.status_code == 201, r.text
        assert r.json()["stake_active"] is True
        self.registered.append(acct.address)
        return acct


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run tools/setup.sh (it installs Debian's chromium)")
    if assets.missing():
        pytest.fail(f"dashboard assets {assets.missing()} missing: run tools/setup.sh")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _wait_for_free_port(port: int, timeout_s: float = 600) -> None:
    """Other suites' chains use the same test port: wait for them rather than fail."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(1)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    tmp = tmp_path_factory.mktemp("dashboard")
    out = tmp / "deployments.json"
    _wait_for_free_port(CHAINS["anvil"]["port"])
    with running_chain("anvil") as rpc_url:
        deploy_contracts(CHAINS["anvil"]["network"], out)
        settings = Settings(
            database_url=f"sqlite:///{tmp / 'market.db'}",
            rpc_url=rpc_url,
            deployments=out,
            batch_window_ms=20,
            indexer_poll_s=0.2,
            offline_after_s=3600,  # providers registered by the tests send no heartbeats
        )
        server = ServerThread(create_app(settings), free_port())
        server.start()
        try:
            w3 = connect(rpc_url)
            yield Network(rpc_url, out, server.url, w3, load_for(w3, path=out))
        finally:
            server.stop()


# WCAG 2 contrast of every visible text run against the background it is drawn on.
CONTRAST_JS = """
() => {
  const lum = (c) => {
    const [r, g, b] = c.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el || el.closest("svg, [hidden], .sr-only, option")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.getClientRects().length === 0) continue;
    const fg = rgba(style.color).slice(0, 3);
    const [l1, l2] = [lum(fg), lum(background(el))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = t.textContent.trim().slice(0, 40);
      bad.push(`${ratio.toFixed(2)} ${el.tagName}.${el.className}: ${text}`);
    }
  }
  return bad;
}
"""

UNLABELLED_JS = """
() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => !el.closest("[hidden]"))
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 80))
"""


@dataclass
class Tab:
    """A browser page with the console errors and page exceptions it produced."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def goto(self, path: str) -> Page:
        self.page.goto(f"{self.base}{path}")
        return self.page

    def allow(self, pattern: str) -> None:
        """Declare console errors matching `pattern` expected (e.g. a 422 a test provokes)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def connect_dev_account(self, index: int) -> str:
        """Pick dev account #index in the header; return its address."""
        select = self.page.locator("#dev-account")
        select.locator(f"option:text-matches('^#{index} ')").wait_for(state="attached")
        option = select.locator(f"option:text-matches('^#{index} ')")
        address = option.get_attribute("value")
        assert address
        select.select_option(address)
        self.page.locator("#wallet-account").filter(has_text=address).wait_for()
        return address

    def accessibility_problems(self) -> list[str]:
        """Controls without a label, and text below WCAG AA contrast, on the page now."""
        unlabelled = self.page.evaluate(UNLABELLED_JS)
        low_contrast = self.page.evaluate(CONTRAST_JS)
        return [f"no label: {u}" for u in unlabelled] + [f"contrast {c}" for c in low_contrast]

    def screenshot(self, name: str) -> None:
        self.page.locator("body[data-wallet='ready']").wait_for(state="attached")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def dashboard_url(network: Network) -> str:
    """Where the dashboard under test is served (a module may override this fixture)."""
    return f"{network.url}/dashboard"


@pytest.fixture
def tab(browser: Browser, dashboard_url: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    t = Tab(page, dashboard_url)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            t.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: t.errors.append(f"page error: {exc}"))
    yield t
    context.close()
    assert not t.unexpected(), "\n".join(t.unexpected())
