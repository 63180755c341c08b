"""What the gateway's routes answer (pydantic response models) and how an object's
health maps onto them.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel

from agents.storage.files.repair import ObjectHealth

logger = logging.getLogger(__name__)


class HealthSummary(BaseModel):
    state: Literal["healthy", "degraded", "unreadable"]
    min_healthy: int
    """Healthy shards of the worst segment."""
    k: int
    n: int
    degraded_segments: int
    checked_at: float


class SegmentHealthPublic(BaseModel):
    index: int
    healthy: int
    problems: dict[int, str]


class FileHealth(HealthSummary):
    name: str
    segments: list[SegmentHealthPublic]


class FilePublic(BaseModel):
    name: str
    size: int
    created_at: float
    segments: int
    k: int
    n: int
    health: HealthSummary | None
    """None until the first check has finished."""
    problem: str | None = None
    """Why the file's record is unusable (a damaged manifest), else None."""


class UploadPublic(BaseModel):
    name: str
    size: int
    stored: int


class FileList(BaseModel):
    files: list[FilePublic]
    uploads: list[UploadPublic]


class Removed(BaseModel):
    name: str
    deleted: int
    missing: int
    failed: int


class Repaired(BaseModel):
    name: str
    segments_checked: int
    segments_repaired: int
    shards_rebuilt: int
    failures: list[str]
    health: HealthSummary


class GatewayInfo(BaseModel):
    address: str
    marketplace: str | None
    home: str
    k: int
    n: int
    health_every_s: float


def summary(health: ObjectHealth, checked_at: float) -> HealthSummary:
    state: Literal["healthy", "degraded", "unreadable"] = "healthy"
    if not health.readable:
        state = "unreadable"
    elif health.min_healthy < health.n:
        state = "degraded"
    return HealthSummary(
        state=state,
        min_healthy=health.min_healthy,
        k=health.k,
        n=health.n,
        degraded_segments=sum(len(s.healthy) < health.n for s in health.segments),
        checked_at=checked_at,
    )


def details(health: ObjectHealth, checked_at: float) -> FileHealth:
    return FileHealth(
        **summary(health, checked_at).model_dump(),
        name=health.name,
        segments=[
            SegmentHealthPublic(index=s.index, healthy=len(s.healthy), problems=s.problems)
            for s in health.segments
        ],
    )
