"""Staged rows reach the engine unchanged, however their text looks (both engines).

DuckDB reads an Arrow chunk directly; PostgreSQL gets it through ``COPY`` of the CSV that
Arrow writes, where an empty string and a NULL, a quote, a comma, a line break, a
backslash and PostgreSQL's end-of-data marker each have to come through as they were.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from paymodel.oltp.backend import arrow_table, backend
from paymodel.oltp.ingest import ensure_schema
from paymodel.oltp.ingest_stage import ROW_EXTRA, row_types

_AWKWARD = ["", None, 'say "hi", then go', "two\nlines", "back\\slash \\N", "\\.", "tab\there",
            "  padded  ", "NULL", "ünïcödé ✓"]  # fmt: skip


def _rows() -> list[dict]:
    rows = []
    for i, text in enumerate(_AWKWARD):
        rows.append({
            "ord": i, "pos": 0, "gtype": "customer", "gid": f"cus_{i}",
            "id": f"cus_{i}", "email": text, "name": None if text is None else text[::-1],
            "phone": "" if i % 2 else None, "currency": "usd", "balance": -(2**62) + i,
            "delinquent": bool(i % 2),
            "preferred_locale": text, "created": datetime(2025, 1, 2, 3, 4, 5, 123456 + i, tzinfo=UTC),
            "metadata": {"note": text or "", "quote": '"', "n": str(i)},
        })  # fmt: skip
    return rows


def test_staged_arrow_rows_come_back_as_they_were_written(engine: sa.Engine) -> None:
    ensure_schema(engine)
    rows = _rows()
    types = row_types("customers")
    assert set(ROW_EXTRA) <= set(types)
    with engine.begin() as conn:
        be = backend(conn)
        be.create_stage(conn, "paymodel_test_stage", "customers", ROW_EXTRA)
        be.stage_rows(conn, "paymodel_test_stage", types, arrow_table(rows, types))
        got = conn.execute(sa.text(
            "SELECT ord, email, name, phone, balance, delinquent, preferred_locale, created, "
            "CAST(metadata AS TEXT) FROM paymodel_test_stage ORDER BY ord")).all()  # fmt: skip
    assert len(got) == len(rows)
    for row, (ord_, email, name, phone, balance, delinquent, locale, created, metadata) in zip(
        rows, got, strict=True
    ):
        assert ord_ == row["ord"]
        assert (email, name, phone, locale) == (
            row["email"], row["name"], row["phone"], row["preferred_locale"]
        ), f"text of record {ord_} changed on the way"  # fmt: skip
        assert (balance, delinquent) == (row["balance"], row["delinquent"])
        assert created == row["created"]
        assert json.loads(metadata) == row["metadata"]


def test_rows_written_in_bulk_come_back_as_they_were_written(engine: sa.Engine) -> None:
    """``insert_rows`` of many dicts (PostgreSQL: through Arrow's CSV), a rate finer than
    its column's scale among them: rounded half away from zero on both engines, as
    PostgreSQL rounds a ``NUMERIC(20, 10)`` (DuckDB's Arrow path had refused it)."""
    ensure_schema(engine)
    rows = [{k: v for k, v in r.items() if k not in ROW_EXTRA} for r in _rows() * 6]
    for i, r in enumerate(rows):
        r["id"] = f"cus_{i}"
    rates = [{"rate_date": date(2025, 1, 1) + timedelta(days=i), "currency": "eur",
              "usd_per_unit": Decimal("1.08123456789") if i == 7 else Decimal("1.0812345678")}
             for i in range(60)]  # fmt: skip
    with engine.begin() as conn:
        be = backend(conn)
        be.insert_rows(conn, "customers", rows)
        be.insert_rows(conn, "fx_rates", rates)
        got = conn.execute(sa.text("SELECT id, email, name, phone, created FROM customers")).all()
        stored = conn.execute(sa.text("SELECT usd_per_unit FROM fx_rates ORDER BY rate_date")).all()
    assert sorted(got) == sorted(
        (r["id"], r["email"], r["name"], r["phone"], r["created"]) for r in rows
    )
    assert [v for (v,) in stored] == [Decimal("1.0812345679") if i == 7 else Decimal("1.0812345678")
                                      for i in range(60)]  # fmt: skip
