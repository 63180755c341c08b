"""Manifests: a compose-like YAML file becomes one deployment spec, and a bad one gets an
error that names the line, the key and the fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eth_account import Account

from agents.errors import UserError
from agents.image.records import ImageRecord, ImageStore, LayerRecord
from agents.service import manifest as mf
from protocol.schemas import Location
from protocol.services import main_resources, service_spec_hash, start_order

MUNICH = Location(lat=48.14, lon=11.58)

STACK = """\
name: shop
services:
  web:
    image: dcloud/python:3.11
    command: python3 -m http.server 8000 --directory /input
    ports: ["8000"]
    env: {API_URL: "http://api:9000", WORKERS: 2, DEBUG: yes}
    depends_on: [api]
    resources: {cpu: 0.5, memory_mb: 128, disk_mb: 16}
    health: {path: /index.html, interval_s: 2}
  api:
    image: dcloud/python:3.11
    command: [python3, -m, http.server, "9000"]
    env: [MODE=api]
    resources: {cpu: 0.25, memory_mb: 64, disk_mb: 8}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def build(path: Path, name: str = ""):
    return mf.build(path, name=name, max_rate_wei_per_s=10**12, origin=MUNICH, inputs=[])


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserError) as caught:
        build(write(tmp_path, text))
    return str(caught.value)


def test_a_manifest_becomes_one_spec_with_the_published_service_as_main(tmp_path):
    spec = build(write(tmp_path, STACK))
    assert (spec.name, spec.alias, spec.port, spec.depends_on) == ("shop", "web", 8000, ["api"])
    assert spec.command == ["python3", "-m", "http.server", "8000", "--directory", "/input"]
    assert spec.env == {"API_URL": "http://api:9000", "WORKERS": "2", "DEBUG": "true"}
    assert spec.health.path == "/index.html" and spec.health.interval_s == 2
    assert spec.resources.model_dump() == {"cpu": 0.75, "memory_mb": 192, "gpu": 0, "disk_mb": 24}
    (api,) = spec.containers
    assert (api.name, api.command, api.env) == ("api", ["python3", "-m", "http.server", "9000"],
                                                {"MODE": "api"})  # fmt: skip
    assert main_resources(spec).cpu == 0.5 and start_order(spec) == ["api", "web"]


def test_the_name_flag_overrides_the_manifests(tmp_path):
    assert build(write(tmp_path, STACK), name="other").name == "other"


def test_one_service_makes_a_plain_service(tmp_path):
    spec = build(write(tmp_path, """\
        name: blog
        services:
          web: {image: dcloud/busybox:1, command: httpd -f -p 8080, ports: [8080]}
        """))  # fmt: skip
    assert spec.containers == [] and spec.alias is None
    assert service_spec_hash(spec)  # hashes like any spec of one container


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # an unknown key: its line, and the keys allowed there
            STACK.replace("    depends_on: [api]\n", "    depends_on: [api]\n    expose: [1]\n"),
            "stack.yaml line 9, services.web.expose: unknown key; use one of: image, command, "
            "ports, env, depends_on, resources, health",
        ),
        (
            STACK.replace("cpu: 0.25", "cpu: 0"),
            "stack.yaml line 15, services.api.resources.cpu: Input should be greater than 0",
        ),
        (
            STACK.replace('["8000"]', '["8080:8000"]'),
            "line 6, services.web.ports: '8080:8000': the provider picks the host port; "
            "write the container's port only (8000)",
        ),
        (STACK.replace("    image: dcloud/python:3.11\n    command: [", "    command: ["),
         "line 11, services.api.image: required; add it"),
        (STACK.replace("  api:", "  API:"),
         "line 11, services.API: 'API' is not a name: use lower case letters"),
        (STACK.replace("WORKERS", "MAX-WORKERS"),
         "line 7, services.web.env.MAX-WORKERS: 'MAX-WORKERS' is not a variable name"),
        (STACK.replace('["8000"]', "[]"), "publish exactly one port"),
        (STACK.replace("  api:\n", "  api:\n    ports: [9000]\n"),
         "publish exactly one port"),
        (STACK.replace("[api]", "[cache]"),
         "web depends on 'cache', which is not a container here"),
        (STACK.replace("  api:\n", "  api:\n    depends_on: [web]\n"), "depends_on goes round"),
        (STACK.replace("    env: [MODE=api]\n", "    health: {kind: tcp}\n"),
         "services.api.health: only the published service (web) is checked"),
        (STACK.replace("name: shop\n", "name: shop\nname: blog\n"),
         "line 2: 'name' is given twice (first on line 1); keep one"),
        ("services:\n  web:\n image: x\n", "line 3, column 2"),
        (STACK.replace("name: shop\n", ""), "name the deployment"),
        ("- a\n- b\n", "a manifest is a mapping with `services:`"),
    ],
)  # fmt: skip
def test_a_bad_manifest_says_where_and_how_to_fix_it(tmp_path, text, expected):
    assert expected in error(tmp_path, text)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(UserError, match="cannot read the manifest"):
        build(tmp_path / "nope.yaml")


@pytest.fixture
def images(tmp_path):
    """The renter's record of one image it pushed, myapp:1 (a real store, in a folder)."""
    store = ImageStore(tmp_path / "renter", Account.create())
    store.save(
        ImageRecord(
            name="myapp:1",
            digest="sha256:" + "ab" * 32,
            config="{}",
            layers=[LayerRecord(diff_id="sha256:" + "cd" * 32, object_id="0" * 32, size=1000)],
            pushed_at=0.0,
        )
    )
    return store


def test_a_pushed_image_is_pinned_for_every_container_that_runs_it(tmp_path, images):
    text = STACK.replace("dcloud/python:3.11", "myapp:1")
    spec = mf.build(write(tmp_path, text), name="", max_rate_wei_per_s=1, origin=MUNICH,
                    inputs=[], images=images)  # fmt: skip
    pinned = "myapp:1@sha256:" + "ab" * 32
    assert (spec.image, spec.image_bytes, spec.containers[0].image) == (pinned, 1000, pinned)


def test_another_container_in_a_different_pushed_image_is_refused(tmp_path, images):
    text = STACK.replace(
        "    image: dcloud/python:3.11\n    command: [", "    image: myapp:1\n    command: ["
    )
    with pytest.raises(UserError, match=r"services\.api\.image: myapp:1 is an image you pushed"):
        mf.build(write(tmp_path, text), name="", max_rate_wei_per_s=1, origin=MUNICH,
                 inputs=[], images=images)  # fmt: skip


def test_the_cli_refuses_flags_the_manifest_already_says(tmp_path):
    path = write(tmp_path, STACK)
    argv = [sys.executable, "-m", "agents", "service", "deploy", "-f", str(path),
            "--image", "x:1", "--port", "80", "--max-rate", "0.01/h",
            "--home", str(tmp_path)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--image, --port: the manifest says these; edit it instead" in done.stderr
