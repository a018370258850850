"""The build: an ordered registry of table builders, and the thin edge that runs and writes them.

:data:`STEPS` lists, in order, one :class:`Step` per warehouse table: the model table it
fills and the pure Ibis function that builds it (:mod:`paymodel.olap.transforms`). A
step's inputs are the names of its function's parameters: staged OLTP tables, the event
history, the FX factors, the calendar, or tables built by earlier steps; ``params``
receives the :class:`~paymodel.olap.transforms.BuildParams`. Other layers append their
own steps (:func:`register`) without touching these.

:func:`build_warehouse` runs every step on one engine (DuckDB, PostgreSQL or Spark),
creates the warehouse DDL from the model (Ibis cannot declare keys) and inserts the
rows; :func:`update_warehouse` moves an existing warehouse to a later as-of time by
recomputing only the customers the change touched, and gives the same rows as a full
build to that time.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot.expressions as sge
from ibis.backends import BaseBackend
from tqdm import tqdm

from paymodel.model.core import Model
from paymodel.model.core import Table as ModelTable
from paymodel.model.sql import table_statements
from paymodel.model.warehouse import WAREHOUSE
from paymodel.olap import staging
from paymodel.olap import transforms as T
from paymodel.olap.pii import PIIKey

__all__ = [
    "ENGINES",
    "STEPS",
    "BuildReport",
    "Step",
    "TableReport",
    "build_warehouse",
    "register",
    "update_warehouse",
]

ENGINES = ("duckdb", "postgres", "pyspark")


@dataclass(frozen=True)
class Step:
    """One warehouse table and the pure Ibis function that builds it.

    Attributes:
        table: the model table (its name, columns and keys).
        build: ``(**inputs, params) -> ir.Table``; its parameter names are its inputs.
        shared: a small table every update rebuilds whole (calendar, currencies,
            catalogue) rather than per changed customer.
        model: the model declaring the table (its DDL is created from it).
        whole: a table derived from whole warehouse tables (a mart): an update rebuilds it
            from the updated warehouse and replaces its rows.
        per_customer: for a ``whole`` table, whether a customer's rows follow from that
            customer's rows of its inputs alone (``customer_id`` in each input that has
            one), as an MRR movement or an invoice's details do and a bridge (a sum over
            customers) does not. An update then recomputes only the changed customers'
            rows, from their rows of the updated warehouse, and replaces those.
    """

    table: ModelTable
    build: Callable[..., ir.Table]
    shared: bool = False
    model: Model = WAREHOUSE
    whole: bool = False
    per_customer: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(p for p in inspect.signature(self.build).parameters if p != "params")


def _steps(model: Model, shared: set[str]) -> list[Step]:
    return [
        Step(model.table(name), getattr(T, name), name in shared)
        for name in model.table_names
        if name != "warehouse_builds"
    ]


STEPS: list[Step] = _steps(
    WAREHOUSE,
    {"dim_date", "dim_currency", "dim_geography", "dim_product", "dim_price", "dim_price_snowflake",
     "dim_payment_outcome"},
)  # fmt: skip
"""The warehouse's builders in dependency order. Append to extend the build."""


def register(step: Step, *, after: str | None = None) -> None:
    """Add a step to :data:`STEPS` (at the end, or right after the step of table ``after``)."""
    if any(s.table.name == step.table.name for s in STEPS):
        raise ValueError(f"a step already builds {step.table.name}")
    if after is None:
        STEPS.append(step)
    else:
        i = next(i for i, s in enumerate(STEPS) if s.table.name == after)
        STEPS.insert(i + 1, step)


@dataclass
class TableReport:
    """Rows and time of one table in one build."""

    table: str
    rows: int
    seconds: float


