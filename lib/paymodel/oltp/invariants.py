"""The invariants a correct Stripe dataset satisfies, as named SQL checks (DuckDB and PostgreSQL).

Each :class:`Invariant` is one query that returns the id of every row that breaks
it; the same SQL runs on both engines through SQLAlchemy. The list covers the rules
a correct Stripe dataset satisfies across rows (the OLTP/OLAP reconciliation lives with
the OLAP layer). Table constraints catch single-row
rules at insert time; these catch rules across rows and tables, which a database
constraint cannot express (sums over refunds, invoice payments, fee details...), and
they also hold for data loaded without constraints.

Example:
    >>> from paymodel.oltp.engines import duckdb_engine
    >>> from paymodel.oltp.schema import create_schema
    >>> engine = duckdb_engine()
    >>> create_schema(engine)
    >>> [r.violations for r in check_invariants(engine)] == [0] * len(INVARIANTS)
    True
    >>> engine.dispose()
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa

from paymodel.model.oltp import OLTP, STRIPE_TABLES

__all__ = [
    "INVARIANTS",
    "Invariant",
    "InvariantResult",
    "InvariantViolation",
    "assert_invariants",
    "check_invariants",
    "invariants",
]

EXAMPLES = 5
"""Example ids reported per broken invariant."""


_SCOPE = re.compile(r"\[\[(and|where) ([^\]]+)\]\]")
_SCOPED_ONLY = re.compile(r"\{\{scoped: ([^{}]*)\}\}")


@dataclass(frozen=True)
class Invariant:
    """A rule over the whole dataset.

    Attributes:
        name: stable snake_case name.
        description: the rule in words.
        template: the query, returning one column ``example`` (an id naming the
            violating row) per violation, written for both engines, with scope marks:
            ``[[and EXPR]]`` and ``[[where EXPR]]`` say where the rows to look at can
            be narrowed to the objects a run touched (``EXPR`` an id the example
            names, or the key the rows of an aggregate are grouped by), and
            ``{{scoped: SQL}}`` is a part only the narrowed query has. Over the whole
            dataset (:attr:`sql`) the marks and the scoped parts are left out.
    """

    name: str
    description: str
    template: str

    @property
    def sql(self) -> str:
        """The query over the whole dataset."""
        return _SCOPE.sub("", _SCOPED_ONLY.sub("", self.template))

    def scoped(self, keys: str) -> str:
        """The query over the rows of the ids in table ``keys`` (column ``id``): the
        violations of those rows (for an agreement key, also of the rows whose parent
        is one of them), each read by key rather than over the whole dataset (what a
        run that touched a few objects of a big database checks; see
        :func:`check_invariants`)."""

        def mark(m: re.Match[str]) -> str:
            joint = "AND" if m.group(1) == "and" else "WHERE"
            return f" {joint} {m.group(2)} IN (SELECT id FROM {keys})"

        return _SCOPE.sub(mark, _SCOPED_ONLY.sub(r" \1", self.template))


@dataclass(frozen=True)
class InvariantResult:
    """The outcome of one invariant on one database."""

    name: str
    description: str
    violations: int
    examples: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def __str__(self) -> str:
        if self.ok:
            return f"{self.name}: ok"
        return (
            f"{self.name}: {self.violations} violation(s) of '{self.description}', "
            f"e.g. {', '.join(self.examples)}"
        )


class InvariantViolation(AssertionError):
    """Raised by :func:`assert_invariants`; names each broken invariant and example rows."""

    def __init__(self, failed: list[InvariantResult]) -> None:
        self.failed = failed
        super().__init__("invariants broken:\n" + "\n".join(f"  {r}" for r in failed))


_STATIC: tuple[Invariant, ...] = (
    Invariant(
        "event_ids_unique",
        "event ids are unique",
        "SELECT id AS example FROM events[[where id]] GROUP BY id HAVING COUNT(*) > 1",
    ),
    Invariant(
        "balance_transaction_net",
        "balance_transaction: net = amount - fee",
        "SELECT id AS example FROM balance_transactions WHERE net <> amount - fee[[and id]]",
    ),
    Invariant(
        "balance_transaction_fee_details",
        "balance_transaction: fee = sum(fee_details.amount)",
        "SELECT bt.id AS example FROM balance_transactions bt "
        "LEFT JOIN (SELECT balance_transaction_id, SUM(amount) AS s "
        "FROM balance_transaction_fee_details[[where balance_transaction_id]] "
        "GROUP BY balance_transaction_id) f "
        "ON f.balance_transaction_id = bt.id WHERE bt.fee <> COALESCE(f.s, 0)[[and bt.id]]",
    ),
    Invariant(
        "charge_captured_within_amount",
        "charge: amount_captured <= amount",
        "SELECT id AS example FROM charges WHERE amount_captured > amount[[and id]]",
    ),
    Invariant(
        "charge_refunded_within_captured",
        "charge: amount_refunded <= amount_captured",
        "SELECT id AS example FROM charges WHERE amount_refunded > amount_captured[[and id]]",
    ),
    Invariant(
        "charge_refunds_sum",
        "charge: sum(refunds.amount where succeeded) = amount_refunded",
        "SELECT c.id AS example FROM charges c "
        "LEFT JOIN (SELECT charge_id, SUM(amount) AS s FROM refunds "
        "WHERE status = 'succeeded'[[and charge_id]] GROUP BY charge_id) r ON r.charge_id = c.id "
        "WHERE c.amount_refunded <> COALESCE(r.s, 0)[[and c.id]]",
    ),
    Invariant(
        "invoice_amount_remaining",
        "invoice: amount_remaining = amount_due - amount_paid",
        "SELECT id AS example FROM invoices WHERE amount_remaining <> amount_due - amount_paid"
        "[[and id]]",
    ),
    Invariant(
        "invoice_subtotal_is_sum_of_lines",
        "invoice: sum(line amounts) = subtotal",
        "SELECT i.id AS example FROM invoices i "
        "LEFT JOIN (SELECT invoice_id, SUM(amount) AS s FROM invoice_line_items "
        "[[where invoice_id]] GROUP BY invoice_id) l ON l.invoice_id = i.id "
        "WHERE i.subtotal <> COALESCE(l.s, 0)[[and i.id]]",
    ),
    Invariant(
        "invoice_total",
        "invoice: total = subtotal - discounts + tax",
        "SELECT id AS example FROM invoices WHERE total <> subtotal - discount_amount + tax"
        "[[and id]]",
    ),
    Invariant(
        "invoice_paid_in_full",
        "invoice: paid invoices have amount_paid = amount_due",
        "SELECT id AS example FROM invoices WHERE status = 'paid' AND amount_paid <> amount_due"
        "[[and id]]",
    ),
    Invariant(
        "invoice_paid_by_succeeded_payments",
        "invoice: amount_paid is covered by paid invoice payments whose payment intents succeeded",
        "SELECT i.id AS example FROM invoices i "
        "LEFT JOIN (SELECT ip.invoice_id, SUM(ip.amount_paid) AS s FROM invoice_payments ip "
        "JOIN payment_intents pi ON pi.id = ip.payment_intent_id "
        "WHERE ip.status = 'paid' AND pi.status = 'succeeded'[[and ip.invoice_id]] "
        "GROUP BY ip.invoice_id) p "
        "ON p.invoice_id = i.id WHERE i.amount_paid <> COALESCE(p.s, 0)[[and i.id]]",
    ),
    Invariant(
        "payment_intent_succeeded_iff_one_charge",
        "payment_intent: succeeded <=> exactly one succeeded charge, and it is captured; "
        "an authorised, uncaptured charge exists only while requires_capture or once canceled",
        "SELECT pi.id AS example FROM payment_intents pi "
        "LEFT JOIN (SELECT payment_intent_id, COUNT(*) AS n, "
        "SUM(CASE WHEN captured THEN 1 ELSE 0 END) AS captured FROM charges "
        "WHERE status = 'succeeded'[[and payment_intent_id]] GROUP BY payment_intent_id) c "
        "ON c.payment_intent_id = pi.id "
        # Each alternative catches a row no other does (tests/test_invariants.py): more
        # than one succeeded charge, whatever the status; a succeeded intent whose charge
        # is not captured or missing (captured <= n, so captured = 1 means n >= 1).
        "WHERE (COALESCE(c.n, 0) > 1 "
        "OR (pi.status = 'succeeded' AND COALESCE(c.captured, 0) <> 1) "
        "OR (pi.status <> 'succeeded' AND COALESCE(c.captured, 0) > 0) "
        "OR (pi.status NOT IN ('succeeded', 'requires_capture', 'canceled') "
        "AND COALESCE(c.n, 0) > 0))[[and pi.id]]",
    ),
    Invariant(
        "payment_intent_amount_received",
        "payment_intent: amount_received = the succeeded charge's captured amount (0 without one)",
        "SELECT pi.id AS example FROM payment_intents pi "
        "LEFT JOIN (SELECT payment_intent_id, SUM(amount_captured) AS s FROM charges "
        "WHERE status = 'succeeded'[[and payment_intent_id]] GROUP BY payment_intent_id) c "
        "ON c.payment_intent_id = pi.id WHERE pi.amount_received <> COALESCE(c.s, 0)[[and pi.id]]",
    ),
    Invariant(
        "payout_balance_transaction",
        "payout: exactly one balance transaction of type payout has it as source, of amount "
        "-amount, in its currency",
        "SELECT p.id AS example FROM payouts p "
        "LEFT JOIN (SELECT source_payout_id, currency, COUNT(*) AS n, SUM(amount) AS a "
        "FROM balance_transactions WHERE type = 'payout' AND source_payout_id IS NOT NULL"
        "[[and source_payout_id]] GROUP BY source_payout_id, currency) o "
        "ON o.source_payout_id = p.id "
        "WHERE (COALESCE(o.n, 0) <> 1 OR o.a <> -p.amount OR o.currency <> p.currency)"
        "[[and p.id]]",
    ),
    Invariant(
        "payout_settles_net",
        "payout: for every paid automatic payout, -(its balance transaction's amount) = "
        "sum(net) of the balance transactions it settles (payout_id), all in its currency; "
        "a manual payout settles none",
        "SELECT p.id AS example FROM payouts p "
        "LEFT JOIN (SELECT source_payout_id, SUM(amount) AS a FROM balance_transactions "
        "WHERE type = 'payout'[[and source_payout_id]] GROUP BY source_payout_id) o "
        "ON o.source_payout_id = p.id "
        "LEFT JOIN (SELECT bt.payout_id, SUM(bt.net) AS s, "
        "SUM(CASE WHEN bt.currency <> q.currency THEN 1 ELSE 0 END) AS other "
        "FROM balance_transactions bt JOIN payouts q ON q.id = bt.payout_id "
        "WHERE NOT (bt.type = 'payout' AND bt.source_payout_id = bt.payout_id)"
        "[[and bt.payout_id]] GROUP BY bt.payout_id) s ON s.payout_id = p.id "
        "WHERE ((p.automatic AND p.status = 'paid' AND -COALESCE(o.a, 0) <> COALESCE(s.s, 0)) "
        "OR COALESCE(s.other, 0) > 0 OR (NOT p.automatic AND s.s IS NOT NULL))[[and p.id]]",
    ),
    Invariant(
        "disputed_charge_has_dispute",
        "a disputed charge has disputed = true and at least one dispute (and only then)",
        "SELECT c.id AS example FROM charges c "
        "LEFT JOIN (SELECT charge_id, COUNT(*) AS n FROM disputes[[where charge_id]] "
        "GROUP BY charge_id) d ON d.charge_id = c.id "
        "WHERE c.disputed <> (COALESCE(d.n, 0) > 0)[[and c.id]]",
    ),
)


@cache
def _generated(dialect_name: str) -> tuple[Invariant, ...]:
    """Key invariants generated from the model: unique ids, resolving foreign keys."""
    from paymodel.model.sql import dialect

    q = dialect(dialect_name).identifier_preparer.quote
    uniques, fks, agree = [], [], []
    for t in STRIPE_TABLES:
        if t.primary_key == ("id",) and t.name != "events":
            uniques.append(
                f"SELECT {q('id')} AS example FROM {q(t.name)}[[where {q('id')}]] "
                f"GROUP BY {q('id')} HAVING COUNT(*) > 1"
            )
        child_key = f"CAST(c.{q(t.primary_key[0])} AS TEXT)"  # names the violating row
        for fk in t.agreement_keys:
            cols = ", ".join(fk.columns)
            values = " || ', ' || ".join(f"CAST(c.{q(c)} AS TEXT)" for c in fk.columns)
            present = " AND ".join(f"c.{q(c)} IS NOT NULL" for c in fk.columns)
            match = " AND ".join(
                f"p.{q(r)} = c.{q(c)}" for c, r in zip(fk.columns, fk.referred, strict=True)
            )
            broken = (
                f"SELECT '{t.name} ({cols}) ' || {child_key} || ' -> ' || {values} AS example "
                f"FROM {q(t.name)} c WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {q(fk.table)} p WHERE {match})"
            )
            # broken by a write of the row or of its parent: scoped, a branch each, so
            # that each is a semi-join on its key (an OR of the two would be a subplan
            # on PostgreSQL), UNIONed so that a row found by both counts once
            parent_key = next(c for c, r in zip(fk.columns, fk.referred, strict=True)
                              if (r,) == OLTP.table(fk.table).primary_key)  # fmt: skip
            agree.append(f"({broken}[[and {child_key}]])"
                         f"{{{{scoped: UNION ({broken}[[and c.{q(parent_key)}]])}}}}")  # fmt: skip
        for fk in t.all_foreign_keys:
            if len(fk.columns) > 1:
                continue
            (col,), (ref,) = fk.columns, fk.referred
            # scoped by the row alone: a run writes parents and never deletes one, so a
            # reference it could break is on a row it wrote
            fks.append(
                f"SELECT '{t.name}.{col} ' || {child_key} || ' -> ' || CAST(c.{q(col)} AS TEXT) AS example "
                f"FROM {q(t.name)} c WHERE c.{q(col)} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {q(fk.table)} p WHERE p.{q(ref)} = c.{q(col)})[[and {child_key}]]"
            )
    from paymodel.model.stripe import OBJECT_TABLES

    kinds = ", ".join(f"'{k}'" for k in OBJECT_TABLES)
    objects = [f"SELECT {q('id')} AS example FROM events WHERE object_type NOT IN ({kinds})"
               f"[[and {q('id')}]]"]  # fmt: skip
    for kind, table in OBJECT_TABLES.items():
        if table != "events":
            objects.append(
                f"SELECT e.{q('id')} AS example FROM events e WHERE e.object_type = '{kind}' "
                f"AND NOT EXISTS (SELECT 1 FROM {q(table)} o WHERE o.{q('id')} = e.object_id)"
                f"[[and e.{q('id')}]]"
            )
    return (
        Invariant("ids_unique", "ids are unique in every table", " UNION ALL ".join(uniques)),
        Invariant("foreign_keys_resolve", "every foreign key resolves", " UNION ALL ".join(fks)),
        Invariant(
            "references_agree",
            "a redundant reference agrees with the path it repeats (each agreement key of "
            "the model: a refund's or dispute's payment intent is its charge's, a charge's "
            "customer its payment intent's, an invoice's or discount's customer its "
            "subscription's)",
            " UNION ALL ".join(agree),
        ),
        Invariant(
            "event_objects_exist",
            "every event's object (data.object) is a row of its table",
            " UNION ALL ".join(objects),
        ),
    )


def invariants(dialect_name: str = "duckdb") -> tuple[Invariant, ...]:
    """Every invariant, for an engine's dialect (``duckdb`` or ``postgresql``)."""
    return (*_generated(dialect_name), *_STATIC)


