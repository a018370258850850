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
from paymodel.model.core import SUBJECT_AREAS
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


def _with_committed_svgs(out):
    """``write_schemas`` cannot render SVGs (that needs Chromium): copy the committed ones."""
    for svg in SCHEMAS_DIR.glob("*.svg"):
        shutil.copy(svg, out / svg.name)


def test_check_names_the_stale_file_and_exits_non_zero(tmp_path, capsys):
    out = tmp_path / "schemas"
    write_schemas(out)
    _with_committed_svgs(out)
    assert main(["schemas", "--check", "--out", str(out)]) == 0
    ddl_file = out / "oltp.duckdb.sql"
    ddl_file.write_text(ddl_file.read_text() + "-- hand edit\n")
    (out / "oltp_payments.mmd").unlink()
    assert main(["schemas", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "oltp.duckdb.sql: stale" in err
    assert "oltp_payments.mmd: missing" in err
    assert main(["schemas", "--out", str(out)]) == 0
    assert check_schemas(out).ok


def test_check_reports_generated_files_the_model_no_longer_produces(tmp_path):
    write_schemas(tmp_path)
    _with_committed_svgs(tmp_path)
    shutil.copy(tmp_path / "oltp_payments.mmd", tmp_path / "oltp_old_view.mmd")
    shutil.copy(tmp_path / "oltp_payments.svg", tmp_path / "oltp_old_view.svg")
    assert check_schemas(tmp_path).orphaned == ("oltp_old_view.mmd", "oltp_old_view.svg")


def test_check_fails_when_an_svg_does_not_show_its_current_mmd(tmp_path):
    """By content, not modification time: the SVG records the hash of the .mmd it shows."""
    write_schemas(tmp_path)
    _with_committed_svgs(tmp_path)
    assert check_schemas(tmp_path).ok, check_schemas(tmp_path).messages()
    mmd = tmp_path / "oltp_payments.mmd"
    mmd.write_text(mmd.read_text().replace('"funds"', '"pays for"'))
    result = check_schemas(tmp_path)
    assert result.stale == ("oltp_payments.mmd",)
    assert result.diagrams == (
        "oltp_payments.mmd: oltp_payments.svg was rendered from another version of "
        "oltp_payments.mmd; run `make diagrams`",
    )
    (tmp_path / "oltp_conceptual.svg").unlink()
    assert any("oltp_conceptual.svg is missing" in m for m in check_schemas(tmp_path).diagrams)


def test_every_mermaid_file_has_a_rendered_svg_that_is_an_image():
    for mmd in SCHEMAS_DIR.glob("*.mmd"):
        svg = (SCHEMAS_DIR / f"{mmd.stem}.svg").read_text()
        assert svg.lstrip().startswith("<svg"), mmd.name
        assert "<foreignObject" not in svg, f"{mmd.stem}.svg: labels must be SVG text"


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
    assert 'customers ||--o{ subscriptions : "holds"' in text  # required FK
    assert 'payment_intents |o--o{ charges : "is attempted by"' in text  # nullable FK
    assert 'customers ||--o| customer_addresses : "lives at"' in text  # FK that is the PK: 1:1
    full = er_diagram(OLTP)
    assert "        id id PK\n" in full
    assert '        text email "nullable; PII direct"' in full


def test_every_table_belongs_to_a_subject_area_and_each_area_has_its_diagram():
    assert all(t.subject_area in SUBJECT_AREAS for t in OLTP.tables), [
        t.name for t in OLTP.tables if t.subject_area not in SUBJECT_AREAS
    ]
    files = render_schemas()
    for area in {t.subject_area for t in OLTP.tables}:
        text = files[f"oltp_{area}.mmd"]
        for table in OLTP.tables:
            assert (f"    {table.name} {{" in text) == (table.subject_area == area), (area, table)


def test_no_table_floats_unconnected_in_its_subject_area_diagram():
    files = render_schemas()
    for table in OLTP.tables:
        edges = [line for line in files[f"oltp_{table.subject_area}.mmd"].splitlines()
                 if " : " in line and table.name in line.split(" : ")[0].split()]  # fmt: skip
        assert edges, f"{table.name} has no relationship in its subject area's diagram"


def test_mentions_name_tables_of_the_model():
    for table in OLTP.tables:
        for column in table.columns:
            assert column.mentions in (None, *OLTP.table_names), (table.name, column.name)


def test_a_composite_unique_key_is_drawn_as_one_and_engine_limits_stay_out():
    payments = render_schemas()["oltp_payments.mmd"]
    assert '        id invoice_id FK "unique with payment_intent_id"' in payments
    assert "UK" not in next(line for line in payments.splitlines() if "invoice_id FK" in line)
    for name, text in render_schemas().items():
        if name.endswith(".mmd"):
            assert "PostgreSQL" not in text.split("\n", 1)[1], name


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