@dataclass
class BuildReport:
    """What a build or an update did."""

    mode: str
    engine: str
    as_of: datetime
    previous_as_of: datetime | None
    reporting_currency: str
    pii_key_source: str
    changed_customers: int | None = None
    tables: list[TableReport] = field(default_factory=list)
    staging_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def rows(self) -> dict[str, int]:
        return {t.table: t.rows for t in self.tables}

    def __str__(self) -> str:
        head = (
            f"paymodel olap: {self.mode} build on {self.engine}, as of {self.as_of.isoformat()}"
            + (f" (from {self.previous_as_of.isoformat()}, {self.changed_customers:,} customers "
               "changed)" if self.previous_as_of else "")
            + f", reporting currency {self.reporting_currency}; PII hashed with {self.pii_key_source}"
        )  # fmt: skip
        lines = [f"  {t.table:32} {t.rows:>10,} rows {t.seconds:7.2f} s" for t in self.tables]
        tail = f"  staging {self.staging_seconds:.2f} s; total {self.seconds:.2f} s"
        return "\n".join([head, *lines, tail])


# --- engines ---------------------------------------------------------------------------------


def _is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://")) or "dbname=" in target


class _Engine:
    """Where the transforms run, and how inputs and results are staged there."""

    def __init__(self, name: str, con: BaseBackend, owns: bool) -> None:
        self.name, self.con, self.owns = name, con, owns
        self.created: list[str] = []

    def stage(self, name: str, data: pa.Table | ir.Table) -> ir.Table:
        """Put ``data`` on the engine as table ``name`` (temporary) and return it."""
        if isinstance(data, ir.Table):
            data = data.to_pyarrow()
        # every staged column nullable: engines would otherwise differ in NOT NULL flags
        data = data.cast(pa.schema([f.with_nullable(True) for f in data.schema]))
        if self.name == "pyspark":
            # Spark 4 reads Arrow directly (Ibis's memtable path goes through pandas and
            # fails on NULL decimals)
            session = self.con._session
            session.createDataFrame(data).createOrReplaceTempView(name)
            session.catalog.cacheTable(name)
            self.created.append(name)
            return self.con.table(name)
        self.created.append(name)
        return self.con.create_table(name, data, temp=True, overwrite=True)

    def materialise(self, name: str, expr: ir.Table) -> ir.Table:
        """Compute ``expr`` once into a temporary table (a cached view on Spark)."""
        if self.name == "pyspark":
            view = self.con.create_view(name, expr, overwrite=True)
            self.con._session.catalog.cacheTable(name)
            self.created.append(name)
            return view
        self.created.append(name)
        return self.con.create_table(name, expr, temp=True, overwrite=True)

    def close(self) -> None:
        if self.name == "pyspark":
            for name in self.created:
                self.con._session.catalog.dropTempView(name)
        else:
            for name in reversed(self.created):
                self.con.raw_sql(f"DROP TABLE IF EXISTS {_q(name, self.con)}")
        if self.owns:
            self.con.disconnect()


def _q(name: str, con: BaseBackend) -> str:
    dialect = "postgres" if con.name == "postgres" else con.name
    return sge.to_identifier(name, quoted=True).sql(dialect=dialect)


@contextmanager
def _engine(
    name: str, out: BaseBackend, oltp: BaseBackend, out_target: str, spark_session: object | None
) -> Iterator[_Engine]:
    if name not in ENGINES:
        raise ValueError(f"engine {name!r}: expected one of {', '.join(ENGINES)}")
    if name == "duckdb":
        eng = _Engine(name, out, False) if out.name == "duckdb" else _Engine(name, ibis.duckdb.connect(), True)
    elif name == "postgres":
        if out.name == "postgres":
            eng = _Engine(name, out, False)
        elif oltp.name == "postgres":
            eng = _Engine(name, oltp, False)
        else:
            raise ValueError(
                f"--engine postgres needs the OLTP or the warehouse ({out_target}) on PostgreSQL"
            )
    else:
        from paymodel.olap.spark import local_session

        session = spark_session if spark_session is not None else local_session()
        eng = _Engine(name, ibis.pyspark.connect(session), False)
    try:
        yield eng
    finally:
        eng.close()


# --- writing ---------------------------------------------------------------------------------


def _create_warehouse(out: BaseBackend, model: Model, tables: Sequence[str]) -> None:
    """Drop the warehouse's tables (children first) and create them from the model's DDL."""
    dialect = "postgresql" if out.name == "postgres" else "duckdb"
    for name in reversed(model.table_names):
        if name in tables:
            out.raw_sql(f"DROP TABLE IF EXISTS {_q(name, out)}" + (" CASCADE" if dialect == "postgresql" else ""))
    wanted = set(tables)
    by_table = {t.name: t for t in model.tables}
    for name, stmts in table_statements(model, dialect).items():
        if name in wanted and name in by_table:
            for stmt in stmts:
                out.raw_sql(stmt)


