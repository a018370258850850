"""The dataset invariants hold on generated data and catch planted violations.

Every invariant runs on DuckDB and on PostgreSQL. Generated data is loaded with every
constraint on; to show that each check catches what it claims, a valid dataset is
loaded into tables WITHOUT constraints (once per engine per module), one violation is
planted with an UPDATE or INSERT inside a transaction that is rolled back after, and the
named invariant must report the planted row.

A compound invariant gets one planted violation per alternative (per OR branch, per
table of ``ids_unique``, per foreign key of ``foreign_keys_resolve``), each planted so
that only its alternative fires: an invariant that lost a branch misses its plant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from paymodel.model.core import ForeignKey
from paymodel.model.oltp import OLTP, STRIPE_TABLES
from paymodel.model.sql import sqlalchemy_type
from paymodel.model.stripe import OBJECT_TABLES
from paymodel.oltp.invariants import (
    INVARIANTS,
    InvariantViolation,
    assert_invariants,
    check_invariants,
    invariants,
)
from paymodel.oltp.schema import create_schema, dialect_name
from paymodel.synthetic import TABLES, generate
from paymodel.synthetic.load import load_into_oltp


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    # seed 3: the smallest dataset found with disputes and refunds in it
    generate(out, scale=0.01, seed=3, months=6, progress=False, events=False, documents=False)
    return out


@pytest.mark.parametrize(("scale", "seed"), [(0.01, 1), (0.03, 2)])
def test_generated_data_satisfies_every_invariant(
    engine: sa.Engine, tmp_path: Path, scale: float, seed: int
) -> None:
    generate(tmp_path, scale=scale, seed=seed, progress=False, events=False, documents=False)
    create_schema(engine)  # every constraint on
    counts = load_into_oltp(tmp_path, engine)
    assert counts["charges"] > 0
    assert counts["disputes"] > 0
    assert counts["payouts"] > 0
    results = assert_invariants(engine)
    assert [r.name for r in results] == [i.name for i in INVARIANTS]
    assert all(r.violations == 0 for r in results)


def _unconstrained(engine: sa.Engine, data_dir: Path) -> None:
    """The OLTP tables with columns only (no key, no check), loaded from ``data_dir``."""
    md = sa.MetaData()
    for t in OLTP.tables:
        sa.Table(t.name, md, *(sa.Column(c.name, sqlalchemy_type(c.type)) for c in t.columns))
    md.create_all(engine)
    load_into_oltp(data_dir, engine, tables=TABLES)


def _one(conn: sa.Connection, sql: str) -> str:
    return str(conn.execute(sa.text(sql)).scalars().first())


Plant = Callable[[sa.Connection], str]
"""Plants one violation and returns the example id the invariant must report."""


def _dup_customer(c: sa.Connection) -> str:
    cid = _one(c, "SELECT MIN(id) FROM customers")
    c.execute(sa.text("INSERT INTO customers SELECT * FROM customers WHERE id = :id"), {"id": cid})
    return cid


def _dangling_charge_customer(c: sa.Connection) -> str:
    ch = _one(c, "SELECT MIN(id) FROM charges")
    c.execute(sa.text("UPDATE charges SET customer_id = :cus WHERE id = :id"),
              {"cus": "cus_doesnotexist00", "id": ch})  # fmt: skip
    return f"charges.customer_id {ch} -> cus_doesnotexist00"


def _dup_event(c: sa.Connection) -> str:
    for _ in range(2):
        c.execute(
            sa.text(
                "INSERT INTO events (id, type, object_type, object_id, data_object, livemode, "
                "pending_webhooks, created) VALUES (:id, 'customer.created', 'customer', 'cus_1', "
                ":obj, false, 0, TIMESTAMP '2024-01-01 00:00:00')"
            ),
            {"id": "evt_dup", "obj": '{"id": "cus_1"}'},
        )
    return "evt_dup"


def _update(table: str, set_sql: str, pick: str, example: str | None = None) -> Plant:
    def plant(c: sa.Connection) -> str:
        row_id = _one(c, pick)
        c.execute(sa.text(f"UPDATE {table} SET {set_sql} WHERE id = :id"), {"id": row_id})
        return row_id if example is None else _one(c, example.replace(":id", f"'{row_id}'"))

    return plant


def _fee_detail(c: sa.Connection) -> str:
    bt = _one(c, "SELECT MIN(balance_transaction_id) FROM balance_transaction_fee_details")
    c.execute(
        sa.text(
            "UPDATE balance_transaction_fee_details SET amount = amount + 1 "
            "WHERE balance_transaction_id = :id AND line = 0"
        ),
        {"id": bt},
    )
    return bt


def _line_amount(c: sa.Connection) -> str:
    line, invoice = c.execute(
        sa.text("SELECT id, invoice_id FROM invoice_line_items ORDER BY id LIMIT 1")
    ).one()
    c.execute(sa.text("UPDATE invoice_line_items SET amount = amount + 1 WHERE id = :id"), {"id": line})
    return str(invoice)


def _unpay_invoice_payment(c: sa.Connection) -> str:
    ip, invoice = c.execute(
        sa.text("SELECT id, invoice_id FROM invoice_payments ORDER BY id LIMIT 1")
    ).one()
    c.execute(sa.text("UPDATE invoice_payments SET status = 'open' WHERE id = :id"), {"id": ip})
    return str(invoice)


def _fail_charge(c: sa.Connection) -> str:
    ch, pi = c.execute(
        sa.text("SELECT id, payment_intent_id FROM charges WHERE status = 'succeeded' ORDER BY id LIMIT 1")
    ).one()
    c.execute(sa.text("UPDATE charges SET status = 'failed' WHERE id = :id"), {"id": ch})
    return str(pi)


def _refund_amount(c: sa.Connection) -> str:
    re_, ch = c.execute(sa.text("SELECT id, charge_id FROM refunds ORDER BY id LIMIT 1")).one()
    c.execute(sa.text("UPDATE refunds SET amount = amount + 10 WHERE id = :id"), {"id": re_})
    return str(ch)


def _event_of(kind: str, object_id: str) -> Plant:
    """An event whose ``data.object`` is of ``kind`` and names a row that does not exist."""
    event = f"evt_{kind}_missing14"

    def plant(c: sa.Connection) -> str:
        c.execute(
            sa.text(
                "INSERT INTO events (id, type, object_type, object_id, data_object, livemode, "
                "pending_webhooks, created) VALUES (:id, :type, :kind, :obj_id, :obj, false, 0, "
                "TIMESTAMP '2024-01-01 00:00:00')"
            ),
            {
                "id": event,
                "type": f"{kind}.updated",
                "kind": kind,
                "obj_id": object_id,
                "obj": json.dumps({"id": object_id, "object": kind}),
            },
        )
        return event

    return plant


def _move_settled_transaction(c: sa.Connection) -> str:
    """A charge's transaction moved from its payout to another paid one: both break."""
    bt, payout = c.execute(
        sa.text(
            "SELECT bt.id, bt.payout_id FROM balance_transactions bt JOIN payouts p "
            "ON p.id = bt.payout_id WHERE bt.type = 'charge' AND p.status = 'paid' "
            "ORDER BY bt.id LIMIT 1"
        )
    ).one()
    c.execute(sa.text("UPDATE balance_transactions SET payout_id = NULL WHERE id = :id"), {"id": bt})
    return str(payout)


