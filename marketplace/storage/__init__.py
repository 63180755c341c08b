"""Storage nodes: registration, heartbeats, renters' reports, and shard placement."""
