"""Functional-dependency tools (paymodel.model.normalization) and the flat payments export."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paymodel.model.normalization import (
    FunctionalDependency,
    NormalForm,
    candidate_keys,
    closure,
    compare_rejoin,
    fd,
    holds,
    implied_keys,
    is_lossless,
    minimal_cover,
    nest,
    non_atomic_columns,
    normal_form,
    partial_dependencies,
    project,
    project_dependencies,
    rejoin,
    split_on,
    synthesize_3nf,
    transitive_dependencies,
    unnest,
    violations,
)
from paymodel.synthetic.dashboard_export import (
    COLUMNS,
    DEPENDENCIES,
    FEE_LISTS,
    KEY_CANDIDATES,
    payments_export,
)

# --------------------------------------------------------------------------- on data


def test_violations_lists_each_conflicting_value_with_its_row_count():
    df = pd.DataFrame(
        {
            "customer_id": ["cus_1", "cus_1", "cus_1", "cus_2", "cus_3"],
            "email": ["a@x.org", "a@x.org", "b@x.org", "c@x.org", "d@x.org"],
        }
    )
    broken = violations(df, "customer_id", "email")
    assert broken.to_dict("records") == [
        {"customer_id": "cus_1", "email": "a@x.org", "row_count": 2},
        {"customer_id": "cus_1", "email": "b@x.org", "row_count": 1},
    ]
    assert not holds(df, "customer_id", "email")
    assert holds(df.iloc[3:], "customer_id", "email")
    assert violations(df.iloc[3:], "customer_id", "email").empty


def test_null_equals_null_on_both_sides():
    df = pd.DataFrame({"x": [None, None, "a"], "y": [None, None, None]})
    assert holds(df, "x", "y")  # two NULL x agree, and so do their NULL y
    df2 = pd.DataFrame({"x": [None, None], "y": ["v", None]})
    assert not holds(df2, "x", "y")  # NULL and a value disagree
    assert len(violations(df2, "x", "y")) == 2


def test_several_columns_on_each_side():
    df = pd.DataFrame({"a": [1, 1, 1], "b": [1, 2, 1], "c": [5, 6, 5], "d": [0, 0, 1]})
    assert holds(df, ["a", "b"], "c")
    assert not holds(df, ["a", "b"], ["c", "d"])
    assert set(violations(df, ["a", "b"], ["c", "d"])["d"]) == {0, 1}


def test_unknown_columns_are_named():
    with pytest.raises(KeyError, match="no column nope"):
        holds(pd.DataFrame({"a": [1]}), "a", "nope")


def test_candidate_keys_are_minimal_and_respect_among():
    df = pd.DataFrame({"a": [1, 1, 2, 2], "b": [1, 2, 1, 2], "c": [1, 2, 3, 4]})
    assert candidate_keys(df) == [("c",), ("a", "b")]
    assert candidate_keys(df, among=["a", "b"]) == [("a", "b")]
    assert candidate_keys(df, among=["a"]) == []


def test_project_is_distinct():
    df = pd.DataFrame({"a": [1, 1, 2], "b": [3, 4, 5]})
    assert project(df, "a")["a"].tolist() == [1, 2]


def test_split_on_a_dependency_that_does_not_hold_is_refused():
    df = pd.DataFrame({"customer_id": ["cus_1", "cus_1"], "email": ["a", "b"], "k": [1, 2]})
    with pytest.raises(ValueError, match=r"customer_id='cus_1'.*lossy"):
        split_on(df, fd("customer_id -> email"))


def test_a_split_on_a_non_dependency_is_lossy_and_names_the_spurious_rows():
    df = pd.DataFrame({"charge_id": ["ch_1", "ch_2"], "currency": ["usd", "usd"], "amount": [1, 2]})
    parts = [project(df, ["charge_id", "currency"]), project(df, ["currency", "amount"])]
    result = compare_rejoin(df, parts)
    assert not result.lossless
    assert result.missing.empty
    assert sorted(map(tuple, result.spurious.to_numpy().tolist())) == [
        ("ch_1", "usd", 2),
        ("ch_2", "usd", 1),
    ]


def test_rejoin_order_is_free_but_a_cross_product_is_refused():
    a = pd.DataFrame({"k": [1], "x": [2]})
    b = pd.DataFrame({"x": [2], "y": [3]})
    c = pd.DataFrame({"y": [3], "z": [4]})
    assert rejoin([a, c, b]).to_dict("records") == [{"k": 1, "x": 2, "y": 3, "z": 4}]
    with pytest.raises(ValueError, match="cross product"):
        rejoin([a, pd.DataFrame({"q": [1]})])


def test_left_rejoin_keeps_parents_without_children():
    parents = pd.DataFrame({"charge_id": ["ch_1", "ch_2"]})
    children = pd.DataFrame({"charge_id": ["ch_1"], "refund_id": ["re_1"]})
    original = pd.DataFrame({"charge_id": ["ch_1", "ch_2"], "refund_id": ["re_1", None]})
    assert not is_lossless(original, [parents, children])
    assert is_lossless(original, [parents, children], how="left")


def test_compare_rejoin_refuses_parts_with_other_columns():
    df = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(ValueError, match="columns"):
        compare_rejoin(df, [project(df, "a")])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.one_of(st.none(), st.integers(0, 2))),
        min_size=1,
        max_size=25,
    )
)
def test_heath_theorem_a_split_on_a_holding_dependency_is_lossless(rows):
    """X -> Y holds: R = R[X, Y] join R[X, Z], NULLs included (Heath, 1971)."""
    df = pd.DataFrame(rows, columns=["x", "z", "w"])
    df["y"] = df["x"] * 10  # y depends on x alone
    assert holds(df, "x", "y")
    parts = split_on(df, fd("x -> y"))
    assert is_lossless(df, list(parts))
    assert is_lossless(df, list(reversed(parts)))


# --------------------------------------------------------------------------- first normal form


def test_unnest_and_nest_are_inverses():
    df = pd.DataFrame(
        {"charge_id": ["ch_1", "ch_2"], "fee_types": ["stripe_fee,tax", "stripe_fee"],
         "fee_amounts": ["59,12", "40"], "amount": [1000, 500]}
    )  # fmt: skip
    flat = unnest(df, FEE_LISTS, dtypes={"fee_amount": "int64"})
    assert list(flat.columns) == ["charge_id", "fee_type", "fee_amount", "amount"]
    assert flat["fee_amount"].tolist() == [59, 12, 40]
    assert non_atomic_columns(df) == ["fee_types", "fee_amounts"]
    assert non_atomic_columns(flat) == []
    back = nest(flat, "charge_id", {v: k for k, v in FEE_LISTS.items()})
    assert is_lossless(df, [back])


def test_unnest_names_the_row_with_an_empty_or_ragged_list():
    empty = pd.DataFrame({"charge_id": ["ch_1"], "fee_types": [""], "fee_amounts": [""]})
    with pytest.raises(ValueError, match="charge_id='ch_1': fee_types is empty"):
        unnest(empty, FEE_LISTS, key="charge_id")
    ragged = pd.DataFrame({"charge_id": ["ch_9"], "fee_types": ["a,b"], "fee_amounts": ["1"]})
    with pytest.raises(ValueError, match=r"ch_9.*differ in length"):
        unnest(ragged, FEE_LISTS, key="charge_id")


# --------------------------------------------------------------------------- theory

# Date's classic supplier relation: S(sno, status, city, pno, qty), sno -> city,
# city -> status, (sno, pno) -> qty.
FIRST = ["sno", "status", "city", "pno", "qty"]
FIRST_DEPS = [fd("sno -> city"), fd("city -> status"), fd("sno, pno -> qty")]


def test_closure_keys_and_normal_forms_of_a_textbook_relation():
    assert closure(["sno"], FIRST_DEPS) == {"sno", "city", "status"}
    assert implied_keys(FIRST, FIRST_DEPS) == [("sno", "pno")]
    assert [str(d) for d in partial_dependencies(FIRST, FIRST_DEPS)] == ["sno -> status, city"]
    assert normal_form(FIRST, FIRST_DEPS) is NormalForm.FIRST
    second = ["sno", "status", "city"]
    assert normal_form(second, FIRST_DEPS) is NormalForm.SECOND
    assert [str(d) for d in transitive_dependencies(second, FIRST_DEPS)] == ["city -> status"]
    assert normal_form(["city", "status"], FIRST_DEPS) is NormalForm.BOYCE_CODD


def test_third_but_not_boyce_codd():
    # street, city -> zip; zip -> city: the classic 3NF relation that is not BCNF.
    deps = [fd("street, city -> zip"), fd("zip -> city")]
    attrs = ["street", "city", "zip"]
    assert implied_keys(attrs, deps) == [("street", "city"), ("street", "zip")]
    assert normal_form(attrs, deps) is NormalForm.THIRD


def test_projected_dependencies_go_through_dropped_attributes():
    deps = [fd("a -> b"), fd("b -> c")]
    assert [str(d) for d in project_dependencies(deps, ["a", "c"])] == ["a -> c"]


def test_minimal_cover_removes_redundancy_and_extraneous_attributes():
    cover = minimal_cover([fd("a -> b, c"), fd("a, b -> c"), fd("b -> c"), fd("a, d -> b")])
    assert sorted(map(str, cover)) == ["a -> b", "b -> c"]


def test_synthesis_adds_a_key_schema_when_no_dependency_covers_the_key():
    attrs = ["sno", "status", "city", "pno", "qty"]
    deps = [fd("sno -> city"), fd("city -> status")]  # nothing determines qty
    schemas = synthesize_3nf(attrs, deps)
    assert ("sno", "pno", "qty") in schemas
    assert all(normal_form(s, deps) >= NormalForm.THIRD for s in schemas)


def test_fd_parsing_and_rendering():
    dep = fd(" a ,b->c ")
    assert dep == FunctionalDependency(("a", "b"), ("c",))
    assert str(dep) == "a, b -> c"
    with pytest.raises(ValueError, match="both sides"):
        fd("a ->")


# --------------------------------------------------------------------------- the export


def test_export_is_deterministic_per_seed():
    assert payments_export(30, seed=3).equals(payments_export(30, seed=3))
    assert not payments_export(30, seed=3).equals(payments_export(30, seed=4))


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_export_rows_honour_the_declared_dependencies_and_the_money_rules(seed):
    export = payments_export(60, seed=seed)
    assert tuple(export.columns) == COLUMNS
    assert export["charge_id"].is_unique
    assert (export["amount_refunded"] <= export["amount"]).all()
    assert (export["amount"] > 0).all()
    assert export["created"].dt.tz is not None
    assert (export["created"].dt.microsecond == 0).all()
    assert export["card_last4"].str.fullmatch(r"[0-9]{4}").all()
    assert export["currency"].str.fullmatch(r"[a-z]{3}").all()
    flat = unnest(export, FEE_LISTS, dtypes={"fee_amount": "int64"}, key="charge_id")
    for dep in DEPENDENCIES:
        assert holds(flat, dep.lhs, dep.rhs), f"{dep}: {violations(flat, dep.lhs, dep.rhs)}"
    assert candidate_keys(flat, among=KEY_CANDIDATES) == [("charge_id", "fee_type")]


def test_export_normalises_to_bcnf_parts_that_rejoin_to_it():
    export = payments_export(40, seed=7)
    flat = unnest(export, FEE_LISTS, dtypes={"fee_amount": "int64"}, key="charge_id")
    cols = list(flat.columns)
    assert normal_form(cols, DEPENDENCIES) is NormalForm.FIRST
    (partial,) = partial_dependencies(cols, DEPENDENCIES)
    charges, fees = split_on(flat, partial)
    schemas = synthesize_3nf(list(charges.columns), DEPENDENCIES)
    parts = [project(charges, s) for s in schemas] + [fees]
    assert all(normal_form(list(p.columns), DEPENDENCIES) is NormalForm.BOYCE_CODD for p in parts)
    assert is_lossless(flat, parts)
    back = nest(rejoin(parts)[cols], "charge_id", {v: k for k, v in FEE_LISTS.items()})
    assert is_lossless(export, [back])
