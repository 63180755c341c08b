"""The marketplace's state: SQLAlchemy 2 models, engine and migrations.

SQLite (a file) by default, PostgreSQL by URL; schema changes go through Alembic
(``marketplace/migrations``), applied by :func:`marketplace.store.db.migrate`.
"""
