"""The generated files in schemas/ are true to the model, and each DDL runs on its engine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from paymodel.cli import main
from paymodel.model import OLTP
from paymodel.model.mermaid import er_diagram
from paymodel.model.render import GENERATED_MARK, check_schemas, render_schemas, write_schemas
from paymodel.model.sql import ddl
from paymodel.oltp.schema import create_schema, primary_keys
from paymodel.paths import SCHEMAS_DIR

REQUIRED_TABLES = {
    "customers", "products", "prices", "coupons", "discounts", "subscriptions",
    "subscription_items", "invoices", "invoice_line_items", "invoice_payments",
    "payment_methods", "payment_intents", "charges", "refunds", "disputes",
    "balance_transactions", "events",
}  # fmt: skip


def test_committed_schemas_match_the_model():
    """The snapshot test of every renderer: schemas/ equals a fresh rendering."""
    result = check_schemas(SCHEMAS_DIR)
    assert result.ok, "\n".join(result.messages())


_RENDER = (
    "import sys; from paymodel.model.render import render_schemas; "
    "files = render_schemas(); "
    "sys.stdout.buffer.write(b''.join(n.encode() + b'\\0' + t.encode() + b'\\0' "
    "for n, t in sorted(files.items())))"
)


def test_rendering_is_the_same_in_every_process():
    """Two processes with different hash seeds (set and dict order of str) render the same bytes."""
    outputs = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", _RENDER], capture_output=True, env=env, check=True)
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert b"oltp.postgresql.sql" in outputs[0]
    assert len(outputs[0]) > 10_000


_INVENTORY = Path(__file__).parent / "data" / "constraints.txt"
_RULE = re.compile(r"^(check|foreign key) (\w+)[.(]([\w, ]+?)\)?(?::| ->| \[)")


def test_committed_ddl_declares_every_reviewed_rule():
    """Against the reviewed inventory, not a regeneration: a rule deleted from the model and
    from schemas/ together still fails here."""
    ddl_files = {d: (SCHEMAS_DIR / f"oltp.{d}.sql").read_text() for d in ("duckdb", "postgresql")}
    checked = 0
    for line in _INVENTORY.read_text().splitlines():
        match = _RULE.match(line)
        assert match, line
        kind, table, rest = match.groups()
        dialects = re.search(r"\[([\w, ]+)\]", line)
        engines = dialects.group(1).split(", ") if dialects else ["duckdb", "postgresql"]
        name = rest if kind == "check" else f"fk_{table}_{'_'.join(rest.split(', '))}"
        keyword = "CHECK" if kind == "check" else "FOREIGN KEY"
        for dialect in engines:
            assert f"CONSTRAINT {name} {keyword}" in ddl_files[dialect], (dialect, line)
            checked += 1
    assert checked >= 172


def test_every_generated_file_says_so_in_its_first_lines():
    for name, text in render_schemas().items():
        assert GENERATED_MARK in text[:300], name


def test_check_names_the_stale_file_and_exits_non_zero(tmp_path, capsys):
    out = tmp_path / "schemas"
    write_schemas(out)
    assert main(["schemas", "--check", "--out", str(out)]) == 0
    ddl_file = out / "oltp.duckdb.sql"
    ddl_file.write_text(ddl_file.read_text() + "-- hand edit\n")
    (out / "oltp.mmd").unlink()
    assert main(["schemas", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "oltp.duckdb.sql: stale" in err
    assert "oltp.mmd: missing" in err
    assert main(["schemas", "--out", str(out)]) == 0
    assert check_schemas(out).ok


def test_check_reports_generated_files_the_model_no_longer_produces(tmp_path):
    write_schemas(tmp_path)
    shutil.copy(tmp_path / "oltp.mmd", tmp_path / "oltp_old_view.mmd")
    assert check_schemas(tmp_path).orphaned == ("oltp_old_view.mmd",)


def test_console_script_and_module_entry_points():
    out = subprocess.run(
        [sys.executable, "-m", "paymodel", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("schemas", "generate", "ingest", "notebooks"):
        assert command in out.stdout


def test_model_covers_the_required_tables_each_with_a_primary_key():
    assert set(OLTP.table_names) >= REQUIRED_TABLES
    assert all(t.primary_key for t in OLTP.tables)


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql"])
def test_ddl_declares_every_table_and_constraint_kind(dialect):
    text = ddl(OLTP, dialect)
    for table in OLTP.tables:
        assert f"CREATE TABLE {table.name} (" in text
    for kind in ("PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK", "NOT NULL"):
        assert kind in text
    assert "CASCADE" not in text  # DuckDB cannot, and payments data is never cascaded away


def test_ddl_runs_on_its_engine_and_creates_every_table_with_a_primary_key(engine):
    create_schema(engine)
    assert set(sa.inspect(engine).get_table_names()) == set(OLTP.table_names)
    keys = primary_keys(engine)
    for table in OLTP.tables:
        assert keys[table.name] == table.primary_key, table.name
    with engine.connect() as conn:
        jpy = conn.execute(sa.text("select exponent from currencies where code = 'jpy'")).scalar()
    assert jpy == 0


def test_er_diagram_cardinalities_follow_nullability_and_uniqueness():
    text = er_diagram(OLTP, columns=False)
    assert 'customers ||--o{ subscriptions : "subscribes"' in text  # required FK
    assert 'payment_intents |o--o{ charges : "attempts"' in text  # nullable FK
    assert 'customers ||--o| customer_addresses : "lives at"' in text  # FK that is the PK: 1:1
    full = er_diagram(OLTP)
    assert 'text id PK "not null; id"' in full
    assert 'text email "text; PII direct"' in full


def test_the_database_carries_the_data_dictionary_as_comments(engine):
    create_schema(engine)
    query = {
        "duckdb": "select comment from duckdb_columns() "
        "where table_name = 'charges' and column_name = 'amount_refunded'",
        "postgresql": "select col_description('charges'::regclass, "
        "(select attnum from pg_attribute where attrelid = 'charges'::regclass "
        "and attname = 'amount_refunded'))",
    }[engine.dialect.name]
    with engine.connect() as conn:
        comment = conn.execute(sa.text(query)).scalar_one()
    assert comment == OLTP.table("charges").column("amount_refunded").description
