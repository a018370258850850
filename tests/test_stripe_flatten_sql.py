"""The SQL flattener agrees with the Python one, on DuckDB and PostgreSQL.

Every round-trip case of ``test_stripe_mapping`` is rendered, staged as JSON in the
engine, and flattened by the ``SELECT`` :func:`paymodel.model.stripe.flatten_sql` derives
from the mapping; each column it covers equals what :func:`from_stripe_object` gives.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from paymodel.model.stripe import MAPPINGS, flatten_sql, from_stripe_object, to_stripe_object


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    path = Path(__file__).parent / "test_stripe_mapping.py"
    spec = importlib.util.spec_from_file_location("stripe_mapping_cases", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.CASES


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value


def test_sql_flattener_matches_python_on_every_table(engine: sa.Engine) -> None:
    json_type = "JSONB" if engine.dialect.name == "postgresql" else "JSON"
    cases = _cases()
    checked: set[str] = set()
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TEMPORARY TABLE staged (n INTEGER, obj {json_type})"))
        for n, (table, row, related) in enumerate(cases):
            obj = to_stripe_object(table, row, related)
            conn.execute(sa.text("INSERT INTO staged VALUES (:n, CAST(:obj AS " + json_type + "))"),
                         {"n": n, "obj": json.dumps(obj)})  # fmt: skip
        for n, (table, row, related) in enumerate(cases):
            exprs = flatten_sql(table)
            select = ", ".join(f"{e} AS {c}" for c, e in exprs.items())
            got = conn.execute(sa.text(f"SELECT {select} FROM staged WHERE n = :n"), {"n": n})
            sql_row = {k: _plain(v) for k, v in got.mappings().one().items()}
            obj = json.loads(json.dumps(to_stripe_object(table, row, related)))
            python_row = next(r for t, r in from_stripe_object(obj) if t == table)
            assert sql_row == {c: python_row[c] for c in exprs}, (table, row["id"])
            checked.add(table)
    assert checked == set(MAPPINGS)


def test_the_sql_flattener_covers_every_path_column() -> None:
    for table, m in MAPPINGS.items():
        covered = set(flatten_sql(table)) - {"id"}
        by_path = {c for c, f in m.fields.items() if f.kind not in ("special", "sum")}
        assert covered == by_path, table
