"""Rates as renters type them, durations as they read them, and input folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agents.errors import UserError
from agents.service.inputs import collect_inputs
from agents.service.rates import fmt_duration, fmt_moment, fmt_rate, parse_rate
from protocol.services import MAX_RATE_WEI_PER_S

TOKEN = 10**18


@pytest.mark.parametrize(
    ("text", "wei_per_s"),
    [
        ("0.0036/h", 10**12),
        ("0.0036/hour", 10**12),
        ("0.0036 DCT / hours", 10**12),
        ("0.0864/day", 10**12),
        ("0.0864/d", 10**12),
        ("1e-6/s", 10**12),
        ("0.00006/min", 10**12),
        ("1000000000wei/s", 10**9),
        ("3600wei/h", 1),
        ("1/s", TOKEN),
    ],
)
def test_parse_rate_reads_tokens_or_wei_per_period(text, wei_per_s):
    assert parse_rate(text) == wei_per_s


def test_parse_rate_rounds_down_so_the_most_is_never_exceeded():
    # 0.001 token per hour is 277777777777.7… wei per second
    assert parse_rate("0.001/h") == 277_777_777_777


@pytest.mark.parametrize("text", ["0.001", "abc/h", "0.001/week", "-1/h", "0/h", "1.5wei/s", "/h"])
def test_parse_rate_refuses_what_is_not_a_rate(text):
    with pytest.raises(UserError, match=r"0\.001/h"):
        parse_rate(text)


def test_parse_rate_refuses_less_than_a_wei_per_second():
    with pytest.raises(UserError, match="less than 1 wei per second"):
        parse_rate("1wei/h")


def test_parse_rate_refuses_more_than_a_service_may_cost():
    with pytest.raises(UserError, match="more than a service may cost"):
        parse_rate(f"{MAX_RATE_WEI_PER_S + 1}wei/s")


def test_fmt_rate_is_tokens_per_hour_exactly():
    assert fmt_rate(5 * 10**11) == "0.0018 DCT/h"
    assert fmt_rate(10**12, per="day") == "0.0864 DCT/day"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45, "45 s"), (60, "1 min"), (3725, "1 h 2 min"), (3 * 86400 + 7200, "3 d 2 h")],
)
def test_fmt_duration_shows_the_two_largest_units(seconds, text):
    assert fmt_duration(seconds) == text


def test_fmt_moment_says_how_far_it_is():
    assert fmt_moment(1000 + 3 * 3600, now=1000).endswith("(in 3 h)")
    assert fmt_moment(1000, now=1090).endswith("(1 min 30 s ago)")


def test_collect_inputs_takes_a_folder_recursively_relative_to_it(tmp_path: Path):
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>")
    (site / "css" / "a.css").write_text("h1{}")
    files, data = collect_inputs([site])
    assert [f.path for f in files] == ["css/a.css", "index.html"]
    assert data["index.html"] == b"<h1>hi</h1>"
    assert files[1].sha256 == hashlib.sha256(b"<h1>hi</h1>").hexdigest()
    assert files[1].size == len(b"<h1>hi</h1>")


def test_collect_inputs_takes_single_files_by_their_names(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "conf.json").write_text("{}")
    files, data = collect_inputs([tmp_path / "a" / "conf.json"])
    assert [f.path for f in files] == ["conf.json"]
    assert data == {"conf.json": b"{}"}


def test_collect_inputs_refuses_two_files_at_one_path(tmp_path: Path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("1")
    (tmp_path / "index.html").write_text("2")
    with pytest.raises(UserError, match=r"/input/index\.html"):
        collect_inputs([tmp_path / "site", tmp_path / "index.html"])


def test_collect_inputs_refuses_names_the_spec_cannot_carry(tmp_path: Path):
    (tmp_path / "my page.html").write_text("x")
    with pytest.raises(UserError, match="rename it"):
        collect_inputs([tmp_path])


def test_collect_inputs_refuses_a_missing_path_and_an_empty_folder(tmp_path: Path):
    with pytest.raises(UserError, match="no file or folder"):
        collect_inputs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no files"):
        collect_inputs([tmp_path / "empty"])
