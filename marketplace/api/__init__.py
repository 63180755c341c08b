"""The marketplace's HTTP API (FastAPI): `create_app` builds it."""
