"""Front-end files the dashboard serves from npm packages, copied next to its own assets.

The machines are offline, so nothing is fetched from a CDN: ``tools/setup.sh`` runs
``python -m marketplace.dashboard`` after ``npm install``, which copies the files
listed in :data:`VENDOR` from ``node_modules`` into ``static/vendor/`` (ignored by git).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"

# served name -> file inside node_modules
VENDOR: dict[str, str] = {
    "ethers.min.js": "ethers/dist/ethers.min.js",
    "topojson-client.min.js": "topojson-client/dist/topojson-client.min.js",
    "countries-110m.json": "world-atlas/countries-110m.json",
}


def missing() -> list[str]:
    """Vendor files not yet copied (empty when the dashboard is ready to serve)."""
    return [name for name in VENDOR if not (VENDOR_DIR / name).is_file()]


def copy(node_modules: Path = ROOT / "node_modules") -> list[Path]:
    """Copy every vendor file from `node_modules`; return the copied paths."""
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    out = []
    for name, source in VENDOR.items():
        src = node_modules / source
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing: run `npm install` in {ROOT}")
        dst = VENDOR_DIR / name
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def main() -> int:
    try:
        copied = copy()
    except FileNotFoundError as exc:
        print(f"dashboard assets: {exc}", file=sys.stderr)
        return 1
    print(f"dashboard assets: {len(copied)} files in {VENDOR_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
