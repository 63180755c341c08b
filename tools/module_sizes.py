"""Fail when a Python module outside tests is longer than the house limit (`make lint`).

Usage: ``python tools/module_sizes.py [--max 500] protocol marketplace agents bench``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max", type=int, default=500, help="most lines a module may have")
    parser.add_argument(
        "folders", nargs="*", default=["protocol", "marketplace", "agents", "bench"]
    )
    args = parser.parse_args()
    long = []
    for folder in args.folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > args.max:
                long.append((path.relative_to(ROOT), lines))
    for path, lines in long:
        print(f"{path}: {lines} lines (limit {args.max}): split it by concept")
    if long:
        return 1
    print(f"every module in {', '.join(args.folders)} is at most {args.max} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
