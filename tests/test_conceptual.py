"""Relationships and cardinalities read from the model's foreign keys."""

from __future__ import annotations

from paymodel.model.conceptual import associations, many_to_many, relationships
from paymodel.model.core import ID, Column, ForeignKey, Model, Table
from paymodel.model.oltp import OLTP


def _model() -> Model:
    def ident(what: str) -> Column:
        return Column("id", ID, f"{what} id.")

    parents = Table("parents", "One row per parent.", None, [ident("Parent")])
    others = Table("others", "One row per other.", None, [ident("Other")])
    children = Table(
        "children", "One row per child.", None,
        [ident("Child"), Column("parent_id", ID, "Parent.", references="parents"),
         Column("maybe_id", ID, "Optional parent.", nullable=True, references="parents")],
    )  # fmt: skip
    extension = Table(
        "extensions", "One row per parent with an extension.", None,
        [Column("parent_id", ID, "Parent.", references="parents")], primary_key=("parent_id",),
    )  # fmt: skip
    links = Table(
        "links", "One row per parent and other.", None,
        [ident("Link"), Column("parent_id", ID, "Parent."), Column("other_id", ID, "Other.")],
        foreign_keys=[ForeignKey(("parent_id",), "parents"), ForeignKey(("other_id",), "others")],
        unique=[("parent_id", "other_id")],
    )  # fmt: skip
    return Model("m", "Test model.", [parents, others, children, extension, links])


def test_cardinalities_follow_nullability_and_uniqueness():
    rels = {(r.child, r.columns): r for r in relationships(_model())}
    assert rels["children", ("parent_id",)].child_side == "exactly one"
    assert rels["children", ("maybe_id",)].child_side == "zero or one"
    assert rels["children", ("parent_id",)].kind == "one-to-many"
    assert rels["extensions", ("parent_id",)].kind == "one-to-one"
    assert [(a.table, a.left, a.right) for a in associations(_model())] == [
        ("links", "parents", "others")
    ]


def test_currency_references_are_optional_and_every_foreign_key_appears_once():
    """Once each; an agreement key draws no second edge beside its first column's own key."""
    with_currencies = relationships(OLTP, currencies=True)
    assert len(with_currencies) == sum(
        len(t.all_foreign_keys) - len(t.agreement_keys) for t in OLTP.tables
    )
    assert sum(len(t.agreement_keys) for t in OLTP.tables) == 5
    assert all(r.parent != "currencies" for r in relationships(OLTP))
    assert any(r.parent == "currencies" for r in with_currencies)


def test_every_relationship_has_a_verb_phrase_that_reads_as_a_sentence():
    """No label falls back to the foreign-key column, and each reads parent to child."""
    for r in relationships(OLTP):
        assert r.label != "_".join(r.columns), f"{r.parent} -> {r.child}: no label in mermaid.py"
        assert r.sentence.startswith(("A ", "An ")), r.sentence
        assert r.sentence.endswith(f"{r.child.replace('_', ' ')}.") or r.parent_side == "zero or one"
    sentences = {r.sentence for r in relationships(OLTP)}
    assert "A product is priced by zero or more prices." in sentences
    assert "An invoice is paid by zero or more invoice payments." in sentences


def test_many_to_many_relationships_are_the_ones_a_table_resolves():
    pairs = {(m.table, m.left, m.right): m.once_per_pair for m in many_to_many(_model())}
    assert pairs == {("links", "parents", "others"): True}
    oltp = {(m.table, m.left, m.right): m.once_per_pair for m in many_to_many(OLTP)}
    assert oltp[("invoice_payments", "invoices", "payment_intents")] is True
    assert oltp[("subscription_items", "subscriptions", "prices")] is False
    assert ("charges", "customers", "payment_intents") not in oltp  # the intent names the customer