def _rows(con: BaseBackend, name: str) -> int:
    return int(con.table(name).count().execute())


_REFERENCED = {fk.table for t in WAREHOUSE.tables for fk in t.all_foreign_keys}


def _upsert(out: BaseBackend, table: ModelTable, new: str) -> int:
    """Update rows of ``table`` that differ from ``new`` (same primary key) and insert the others.

    Only columns outside every key are updated in a table that others refer to: DuckDB
    turns an UPDATE that touches an indexed column into a delete and an insert, which
    fails while facts refer to the row. A change of such a key column (which the build's
    rules never make) is refused. Facts, which nothing refers to, update freely (an
    accumulating snapshot fills its milestone dates).
    """
    q = lambda n: _q(n, out)  # noqa: E731
    pk = table.primary_key
    keyed = {c for key in table.unique_keys for c in key}
    if table.name in _REFERENCED:  # DuckDB refuses to touch indexed columns of a referenced row
        keyed |= {c for fk in table.all_foreign_keys for c in fk.columns}
    rest = [c for c in table.column_names if c not in pk and c not in keyed]
    t, n = q(table.name), q(new)
    match = " AND ".join(f"{t}.{q(c)} = n.{q(c)}" for c in pk)
    moved = " OR ".join(f"{t}.{q(c)} IS DISTINCT FROM n.{q(c)}" for c in sorted(keyed - set(pk)))
    if moved and _count_sql(out, f"SELECT count(*) FROM {t} JOIN {n} AS n ON {match} WHERE {moved}"):
        raise ValueError(f"{table.name}: an update would change key columns of existing rows; rebuild")
    differs = " OR ".join(f"{t}.{q(c)} IS DISTINCT FROM n.{q(c)}" for c in rest) or "FALSE"
    changed = _count_sql(out, f"SELECT count(*) FROM {t} JOIN {n} AS n ON {match} WHERE {differs}")
    if changed:
        sets = ", ".join(f"{q(c)} = n.{q(c)}" for c in rest)
        out.raw_sql(f"UPDATE {t} SET {sets} FROM {n} AS n WHERE {match} AND ({differs})")
    cols = ", ".join(q(c) for c in table.column_names)
    exists = f"SELECT 1 FROM {t} WHERE {match}"
    inserted = _count_sql(out, f"SELECT count(*) FROM {n} AS n WHERE NOT EXISTS ({exists})")
    if inserted:
        out.raw_sql(
            f"INSERT INTO {t} ({cols}) SELECT {', '.join('n.' + q(c) for c in table.column_names)} "
            f"FROM {n} AS n WHERE NOT EXISTS ({exists})"
        )
    return changed + inserted


def _count_sql(con: BaseBackend, sql: str) -> int:
    result = con.raw_sql(sql)
    row = result.fetchone()
    if con.name == "postgres":  # a cursor; DuckDB returns its connection, which must stay open
        result.close()
    return int(row[0])


# --- the build -------------------------------------------------------------------------------


def _resolve_as_of(oltp: BaseBackend, as_of: datetime | str | None) -> datetime:
    if as_of is None:
        return staging.default_as_of(oltp)
    if isinstance(as_of, str):
        as_of = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)


def _inputs(
    oltp: BaseBackend,
    params: T.BuildParams,
    pii_key: PIIKey,
    customers: ir.Table | None,
    since: datetime | None = None,
) -> dict[str, pa.Table]:
    """Every staged input of the steps, as Arrow tables read from the OLTP database."""
    tables = staging.oltp_tables(oltp, params.as_of, customers, since)
    data = {name: expr.to_pyarrow() for name, expr in tables.items()}
    data["customer_pii"] = staging.customer_pii(oltp, pii_key, tables["customers"])
    first, last = staging.calendar_span(data["fx_rates"])
    data["calendar"] = staging.calendar(first, last)
    data["fx_factors"] = staging.fx_factors(
        data["fx_rates"], data["currencies"], params.reporting_currency,
        data["calendar"].column("date").to_pylist(),
    )  # fmt: skip
    return data


