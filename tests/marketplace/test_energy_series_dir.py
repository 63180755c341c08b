"""A marketplace may run on its own price series (DCLOUD_ENERGY_SERIES_DIR)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from marketplace.energy.sources import BundledPriceSource
from marketplace.errors import PriceUnavailableError
from marketplace.service import Service
from marketplace.settings import Settings


def own_series(folder: Path, price: float) -> Path:
    """The bundled files with every price replaced by `price`."""
    data = resources.files("marketplace.energy") / "data"
    for name in ("regions.csv", "carbon.csv"):
        (folder / name).write_text((data / name).read_text())
    rows = list(csv.DictReader((data / "prices.csv").read_text().splitlines()))
    with (folder / "prices.csv").open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        for row in rows:
            out.writerow({**row, "price_eur_mwh": price})
    return folder


def test_a_folder_of_the_same_files_replaces_the_bundled_series(tmp_path: Path) -> None:
    folder = str(own_series(tmp_path, 12.5))
    at = datetime(2026, 12, 5, 3, tzinfo=UTC)
    assert BundledPriceSource(folder=folder).price("DE-FRA", at).price == 12.5
    assert BundledPriceSource().price("DE-FRA", at).price != 12.5
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", energy_series_dir=folder)
    service = Service(settings)
    assert {r.price for r in service.grid.now(at)} == {12.5}


def test_a_folder_without_the_files_says_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(PriceUnavailableError, match=r"regions\.csv, prices\.csv and carbon\.csv"):
        BundledPriceSource(folder=str(tmp_path))