def _refund_of_another_intent(c: sa.Connection) -> str:
    """A refund pointing at a payment intent other than its charge's."""
    re_, other = c.execute(
        sa.text(
            "SELECT r.id, (SELECT MIN(p.id) FROM payment_intents p WHERE p.id <> r.payment_intent_id) "
            "FROM refunds r ORDER BY r.id LIMIT 1"
        )
    ).one()
    c.execute(sa.text("UPDATE refunds SET payment_intent_id = :pi WHERE id = :id"), {"pi": other, "id": re_})
    charge = _one(c, f"SELECT charge_id FROM refunds WHERE id = '{re_}'")
    return f"refunds (charge_id, payment_intent_id) {re_} -> {charge}, {other}"


PLANTS: dict[str, Plant] = {
    "references_agree": _refund_of_another_intent,
    "event_objects_exist": _event_of("charge", "ch_doesnotexist00"),
    "payout_balance_transaction": _update(
        "payouts", "amount = amount + 1", "SELECT MIN(id) FROM payouts"
    ),
    "payout_settles_net": _move_settled_transaction,
    "ids_unique": _dup_customer,
    "foreign_keys_resolve": _dangling_charge_customer,
    "event_ids_unique": _dup_event,
    "balance_transaction_net": _update(
        "balance_transactions", "net = net + 1", "SELECT MIN(id) FROM balance_transactions"
    ),
    "balance_transaction_fee_details": _fee_detail,
    "charge_captured_within_amount": _update(
        "charges", "amount_captured = amount + 1",
        "SELECT MIN(id) FROM charges WHERE status = 'succeeded'",
    ),
    "charge_refunded_within_captured": _update(
        "charges", "amount_refunded = amount_captured + 1",
        "SELECT MIN(id) FROM charges WHERE status = 'succeeded'",
    ),
    "charge_refunds_sum": _refund_amount,
    "invoice_amount_remaining": _update(
        "invoices", "amount_remaining = amount_remaining + 1", "SELECT MIN(id) FROM invoices"
    ),
    "invoice_subtotal_is_sum_of_lines": _line_amount,
    "invoice_total": _update("invoices", "tax = tax + 1", "SELECT MIN(id) FROM invoices"),
    "invoice_paid_in_full": _update(
        "invoices", "amount_paid = amount_paid - 1",
        "SELECT MIN(id) FROM invoices WHERE status = 'paid' AND amount_due > 0",
    ),
    "invoice_paid_by_succeeded_payments": _unpay_invoice_payment,
    "payment_intent_succeeded_iff_one_charge": _fail_charge,
    "payment_intent_amount_received": _update(
        "payment_intents", "amount_received = amount_received - 1",
        "SELECT MIN(id) FROM payment_intents WHERE status = 'succeeded'",
    ),
    "disputed_charge_has_dispute": _update(
        "charges", "disputed = NOT disputed", "SELECT MIN(id) FROM charges"
    ),
}