def _run(
    eng: _Engine,
    out: BaseBackend,
    data: Mapping[str, pa.Table],
    params: T.BuildParams,
    steps: Sequence[Step],
    *,
    upsert: bool,
    progress: bool,
) -> tuple[list[TableReport], float]:
    t0 = time.perf_counter()
    ns: dict[str, ir.Table] = {}
    for name, arrow in data.items():
        ns[name] = eng.stage(f"olap_stg_{name}", arrow)
    ns["subscription_history"] = eng.materialise(
        "olap_tmp_subscription_history",
        T.subscription_history(ns["subscription_item_events"], ns["subscriptions"], ns["subscription_items"]),
    )
    staging_seconds = time.perf_counter() - t0
    reports = []
    bar = tqdm(steps, desc="paymodel olap", unit="table", disable=not progress, leave=False)
    for step in bar:
        bar.set_postfix_str(step.table.name)
        s0 = time.perf_counter()
        missing = [i for i in step.inputs if i not in ns]
        if missing:
            raise ValueError(f"step {step.table.name}: inputs {missing} are not built before it")
        inputs = ns
        if upsert and step.whole:  # from the updated warehouse, not the changed customers only
            inputs = {**ns, **{i: _whole(eng, out, i) for i in step.inputs if i in _written(steps)}}
            if step.per_customer:  # ... or its rows of the changed customers, for such a mart
                ids = ns["customers"].id  # the staged customers are the changed ones
                inputs = {i: (t.filter(t.customer_id.isin(ids)) if i in _written(steps)
                              and "customer_id" in t.columns else t)
                          for i, t in inputs.items()}  # fmt: skip
        expr = step.build(**{i: inputs[i] for i in step.inputs},
                          **({"params": params} if "params" in inspect.signature(step.build).parameters else {}))  # fmt: skip
        expr = T.conform(expr, step.table)
        ns[step.table.name], n = _write(eng, out, step, expr, upsert=upsert, changed=ns["customers"])
        reports.append(TableReport(step.table.name, n, time.perf_counter() - s0))
        if progress:
            tqdm.write(f"{step.table.name:32} {n:>10,} rows {reports[-1].seconds:7.2f} s")
    bar.close()
    return reports, staging_seconds


def _write(
    eng: _Engine, out: BaseBackend, step: Step, expr: ir.Table, *, upsert: bool,
    changed: ir.Table | None = None,
) -> tuple[ir.Table, int]:
    """Compute a step's rows and write them into the warehouse.

    ``changed``: an update's staged changed customers (their OLTP rows, ``id``).

    Returns the table later steps read as this step's result, and the rows the warehouse
    table now has (a full build, a mart) or that changed (an update).
    """
    name = step.table.name
    same = eng.con is out
    if same and (not upsert or (step.whole and not step.per_customer)):
        # computed once, straight into the warehouse's table (by an update, a whole mart's
        # table made anew: its inputs are other tables, and nothing refers to a mart;
        # DuckDB deletes indexed rows slowly, 1.0 s for 48,669 and 1.3 s more to insert)
        if upsert:
            _create_warehouse(out, step.model, [name])
        out.insert(name, expr)
        return _whole(eng, out, name), _rows(out, name)
    built = eng.materialise(f"olap_tmp_{name}", expr)
    if upsert and step.whole and step.per_customer:  # the changed customers' rows replaced
        # (deleted first: a customer's row may be gone, a month whose MRR went back to 0)
        ids = "olap_changed_customers"
        assert changed is not None, "an update stages the changed customers"
        out.create_table(ids, changed.select(customer_id="id").to_pyarrow(), temp=True, overwrite=True)
        out.raw_sql(f"DELETE FROM {_q(name, out)} WHERE customer_id IN "
                    f"(SELECT customer_id FROM {_q(ids, out)})")  # fmt: skip
        out.insert(name, built if same else built.to_pyarrow())
        return built, int(built.count().execute())
    if upsert and step.whole:
        out.raw_sql(f"DELETE FROM {_q(name, out)}")
        out.insert(name, built if same else built.to_pyarrow())
        return built, _rows(out, name)
    if upsert:  # the changed rows: on the warehouse's own engine, the step's temporary table
        new = f"olap_tmp_{name}" if same else f"olap_new_{name}"
        if not same:
            out.create_table(new, built.to_pyarrow(), temp=True, overwrite=True)
        n = _upsert(out, step.table, new) if _rows(out, new) else 0
        if not same:
            out.raw_sql(f"DROP TABLE IF EXISTS {_q(new, out)}")
        return built, n
    out.insert(name, built.to_pyarrow())
    return built, _rows(out, name)


