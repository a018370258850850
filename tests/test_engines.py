"""The OLTP engines: one code path, the same behaviour on DuckDB and PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    duckdb_engine,
    fresh_postgres_database,
    postgres_engine,
)


def _create_customers(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE customers (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)")
        )


def test_row_round_trips(engine: sa.Engine) -> None:
    _create_customers(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO customers VALUES (:id, :balance)"),
            {"id": "cus_1", "balance": -250},
        )
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, balance FROM customers")).all()
    assert [tuple(r) for r in rows] == [("cus_1", -250)]


def test_primary_key_is_enforced(engine: sa.Engine) -> None:
    _create_customers(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customers VALUES ('cus_1', 0)"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO customers VALUES ('cus_1', 1)"))


def test_engine_starts_empty(engine: sa.Engine) -> None:
    assert sa.inspect(engine).get_table_names() == []


def test_engine_dialects(duckdb_engine_: sa.Engine, pg_engine: sa.Engine) -> None:
    assert duckdb_engine_.dialect.name == "duckdb"
    assert pg_engine.dialect.name == "postgresql"
    assert pg_engine.dialect.driver == "psycopg"


def test_duckdb_file_database_persists(tmp_path) -> None:
    path = tmp_path / "oltp.duckdb"
    engine = duckdb_engine(path)
    _create_customers(engine)
    engine.dispose()
    engine = duckdb_engine(path)
    assert sa.inspect(engine).get_table_names() == ["customers"]
    engine.dispose()


def test_fresh_databases_are_isolated(pg_server_dsn: str, pg_dsn: str) -> None:
    other_dsn = fresh_postgres_database(pg_server_dsn)
    try:
        assert dsn_database(other_dsn) != dsn_database(pg_dsn)
        first, other = postgres_engine(pg_dsn), postgres_engine(other_dsn)
        _create_customers(first)
        assert sa.inspect(other).get_table_names() == []
        first.dispose()
        other.dispose()
    finally:
        drop_postgres_database(pg_server_dsn, dsn_database(other_dsn))


def test_drop_terminates_sessions_and_removes_database(pg_server_dsn: str) -> None:
    dsn = fresh_postgres_database(pg_server_dsn, "paymodel_drop_me")
    conn = psycopg.connect(dsn)
    try:
        drop_postgres_database(pg_server_dsn, "paymodel_drop_me")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    assert not _database_exists(pg_server_dsn, "paymodel_drop_me")
    drop_postgres_database(pg_server_dsn, "paymodel_drop_me")  # dropping again is a no-op


def _database_exists(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


@pytest.mark.parametrize(
    "name", ["Robert'); DROP TABLE x;--", "1abc", "", "has space", "x" * 64, "UPPER"]
)
def test_database_names_are_validated(name: str) -> None:
    # Validation happens before any connection: no server is needed.
    with pytest.raises(ValueError, match="database name"):
        fresh_postgres_database("postgresql:///nowhere?host=/nonexistent", name)


def test_postgres_engine_accepts_libpq_forms() -> None:
    uri = postgres_engine("postgresql://postgres:@/shop?host=/tmp/sock").url
    keywords = postgres_engine("host=/tmp/sock dbname=shop user=postgres").url
    for url in (uri, keywords):
        assert url.drivername == "postgresql+psycopg"
        assert url.database == "shop"
        assert url.username == "postgres"
        assert url.query["host"] == "/tmp/sock"


def test_postgres_engine_rejects_other_databases() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URI"):
        postgres_engine("mysql://me@localhost/shop")
