"""Alembic environment: runs on the connection ``marketplace.store.db.migrate`` passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from marketplace.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` command line: -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///dcloud-marketplace.db")
    with create_engine(url).begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