def _written(steps: Sequence[Step]) -> set[str]:
    return {s.table.name for s in steps}


def _whole(eng: _Engine, out: BaseBackend, name: str) -> ir.Table:
    """The warehouse table ``name`` as written, on the engine the transforms run on."""
    if eng.con is not out:
        return eng.stage(f"olap_whole_{name}", out.table(name).to_pyarrow())
    # As staged inputs are: every column nullable, or a union with the changed customers'
    # rows would fail on NOT NULL flags (string != !string).
    table = out.table(name)
    return table.cast({c: table[c].type().copy(nullable=True) for c in table.columns})


def _log_build(out: BaseBackend, report: BuildReport, params: T.BuildParams) -> None:
    builds = out.table("warehouse_builds")
    number = int(builds.count().execute()) + 1
    row = {
        "build_number": [number],
        "mode": [report.mode],
        "as_of": [report.as_of],
        "previous_as_of": [report.previous_as_of],
        "reporting_currency": [params.reporting_currency],
        "fiscal_year_start_month": [params.fiscal_year_start_month],
        "engine": [report.engine],
        "changed_customers": [report.changed_customers],
        "rows_written": [sum(t.rows for t in report.tables)],
        "built_at": [datetime.now(UTC)],
    }
    schema = T.conform(ibis.memtable(pa.table(row)), WAREHOUSE.table("warehouse_builds")).schema()
    out.insert("warehouse_builds", pa.table(row, schema=schema.to_pyarrow()))


def build_warehouse(
    oltp: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    pii_key: PIIKey,
    engine: str = "duckdb",
    as_of: datetime | str | None = None,
    reporting_currency: str = "usd",
    fiscal_year_start_month: int = 1,
    progress: bool = False,
    spark_session: object | None = None,
    models: Collection[str] | None = None,
) -> BuildReport:
    """Build the warehouse from an OLTP database into ``out`` (a DuckDB file or PostgreSQL URL).

    Every warehouse table is dropped and rebuilt: the DDL comes from the model, then the
    rows of each step are inserted. ``as_of`` (default: the latest instant in the OLTP)
    says which time the warehouse describes.

    Args:
        oltp: the OLTP database (DuckDB file or ``postgresql://`` URL), read only.
        out: the warehouse database (created if a DuckDB file does not exist).
        pii_key: from :func:`paymodel.olap.pii.resolve_pii_key`.
        engine: ``duckdb``, ``postgres`` or ``pyspark`` runs the transforms.
        spark_session: a SparkSession to use with ``pyspark`` (default: a local one).
        models: names of the models whose registered steps run (``{"warehouse"}``: the
            star alone, without the marts); ``None``, every step of :data:`STEPS`.
    """
    return _build(oltp, out, pii_key=pii_key, engine=engine, as_of=as_of,
                  reporting_currency=reporting_currency, fiscal_year_start_month=fiscal_year_start_month,
                  progress=progress, spark_session=spark_session, incremental=False,
                  models=models)  # fmt: skip


