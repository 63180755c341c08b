"""A throwaway PostgreSQL server for tests: Debian's packages, started by hand on loopback.

Import the fixtures into a test module (pytest does not load this file by itself)::

    from tests.marketplace.pg import postgres_server, postgres_url  # noqa: F401

``postgres_server`` (session) is :func:`bench.scalesim.postgres.running`: it installs
PostgreSQL with apt-get when ``initdb``/``pg_ctl`` are missing, creates a cluster in a
temporary folder owned by the ``postgres`` user (PostgreSQL refuses to run as root), starts
it on 127.0.0.1 on a free port with its unix socket in that folder, and at the end stops it
(``pg_ctl stop -m fast``) and removes the folder. ``postgres_url`` (function) is a fresh,
empty database on that server for each test. When PostgreSQL can be neither found nor
installed, the tests fail and say why.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from bench.scalesim.postgres import PostgresError, PostgresServer, running

__all__ = ["PostgresServer", "postgres_server", "postgres_url"]

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (see the module docstring)."""
    try:
        with running() as server:
            yield server
    except PostgresError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server, as a SQLAlchemy URL."""
    return postgres_server.create_database(f"dcloud_test_{os.getpid()}_{next(_names)}")
