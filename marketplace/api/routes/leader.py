"""Which replica leads (the load balancer's check for the leader-only routes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from marketplace.errors import UnavailableError
from marketplace.leader import Leadership

router = APIRouter(tags=["health"])


class LeaderPublic(BaseModel):
    leader: bool = Field(description="always true: a follower answers 503")
    shared_database: bool = Field(description="replicas share a PostgreSQL database")


@router.get(
    "/v1/leader",
    response_model=LeaderPublic,
    responses={503: {"description": "this replica follows (or is starting or stopping)"}},
)
def leader(request: Request) -> LeaderPublic:
    """200 on the replica that runs the leader's work (matching, chain indexer, services
    worker), 503 on the others."""
    leadership: Leadership | None = request.app.state.leadership
    if leadership is None or not leadership.leading:
        raise UnavailableError("this replica follows; another one leads")
    return LeaderPublic(leader=True, shared_database=leadership.shared)
