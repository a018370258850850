"""Shared fixtures: every OLTP test runs on DuckDB and on PostgreSQL.

PostgreSQL comes from ``PAYMODEL_PG_DSN`` if set, else from one embedded server per
pytest(-xdist) worker. Tests never skip when PostgreSQL is unavailable: they fail.

Fixtures:
    pg_server_dsn: DSN of the session's server (its maintenance database; do not write there).
    pg_dsn: DSN of a fresh, empty database, dropped after the test.
    duckdb_engine_: an engine on an empty in-memory DuckDB database.
    pg_engine: an engine on ``pg_dsn``.
    engine: parametrised ``duckdb`` / ``postgres``; an empty database of that kind.
    tmp_build: an empty ``build``-like directory for a test's outputs.
    new_database: makes an empty database of a kind (``duckdb``, ``postgres``) that lasts
        the session, for module- or session-scoped fixtures shared by many cases.
    spark_ibis: an Ibis connection on one local Spark session, shared by the worker.
    pg_ibis: an Ibis connection on ``pg_dsn``.
    ibis_con: parametrised ``duckdb`` / ``postgres``; an Ibis connection on an empty database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ibis
import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict

from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    duckdb_engine,
    fresh_postgres_database,
    postgres_engine,
    temporary_postgres,
)

_POSTGRES_FIXTURES = {"pg_server_dsn", "pg_dsn", "pg_engine", "pg_ibis"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that uses a PostgreSQL fixture."""
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of a running PostgreSQL server, one per xdist worker."""
    with temporary_postgres() as dsn:
        yield dsn


@pytest.fixture
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """DSN of a fresh, empty PostgreSQL database, dropped after the test."""
    dsn = fresh_postgres_database(pg_server_dsn)
    yield dsn
    drop_postgres_database(pg_server_dsn, dsn_database(dsn))


@pytest.fixture
def duckdb_engine_() -> Iterator[sa.Engine]:
    """An engine on an empty in-memory DuckDB database."""
    engine = duckdb_engine()
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_dsn: str) -> Iterator[sa.Engine]:
    """An engine on an empty PostgreSQL database (``pg_dsn``)."""
    engine = postgres_engine(pg_dsn)
    yield engine
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    """An engine on an empty database of each OLTP kind, DuckDB then PostgreSQL."""
    name = "duckdb_engine_" if request.param == "duckdb" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def tmp_build(tmp_path: Path) -> Path:
    """An empty directory standing in for ``build/`` during one test."""
    build = tmp_path / "build"
    build.mkdir()
    return build


@pytest.fixture(scope="session")
def new_database(request: pytest.FixtureRequest) -> Iterator[Callable[[str], sa.Engine]]:
    """A function making an empty database of a kind (``duckdb`` or ``postgres``) for the session.

    Shared schemas keep many small cases cheap: each case then rolls its work back.
    """
    engines: list[sa.Engine] = []

    def make(kind: str) -> sa.Engine:
        if kind == "duckdb":
            engine = duckdb_engine()
        else:
            server = request.getfixturevalue("pg_server_dsn")
            engine = postgres_engine(fresh_postgres_database(server))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="session")
def spark_ibis() -> Iterator[Any]:
    """Ibis on one local Spark session (one core), configured as the build configures it."""
    from paymodel.olap.spark import local_session

    session = local_session(cores=1, app_name="paymodel-tests")
    yield ibis.pyspark.connect(session)
    session.stop()


@pytest.fixture
def pg_ibis(pg_dsn: str) -> Iterator[Any]:
    """Ibis on a fresh PostgreSQL database (``pg_dsn``)."""
    params = conninfo_to_dict(pg_dsn)
    backend = ibis.postgres.connect(
        host=params.get("host"),
        port=int(params.get("port") or 5432),
        user=params.get("user"),
        password=params.get("password"),
        database=params.get("dbname"),
    )
    yield backend
    backend.disconnect()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def ibis_con(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Ibis on an in-memory DuckDB, then on a fresh PostgreSQL database.

    Spark is slow to start and to run small queries: tests take ``spark_ibis`` on purpose.
    """
    if request.param == "postgres":
        yield request.getfixturevalue("pg_ibis")
        return
    backend = ibis.duckdb.connect()
    yield backend
    backend.disconnect()


@pytest.fixture
def second_engine(engine: sa.Engine, request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """Another empty database of the same kind as ``engine``."""
    if engine.dialect.name == "duckdb":
        other = duckdb_engine()
        yield other
        other.dispose()
        return
    server = request.getfixturevalue("pg_server_dsn")
    dsn = fresh_postgres_database(server)
    other = postgres_engine(dsn)
    yield other
    other.dispose()
    drop_postgres_database(server, dsn_database(dsn))