def update_warehouse(
    oltp: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    pii_key: PIIKey,
    engine: str = "duckdb",
    as_of: datetime | str | None = None,
    progress: bool = False,
    spark_session: object | None = None,
) -> BuildReport:
    """Move a built warehouse forward to ``as_of``, recomputing only what changed.

    The customers touched between the last build's as-of time and ``as_of``
    (:func:`paymodel.olap.staging.changed_customers`) are read and rebuilt, and their
    rows updated or inserted; the small shared dimensions are rebuilt whole. The marts
    are computed from the updated star: the ``per_customer`` ones for the changed
    customers only, the others whole (a bridge or a cohort table sums over all customers).
    The update refreshes the tables the warehouse holds: a star built without its marts
    (``build_warehouse(models={"warehouse"})``) is updated without them. The result
    equals :func:`build_warehouse` to ``as_of`` with the same parameters (reporting
    currency and fiscal year come from the last build).
    """
    return _build(oltp, out, pii_key=pii_key, engine=engine, as_of=as_of, reporting_currency=None,
                  fiscal_year_start_month=None, progress=progress, spark_session=spark_session,
                  incremental=True)  # fmt: skip


def _build(
    oltp_target: str | os.PathLike[str],
    out_target: str | os.PathLike[str],
    *,
    pii_key: PIIKey,
    engine: str,
    as_of: datetime | str | None,
    reporting_currency: str | None,
    fiscal_year_start_month: int | None,
    progress: bool,
    spark_session: object | None,
    incremental: bool,
    models: Collection[str] | None = None,
) -> BuildReport:
    start = time.perf_counter()
    oltp_target, out_target = os.fspath(oltp_target), os.fspath(out_target)
    if oltp_target == out_target:
        raise ValueError(f"{out_target}: the warehouse must be another database than the OLTP")
    oltp = staging.connect(oltp_target, read_only=True)
    out = staging.connect(out_target)
    try:
        when = _resolve_as_of(oltp, as_of)
        previous = None
        if incremental:
            last = _last_build(out, out_target)
            previous = last["as_of"]
            reporting_currency = last["reporting_currency"]
            fiscal_year_start_month = last["fiscal_year_start_month"]
            if when < previous:
                raise ValueError(
                    f"{out_target}: built as of {previous.isoformat()}; an update cannot go back "
                    f"to {when.isoformat()} (rebuild instead)"
                )
        assert reporting_currency is not None
        assert fiscal_year_start_month is not None
        params = T.BuildParams(when, reporting_currency.lower(), fiscal_year_start_month)
        customers = None
        if incremental and previous is not None:
            # computed once: every customer-owned table is then filtered by this list
            changed_ids = staging.changed_customers(oltp, previous, when).to_pyarrow()
            customers = ibis.memtable(changed_ids)
        data = _inputs(oltp, params, pii_key, customers, previous)
        changed = data["customers"].num_rows if customers is not None else None
        steps = [s for s in STEPS if models is None or s.model.name in models]
        if incremental:  # an update refreshes the tables the warehouse holds (the star alone,
            # or the star and its marts), as its last full build made them
            present = set(out.list_tables())
            steps = [s for s in steps if s.table.name in present]
        if not steps:
            raise ValueError(f"no registered step belongs to the models {sorted(models or ())}")
        if not incremental:
            _create_warehouse(out, WAREHOUSE, WAREHOUSE.table_names)
            others = {id(s.model): s.model for s in steps if s.model is not WAREHOUSE}
            for model in others.values():  # tables other layers registered (the marts)
                _create_warehouse(out, model, [s.table.name for s in steps if s.model is model])
        report = BuildReport(
            "incremental" if incremental else "full", engine, when, previous,
            params.reporting_currency, pii_key.source, changed,
        )  # fmt: skip
        with _engine(engine, out, oltp, out_target, spark_session) as eng:
            report.tables, report.staging_seconds = _run(
                eng, out, data, params, steps, upsert=incremental, progress=progress
            )
        _log_build(out, report, params)
        report.seconds = time.perf_counter() - start
        return report
    finally:
        if out is not oltp:
            out.disconnect()
        oltp.disconnect()


def _last_build(out: BaseBackend, target: str) -> dict:
    if "warehouse_builds" not in out.list_tables():
        raise ValueError(f"{target}: no warehouse to update (run a full build first)")
    builds = out.table("warehouse_builds")
    rows = builds.order_by(ibis.desc(builds.build_number)).limit(1).to_pyarrow().to_pylist()
    if not rows:
        raise ValueError(f"{target}: no warehouse to update (run a full build first)")
    row = rows[0]
    row["as_of"] = staging._utc(row["as_of"])
    return row