def test_every_invariant_has_a_planted_violation() -> None:
    assert sorted(PLANTS) == sorted(i.name for i in INVARIANTS)


def _pi_with_charge(c: sa.Connection) -> tuple[str, str]:
    """A succeeded payment intent and its one succeeded, captured charge."""
    pi, ch = c.execute(sa.text(
        "SELECT pi.id, ch.id FROM payment_intents pi JOIN charges ch ON ch.payment_intent_id = pi.id "
        "WHERE pi.status = 'succeeded' AND ch.status = 'succeeded' ORDER BY pi.id LIMIT 1"
    )).one()  # fmt: skip
    return str(pi), str(ch)


def _intent_alternative(status: str | None, captured: bool, second: bool, fail: bool = False) -> Plant:
    """Set the intent's status and its charge's captured flag; optionally copy or fail the charge."""

    def plant(c: sa.Connection) -> str:
        pi, ch = _pi_with_charge(c)
        if status is not None:
            c.execute(sa.text("UPDATE payment_intents SET status = :s WHERE id = :id"), {"s": status, "id": pi})
        if not captured:
            c.execute(sa.text("UPDATE charges SET captured = false WHERE id = :id"), {"id": ch})
        if fail:
            c.execute(sa.text("UPDATE charges SET status = 'failed' WHERE id = :id"), {"id": ch})
        if second:
            cols = ", ".join(col for col in OLTP.table("charges").column_names if col != "id")
            c.execute(sa.text(f"INSERT INTO charges (id, {cols}) SELECT id || '_2', {cols} "
                              "FROM charges WHERE id = :id"), {"id": ch})  # fmt: skip
        return pi

    return plant


def _sql_plant(*statements: str, example: str) -> Plant:
    """Run ``statements`` (each may use :id), where :id is the first column of ``example``."""

    def plant(c: sa.Connection) -> str:
        row_id = _one(c, example)
        for statement in statements:
            c.execute(sa.text(statement), {"id": row_id})
        return row_id

    return plant


