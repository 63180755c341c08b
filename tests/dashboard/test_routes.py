"""The dashboard's server side without a browser: static files, config, proxy refusal."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.settings import Settings
from protocol.reverts import SENTENCES


@pytest.fixture
def client(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_pages_render_and_link_their_script(client):
    for page in ("jobs", "submit", "providers", "storage", "jobs/some-id"):
        r = client.get(f"/dashboard/{page}")
        assert r.status_code == 200
        assert 'type="module"' in r.text and "<label" in r.text
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/jobs"


def test_static_files_are_served_and_paths_cannot_escape(client):
    js = client.get("/dashboard/static/js/json.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/static/vendor/countries-110m.json").status_code == 200
    for path in ("../routes.py", "..%2Froutes.py", "vendor/.gitignore", "nope.js"):
        assert client.get(f"/dashboard/static/{path}").status_code == 404


def test_without_a_chain_the_config_says_so_and_there_is_no_proxy(client):
    config = client.get("/dashboard/api/config").json()
    assert config["chain"] is None
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"}
    r = client.post("/dashboard/api/rpc", json=call)
    assert r.status_code == 404
    assert "only when the marketplace follows a local devnet" in r.json()["detail"]


def test_region_history_has_a_point_per_hour(client):
    history = client.get("/dashboard/api/regions/history?hours=24").json()
    assert len(history) == 18
    assert all(len(r["points"]) == 24 for r in history)
    times = [p["t"] for p in history[0]["points"]]
    assert times == sorted(times) and times[1] - times[0] == 3600
    assert all(0 <= p["level"] <= 9 for r in history for p in r["points"])


def test_the_config_carries_the_cli_sentences_for_contract_errors(client):
    reverts = client.get("/dashboard/api/config").json()["reverts"]
    assert reverts["sentences"] == SENTENCES
    assert reverts["kinds"]["deadline"] == "time"
    assert reverts["names"]["jobstatus"][3] == "settled"
