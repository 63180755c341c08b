"""bench/report.py: sections land in results.md once, the run summary on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import write_results, write_run_summary


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DCLOUD_BENCH_RESULTS", str(tmp_path))
    monkeypatch.setenv("DCLOUD_BENCH_SIZE", "quick")
    return tmp_path


def test_write_results_replaces_its_section_and_writes_json(out: Path) -> None:
    write_results("grid", [{"weight": 0.0}], title="Grid")
    write_results("grid", [{"weight": 2000.0}], title="Grid")
    text = (out / "results.md").read_text()
    assert text.count("<!-- bench:grid:start -->") == 1
    assert "2000" in text and "quick sizes" in text
    assert json.loads((out / "grid.json").read_text()) == [{"weight": 2000.0}]


def test_run_summary_heads_results_and_names_failures(out: Path) -> None:
    write_results("grid", [{"weight": 0.0}], title="Grid")
    rows = [{"bench": "grid", "status": "ok", "seconds": 1.0}]
    write_run_summary([*rows, {"bench": "e2e", "status": "failed", "seconds": 2.0}], sizes="quick")
    text = (out / "results.md").read_text()
    assert text.index("bench:run:start") < text.index("bench:grid:start")
    assert "Failed: e2e" in text