_SUCCEEDED_CHARGE_WITHOUT_REFUND = (
    "SELECT MIN(id) FROM charges c WHERE status = 'succeeded' AND amount_refunded = 0 "
    "AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.charge_id = c.id)"
)

ALTERNATIVES: dict[tuple[str, str], Plant] = {
    ("payment_intent_succeeded_iff_one_charge", "two succeeded charges"):
        _intent_alternative("requires_capture", captured=False, second=True),
    ("payment_intent_succeeded_iff_one_charge", "succeeded without a succeeded charge"):
        _intent_alternative(None, captured=True, second=False, fail=True),
    ("payment_intent_succeeded_iff_one_charge", "succeeded with its charge not captured"):
        _intent_alternative(None, captured=False, second=False),
    ("payment_intent_succeeded_iff_one_charge", "a captured charge of an intent not succeeded"):
        _intent_alternative("canceled", captured=True, second=False),
    ("payment_intent_succeeded_iff_one_charge", "a charge of an intent that cannot hold one"):
        _intent_alternative("processing", captured=False, second=False),
    ("disputed_charge_has_dispute", "disputed without a dispute"): _sql_plant(
        "UPDATE charges SET disputed = true WHERE id = :id",
        example="SELECT MIN(id) FROM charges c WHERE NOT EXISTS "
        "(SELECT 1 FROM disputes d WHERE d.charge_id = c.id)",
    ),
    ("disputed_charge_has_dispute", "a dispute of a charge not disputed"): _sql_plant(
        "UPDATE charges SET disputed = false WHERE id = :id",
        example="SELECT MIN(charge_id) FROM disputes",
    ),
    ("charge_refunds_sum", "refunded without refunds"): _sql_plant(
        "UPDATE charges SET amount_refunded = 1 WHERE id = :id",
        example=_SUCCEEDED_CHARGE_WITHOUT_REFUND,
    ),
    ("charge_refunds_sum", "refunds summing to another amount"): _refund_amount,
    ("charge_refunds_sum", "a refund that did not succeed counted"): _sql_plant(
        "UPDATE refunds SET status = 'failed' WHERE charge_id = :id",
        example="SELECT MIN(charge_id) FROM refunds WHERE status = 'succeeded'",
    ),
    ("balance_transaction_fee_details", "fee lines summing to another fee"): _fee_detail,
    ("balance_transaction_fee_details", "a fee without fee lines"): _sql_plant(
        "DELETE FROM balance_transaction_fee_details WHERE balance_transaction_id = :id",
        example="SELECT MIN(id) FROM balance_transactions WHERE fee > 0",
    ),
    ("invoice_subtotal_is_sum_of_lines", "lines summing to another subtotal"): _line_amount,
    ("invoice_subtotal_is_sum_of_lines", "a subtotal without lines"): _sql_plant(
        "DELETE FROM invoice_line_items WHERE invoice_id = :id",
        example="SELECT MIN(invoice_id) FROM invoice_line_items l WHERE EXISTS "
        "(SELECT 1 FROM invoices i WHERE i.id = l.invoice_id AND i.subtotal <> 0)",
    ),
    ("invoice_paid_by_succeeded_payments", "an invoice payment not paid"): _unpay_invoice_payment,
    ("invoice_paid_by_succeeded_payments", "paid by an intent that did not succeed"): _sql_plant(
        "UPDATE payment_intents SET status = 'processing' WHERE id = "
        "(SELECT MIN(payment_intent_id) FROM invoice_payments WHERE invoice_id = :id)",
        example="SELECT MIN(i.id) FROM invoices i JOIN invoice_payments ip ON ip.invoice_id = i.id "
        "WHERE i.amount_paid > 0 AND ip.status = 'paid'",
    ),
}  # fmt: skip
"""One plant per alternative of each compound invariant, named by what it breaks."""


def _duplicate_of(table: str) -> Plant:
    return _sql_plant(f"INSERT INTO {table} SELECT * FROM {table} WHERE id = :id",
                      example=f"SELECT MIN(id) FROM {table}")  # fmt: skip


