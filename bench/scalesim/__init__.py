"""The scale bench's parts (``python -m bench.scale``): PostgreSQL, replicas, simulated network."""
