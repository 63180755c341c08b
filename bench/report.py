"""Reporting helpers shared by every benchmark. Standard library only.

This module is also imported from other virtual environments (the gas benchmark runs in
brownie's), so it must not import numpy, the project or anything outside the standard
library.

API:

- ``format_table(rows, columns=None) -> str``: a Markdown table (also readable as text).
- ``print_table(rows, *, title=None, columns=None)``: print it.
- ``write_results(name, rows, *, title, notes="", columns=None, table=None) -> Path``: write
  ``bench/results/<name>.json`` (the list of row objects) and replace or append the
  ``<name>`` section of ``bench/results.md`` with the table, date, git commit and machine.
- ``machine() -> dict`` and ``git_commit() -> str``: the provenance written with results.
- ``write_run_summary(rows, *, sizes) -> Path``: the ``run`` section at the top of
  ``results.md``: which benches the last ``tools/bench.sh`` ran, their status and time.
  From the shell: ``python -m bench.report run --sizes quick gas:ok:31.2 e2e:failed:4.0``.

``DCLOUD_BENCH_RESULTS=<dir>`` sends the JSON files and ``results.md`` to that folder
instead (``make bench-quick`` in CI uses it, so the committed figures stay as measured).
``DCLOUD_BENCH_SIZE=quick|full`` names the sizes in each section's provenance line
(``tools/bench.sh`` sets it; otherwise ``--quick`` on the command line means quick).

Rows are dicts of JSON-serialisable values; columns default to the keys of the rows in
first-seen order.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "bench_sizes",
    "format_table",
    "git_commit",
    "machine",
    "print_table",
    "write_results",
    "write_run_summary",
]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "results.md"


def _columns(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        a = abs(value)
        if value != value:  # NaN
            return "-"
        if a >= 1000:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 0.001 or a == 0:
            return f"{value:.4g}"
        return f"{value:.2e}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    """Render ``rows`` as a Markdown table with aligned columns."""
    cols = _columns(rows, columns)
    body = [[_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for r in body:
        lines.append("| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def print_table(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    columns: Iterable[str] | None = None,
) -> None:
    """Print ``rows`` as a table, under ``title`` if given."""
    if title:
        print(f"\n{title}")
    print(format_table(rows, columns))


def git_commit() -> str:
    """Short hash of HEAD, with ``-dirty`` when tracked files differ; ``unknown`` if no git."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """CPU model, logical cores, OS and Python version of this machine."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def bench_sizes() -> str:
    """``quick`` or ``full``: ``$DCLOUD_BENCH_SIZE``, else whether ``--quick`` was passed."""
    named = os.environ.get("DCLOUD_BENCH_SIZE", "").strip()
    if named:
        return named
    return "quick" if "--quick" in sys.argv[1:] else "full"


def _destination() -> tuple[Path, Path]:
    """The results folder and ``results.md`` (``$DCLOUD_BENCH_RESULTS`` when set)."""
    out = os.environ.get("DCLOUD_BENCH_RESULTS")
    if out:
        return Path(out), Path(out) / "results.md"
    return RESULTS_DIR, RESULTS_MD


def _provenance(size: str) -> str:
    m = machine()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Run {stamp}, commit `{git_commit()}`, {m['cpu']} ({m['cores']} cores), "
        f"{m['os']}, Python {m['python']}; {size} sizes."
    )


_HEADER = "# Benchmark results\n\nWritten by `bench/report.py`; one section per bench.\n"


def _put_section(results_md: Path, name: str, body: list[str], *, top: bool = False) -> None:
    """Replace the ``name`` section of ``results_md``, or add it (at the end, or on top)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = "\n".join([start, *body, end])
    text = results_md.read_text(encoding="utf-8") if results_md.exists() else ""
    if not text:
        text = _HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    elif top and text.startswith(_HEADER):
        text = _HEADER + "\n" + section + "\n" + text[len(_HEADER) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    _atomic_write(results_md, text)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_results(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    notes: str = "",
    columns: Iterable[str] | None = None,
    table: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``bench/results/<name>.json`` and the ``<name>`` section of ``bench/results.md``.

    Args:
        name: Bench name, also the JSON file stem (``"matching"`` -> ``matching.json``).
        rows: One dict per table row; written to JSON as a list, unchanged.
        title: Section heading in ``results.md``.
        notes: Free text under the heading (what was compared, parameters, caveats).
        columns: Columns of the Markdown table (default: every key, first-seen order).
        table: Rows shown in the Markdown table, when not all of ``rows`` (the JSON always
            gets every row).

    Returns:
        The path of the JSON file.
    """
    results_dir, results_md = _destination()
    json_path = results_dir / f"{name}.json"
    _atomic_write(json_path, json.dumps(list(rows), indent=2, sort_keys=False) + "\n")
    body = [
        f"## {title}",
        "",
        _provenance(bench_sizes()),
        "",
        *([notes.strip(), ""] if notes.strip() else []),
        format_table(rows if table is None else table, columns),
    ]
    _put_section(results_md, name, body)
    return json_path


def write_run_summary(rows: Sequence[Mapping[str, Any]], *, sizes: str) -> Path:
    """Write the ``run`` section on top of ``results.md``: one row per bench of the run.

    Args:
        rows: ``{"bench", "status", "seconds"}`` per bench, in run order.
        sizes: ``quick`` or ``full``.

    Returns:
        The path of ``results.md``.
    """
    _, results_md = _destination()
    failed = [str(r["bench"]) for r in rows if r.get("status") == "failed"]
    body = [
        "## Last run of every benchmark (`tools/bench.sh`)",
        "",
        _provenance(sizes),
        "",
        *(
            [f"Failed: {', '.join(failed)}; their sections below are from an earlier run.", ""]
            if failed
            else []
        ),
        format_table(rows, ["bench", "status", "seconds"]),
    ]
    _put_section(results_md, "run", body, top=True)
    return results_md


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark results helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="write the summary of a tools/bench.sh run")
    run.add_argument("--sizes", default="full", choices=["quick", "full"])
    run.add_argument("results", nargs="*", metavar="NAME:STATUS:SECONDS")
    args = parser.parse_args(argv)
    rows = []
    for item in args.results:
        name, status, seconds = item.split(":")
        rows.append({"bench": name, "status": status, "seconds": round(float(seconds), 1)})
    print(f"summary: {write_run_summary(rows, sizes=args.sizes)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