for _t in STRIPE_TABLES:
    if _t.primary_key == ("id",) and _t.name != "events":
        ALTERNATIVES[("ids_unique", _t.name)] = _duplicate_of(_t.name)


def _dangling(table: str, column: str, missing: str) -> Plant:
    pk = OLTP.table(table).primary_key

    def plant(c: sa.Connection) -> str:
        key = c.execute(sa.text(
            f"SELECT {', '.join(pk)} FROM {table} "
            f"ORDER BY {column} IS NULL, {', '.join(pk)} LIMIT 1"
        )).one()  # fmt: skip
        where = " AND ".join(f"{k} = :k{i}" for i, k in enumerate(pk))
        params = {f"k{i}": v for i, v in enumerate(key)}
        c.execute(sa.text(f"UPDATE {table} SET {column} = :m WHERE {where}"), {"m": missing, **params})
        shown = missing if pk[0] == column else key[0]
        return f"{table}.{column} {shown} -> {missing}"

    return plant


for _t in STRIPE_TABLES:
    for _fk in _t.all_foreign_keys:
        if _fk in _t.agreement_keys:  # each column resolves alone: references_agree's plants
            continue
        _parent = OLTP.table(_fk.table)
        _missing = "zzz" if _fk.table == "currencies" else f"{_parent.id_prefix or ''}missing14"
        for _col in _fk.columns:
            ALTERNATIVES[("foreign_keys_resolve", f"{_t.name}.{_col}")] = _dangling(
                _t.name, _col, _missing
            )


def _disagreeing(table: str, fk: ForeignKey) -> Plant:
    """A row of ``table`` whose agreement key names a parent row and another row's value.

    Each column still resolves on its own (its foreign key holds), only the pair is no
    row of the parent: ``references_agree`` alone sees it.
    """
    (first, *rest), (ref, *refs) = fk.columns, fk.referred
    pk = OLTP.table(table).primary_key[0]

    def plant(c: sa.Connection) -> str:
        present = " AND ".join(f"{r} IS NOT NULL" for r in fk.referred)
        parent = c.execute(sa.text(
            f"SELECT {', '.join(fk.referred)} FROM {fk.table} WHERE {present} ORDER BY {ref} LIMIT 1"
        )).one()  # fmt: skip
        values = {first: parent[0]}
        for col, r, mine in zip(rest, refs, parent[1:], strict=True):
            values[col] = _one(c, f"SELECT MIN({r}) FROM {fk.table} WHERE {r} <> '{mine}'")
        row = _one(c, f"SELECT MIN({pk}) FROM {table}")
        sets = ", ".join(f"{col} = :{col}" for col in values)
        c.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {pk} = :row"), {**values, "row": row})
        shown = ", ".join(str(values[col]) for col in fk.columns)
        return f"{table} ({', '.join(fk.columns)}) {row} -> {shown}"

    return plant


for _t in STRIPE_TABLES:
    for _fk in _t.agreement_keys:
        ALTERNATIVES[("references_agree", f"{_t.name}({', '.join(_fk.columns)})")] = _disagreeing(
            _t.name, _fk
        )


for _kind, _table in OBJECT_TABLES.items():
    if _table != "events":
        ALTERNATIVES[("event_objects_exist", _kind)] = _event_of(
            _kind, f"{OLTP.table(_table).id_prefix or ''}missing14"
        )
ALTERNATIVES[("event_objects_exist", "an object of no known kind")] = _event_of(
    "zz_unknown", "zz_missing14"
)

_SETTLING_PAYOUT = (
    "SELECT MIN(p.id) FROM payouts p WHERE p.automatic AND p.status = 'paid' AND EXISTS "
    "(SELECT 1 FROM balance_transactions bt WHERE bt.payout_id = p.id AND bt.type <> 'payout')"
)
_PAYOUT_MOVEMENT = "(SELECT id FROM balance_transactions WHERE type = 'payout' AND source_payout_id = :id)"

