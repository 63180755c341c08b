"""Provider reputation from history: a beta-reputation score scaled by uptime.

``score = (1 + completed) / (2 + completed + failed + 3 * slashed)`` is the mean of a
Beta(1 + completed, 1 + failed + 3 * slashed) belief that the provider delivers: a new
provider starts at 0.5, each completed job raises it, a failure lowers it, and a slash
(proven no-show or wrong result) counts three times as much as a failure. The result is
multiplied by ``0.5 + 0.5 * uptime`` so a provider that misses heartbeats ranks lower.
Everything is in [0, 1]; higher is better.

Storage nodes use the same score: shards served intact and answered audit challenges
count as completed, unreachable shards as failed, corrupt shards and audits slashed on
chain for a missed challenge as slashed (``marketplace.storage.nodes.reputation_of``).
"""

from __future__ import annotations

SLASH_WEIGHT = 3


def beta_score(*, completed: int, failed: int, slashed: int) -> float:
    """Mean of the beta belief that the next job completes."""
    return (1 + completed) / (2 + completed + failed + SLASH_WEIGHT * slashed)


def uptime(*, heartbeats: int, registered_at: float, now: float, interval_s: float) -> float:
    """Heartbeats received over heartbeats expected since registration, in [0, 1]."""
    expected = max(1.0, (now - registered_at) / interval_s)
    return min(1.0, max(0.0, heartbeats / expected))


def reputation(*, completed: int, failed: int, slashed: int, uptime_ratio: float) -> float:
    """Beta score scaled by uptime; in [0, 1]."""
    return beta_score(completed=completed, failed=failed, slashed=slashed) * (
        0.5 + 0.5 * min(1.0, max(0.0, uptime_ratio))
    )
