"""The renter's own record of each lease it opened for a service, kept in its folder
(``<renter home>/services/<chain id>/<lease id>.json``) beside its jobs' records: the
name, the spec it pushed, the provider and where to reach it. Reads, logs, top-ups and
stops find the lease and the provider here even when the marketplace is away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Records:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, record: dict[str, Any]) -> None:
        path = self.folder / f"{int(record['lease_id'])}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(path)

    def all(self) -> list[dict[str, Any]]:
        """Every record, newest lease first."""
        paths = sorted(self.folder.glob("*.json"), key=lambda p: int(p.stem), reverse=True)
        return [dict(json.loads(p.read_text())) for p in paths]

    def latest(self, name: str) -> dict[str, Any] | None:
        """The newest lease opened for `name`, if any."""
        return next((r for r in self.all() if r["name"] == name), None)

    def by_lease(self, lease_id: int) -> dict[str, Any] | None:
        path = self.folder / f"{lease_id}.json"
        return dict(json.loads(path.read_text())) if path.exists() else None