ALTERNATIVES.update({
    ("payout_balance_transaction", "no payout movement"): _sql_plant(
        f"UPDATE balance_transactions SET type = 'adjustment' WHERE id IN {_PAYOUT_MOVEMENT}",
        example="SELECT MIN(id) FROM payouts",
    ),
    ("payout_balance_transaction", "a movement of another amount"): _update(
        "payouts", "amount = amount + 1", "SELECT MIN(id) FROM payouts"
    ),
    ("payout_balance_transaction", "a movement in another currency"): _sql_plant(
        f"UPDATE balance_transactions SET currency = 'zzz' WHERE id IN {_PAYOUT_MOVEMENT}",
        example="SELECT MIN(id) FROM payouts",
    ),
    ("payout_settles_net", "a paid automatic payout not reconciling"): _move_settled_transaction,
    ("payout_settles_net", "settling a movement in another currency"): _sql_plant(
        "UPDATE balance_transactions SET currency = 'zzz' WHERE id = (SELECT MIN(id) FROM "
        "balance_transactions WHERE payout_id = :id AND type <> 'payout')",
        example=_SETTLING_PAYOUT,
    ),
    ("payout_settles_net", "a manual payout settling movements"): _sql_plant(
        "UPDATE payouts SET automatic = false WHERE id = :id", example=_SETTLING_PAYOUT
    ),
})  # fmt: skip


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def unconstrained(request: pytest.FixtureRequest, tiny: Path, new_database: Callable) -> sa.Engine:
    """The tiny dataset in tables without constraints, one database per engine per module."""
    engine = new_database(request.param)
    _unconstrained(engine, tiny)
    return engine


def _planted(engine: sa.Engine, plant: Plant, name: str) -> tuple[str, int, list[str]]:
    """Plant in a transaction, run invariant ``name`` in it, roll back.

    Returns the example the plant names, the violations and every example reported.
    """
    (invariant,) = (i for i in invariants(dialect_name(engine)) if i.name == name)
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            example = plant(conn)
            found = [str(r[0]) for r in conn.execute(sa.text(invariant.sql))]
            return example, len(found), found
        finally:
            tx.rollback()


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_a_run_that_touched_the_row_sees_its_violation_and_no_other_run_does(
    unconstrained: sa.Engine, name: str
) -> None:
    """Scoped to the objects a run wrote (:meth:`Invariant.scoped`, read by key), an
    invariant reports the planted violation when the run touched the object its example
    names, and nothing when the run touched only an object that breaks nothing."""
    with unconstrained.connect() as conn:
        tx = conn.begin()
        try:
            example = PLANTS[name](conn)
            by_name = {r.name: r for r in check_invariants(conn, only=set(example.split()))}
            elsewhere = {r.name: r for r in check_invariants(conn, only={"cus_not_touched"})}
        finally:
            tx.rollback()
    assert by_name[name].violations >= 1, by_name[name]
    assert example in by_name[name].examples
    assert elsewhere[name].violations == 0


def test_an_agreement_broken_under_a_touched_parent_is_reported(unconstrained: sa.Engine) -> None:
    """Scoped to the parent alone (a run that rewrote the payment intent, not the
    charge), an agreement key's violation is still found: its parent's own branch."""
    with unconstrained.connect() as conn:
        tx = conn.begin()
        try:
            example = PLANTS["references_agree"](conn)
            parent = example.split(" -> ")[1].split(",")[0]
            found = {r.name: r for r in check_invariants(conn, only={parent})}
        finally:
            tx.rollback()
    assert example in found["references_agree"].examples


def test_the_unconstrained_dataset_breaks_no_invariant(unconstrained: sa.Engine) -> None:
    assert [r.name for r in check_invariants(unconstrained) if not r.ok] == []


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_invariant_catches_planted_violation(unconstrained: sa.Engine, name: str) -> None:
    example, violations, found = _planted(unconstrained, PLANTS[name], name)
    assert violations >= 1
    assert example in found
    with unconstrained.connect() as conn:
        tx = conn.begin()
        PLANTS[name](conn)
        with pytest.raises(InvariantViolation, match=name):
            assert_invariants(conn)
        tx.rollback()