INVARIANTS: tuple[Invariant, ...] = invariants("duckdb")
"""The invariants (rendered for DuckDB; the names and rules are the same for PostgreSQL)."""


def check_invariants(
    engine: sa.Engine | sa.Connection, *, only: Collection[str] | None = None
) -> list[InvariantResult]:
    """Run every invariant; one result each, with the violation count and a few example ids.

    Args:
        engine: the database.
        only: if given, count only the violations of the rows of these object ids (and,
            for an agreement key, of the rows whose parent is one of them): what a run
            that wrote those objects broke. Each invariant then reads those rows by key
            (:meth:`Invariant.scoped`), so that its cost follows the run, not the
            database (1,000 events into a
            database holding a scale-1 account had cost 2.4x as much as into an empty one
            on PostgreSQL, most of it these checks over every row).
    """
    from paymodel.oltp.engines import connection
    from paymodel.oltp.schema import dialect_name

    results = []
    with connection(engine) as conn:
        if only is not None:
            return _named(conn, only, dialect_name(conn))
        for inv in invariants(dialect_name(conn)):
            count = conn.execute(sa.text(f"SELECT COUNT(*) FROM ({inv.sql}) v")).scalar_one()
            examples: tuple[str, ...] = ()
            if count:
                rows = conn.execute(
                    sa.text(f"SELECT example FROM ({inv.sql}) v ORDER BY example LIMIT :n"),
                    {"n": EXAMPLES},
                )
                examples = tuple(str(r[0]) for r in rows)
            results.append(InvariantResult(inv.name, inv.description, int(count), examples))
    return results


def _named(conn: sa.Connection, only: Collection[str], dialect: str) -> list[InvariantResult]:
    from paymodel.oltp.backend import backend

    engine = backend(conn)
    results = []
    with engine.key_table(conn, sorted(only)) as keys, engine.key_lookups(conn):
        engine.analyze(conn, [keys.name])
        for inv in invariants(dialect):
            every = conn.execute(sa.text(f"SELECT example FROM ({inv.scoped(keys.name)}) v"))
            named = sorted({str(e) for e in every.scalars()})  # once, if two branches found it
            results.append(InvariantResult(inv.name, inv.description, len(named),
                                           tuple(named[:EXAMPLES])))  # fmt: skip
    return results


def assert_invariants(engine: sa.Engine | sa.Connection) -> list[InvariantResult]:
    """Run every invariant; raise :class:`InvariantViolation` naming each broken one."""
    results = check_invariants(engine)
    failed = [r for r in results if not r.ok]
    if failed:
        raise InvariantViolation(failed)
    return results