def test_every_compound_invariant_has_a_plant_per_alternative() -> None:
    planted = {name for name, _ in ALTERNATIVES}
    compound = {i.name for i in INVARIANTS if " OR " in i.sql or " UNION ALL " in i.sql}
    compound |= {"charge_refunds_sum", "balance_transaction_fee_details",
                 "invoice_subtotal_is_sum_of_lines", "invoice_paid_by_succeeded_payments",
                 "disputed_charge_has_dispute"}  # fmt: skip
    assert compound <= planted
    branches = next(i for i in INVARIANTS if i.name == "payment_intent_succeeded_iff_one_charge")
    assert sum(1 for n, _ in ALTERNATIVES if n == branches.name) >= branches.sql.count(" OR ") + 1
    fks = sum(len(fk.columns) for t in STRIPE_TABLES for fk in t.all_foreign_keys
              if fk not in t.agreement_keys)  # fmt: skip
    assert sum(1 for n, _ in ALTERNATIVES if n == "foreign_keys_resolve") == fks
    agreement_keys = sum(len(t.agreement_keys) for t in STRIPE_TABLES)
    assert sum(1 for n, _ in ALTERNATIVES if n == "references_agree") == agreement_keys
    kinds = sum(1 for table in OBJECT_TABLES.values() if table != "events") + 1  # + unknown
    assert sum(1 for n, _ in ALTERNATIVES if n == "event_objects_exist") == kinds
    for name in ("payout_balance_transaction", "payout_settles_net"):
        sql = next(i.sql for i in INVARIANTS if i.name == name)
        assert sum(1 for n, _ in ALTERNATIVES if n == name) == sql.count(" OR ") + 1, name


@pytest.mark.parametrize(("name", "alternative"), sorted(ALTERNATIVES), ids=lambda v: v.replace(" ", "_"))
def test_each_alternative_of_a_compound_invariant_is_caught(
    unconstrained: sa.Engine, name: str, alternative: str
) -> None:
    example, _, found = _planted(unconstrained, ALTERNATIVES[(name, alternative)], name)
    assert example in found, f"{name}: the plant '{alternative}' ({example}) is not reported: {found}"


def _without_each_branch(sql: str, dialect: str) -> list[tuple[str, str]]:
    """``(branch, sql)`` per alternative of the WHERE clauses: that alternative made FALSE."""
    tree = sqlglot.parse_one(sql, read=dialect)
    out = []
    for where in tree.find_all(exp.Where):
        for node in where.find_all(exp.Or):
            for side in (node.this, node.expression):
                if isinstance(side, exp.Or):
                    continue  # a chain: its own sides are visited as Or nodes
                variant = tree.copy()
                target = next(n for n in variant.find_all(type(side)) if n == side)
                target.replace(exp.false())
                out.append((side.sql(dialect=dialect), variant.sql(dialect=dialect)))
    return out


_BRANCHED = sorted({name for name, _ in ALTERNATIVES if " OR " in next(
    i.sql for i in INVARIANTS if i.name == name)})  # fmt: skip


@pytest.mark.parametrize("name", _BRANCHED)
def test_each_branch_of_an_invariant_catches_a_plant_no_other_branch_does(
    unconstrained: sa.Engine, name: str
) -> None:
    """An invariant that lost one of its alternatives misses one of its plants."""
    dialect = "postgres" if dialect_name(unconstrained) == "postgresql" else "duckdb"
    (invariant,) = (i for i in invariants(dialect_name(unconstrained)) if i.name == name)
    variants = _without_each_branch(invariant.sql, dialect)
    assert variants, name
    missed: dict[str, list[str]] = {branch: [] for branch, _ in variants}
    for (inv, alternative), plant in ALTERNATIVES.items():
        if inv != name:
            continue
        with unconstrained.connect() as conn:
            tx = conn.begin()
            example = plant(conn)
            for branch, sql in variants:
                if example not in {str(r[0]) for r in conn.execute(sa.text(sql))}:
                    missed[branch].append(alternative)
            tx.rollback()
    assert [b for b, plants in missed.items() if not plants] == [], missed
