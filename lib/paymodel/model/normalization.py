"""Functional dependencies and normal forms, on data (pandas) and in theory.

Two kinds of tools, used side by side by notebook 02:

* **On data** (a :class:`pandas.DataFrame` is a relation): :func:`holds` and
  :func:`violations` test a functional dependency X -> Y on the rows,
  :func:`candidate_keys` finds minimal unique column sets, :func:`project`,
  :func:`split_on` and :func:`rejoin` decompose and re-join, :func:`compare_rejoin` /
  :func:`is_lossless` prove a decomposition lossless, :func:`non_atomic_columns`,
  :func:`unnest` and :func:`nest` take a repeating group to first normal form and back.
* **In theory** (a relation is a set of attribute names with dependencies):
  :func:`closure`, :func:`implied_keys`, :func:`project_dependencies`,
  :func:`minimal_cover`, :func:`partial_dependencies` (what 2NF removes),
  :func:`transitive_dependencies` (what 3NF removes), :func:`normal_form` and
  :func:`synthesize_3nf` (Bernstein's synthesis).

Data can refute a dependency, never prove one: a dependency holds because of what the
columns mean. The theory functions take the dependencies we know from the domain; the
data functions check that the rows do not contradict them.

Null semantics (one rule, everywhere): a NULL (``None``, ``NaN``, ``pd.NA``) is treated
as an ordinary value equal to every other NULL and to nothing else, as SQL's
``GROUP BY``, ``DISTINCT`` and ``IS NOT DISTINCT FROM`` do (and unlike ``=`` or a
default ``UNIQUE`` constraint). So two rows with NULL in X agree on X; a NULL and a
value in Y disagree; a natural join matches NULL with NULL.

Relations are sets: :func:`project` drops duplicate rows and :func:`compare_rejoin`
compares distinct rows, whatever their order and the order of the columns.

Example:
    >>> import pandas as pd
    >>> charges = pd.DataFrame({
    ...     "charge_id": ["ch_1", "ch_2", "ch_3"],
    ...     "customer_id": ["cus_1", "cus_1", "cus_2"],
    ...     "customer_email": ["a@example.com", "a@example.com", "b@example.com"],
    ... })
    >>> holds(charges, "customer_id", "customer_email")
    True
    >>> customers, rest = split_on(charges, fd("customer_id -> customer_email"))
    >>> list(rest.columns), len(customers)
    (['charge_id', 'customer_id'], 2)
    >>> is_lossless(charges, [rest, customers])
    True
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "FunctionalDependency",
    "NormalForm",
    "RejoinComparison",
    "candidate_keys",
    "closure",
    "compare_rejoin",
    "fd",
    "holds",
    "implied_keys",
    "is_lossless",
    "minimal_cover",
    "nest",
    "non_atomic_columns",
    "normal_form",
    "partial_dependencies",
    "project",
    "project_dependencies",
    "rejoin",
    "split_on",
    "synthesize_3nf",
    "transitive_dependencies",
    "unnest",
    "violations",
]

Columns = str | Sequence[str]

MAX_DETERMINANT_ATTRIBUTES = 20
"""Projection and key search enumerate subsets of the determinant attributes (2^n)."""


# --------------------------------------------------------------------------- dependencies
@dataclass(frozen=True, order=True)
class FunctionalDependency:
    """X -> Y: rows that agree on the columns ``lhs`` agree on the columns ``rhs``.

    Attributes:
        lhs: the determinant X (non-empty).
        rhs: the dependent columns Y (non-empty).

    Example:
        >>> dep = fd("customer_id -> customer_email, customer_name")
        >>> dep.lhs, dep.rhs
        (('customer_id',), ('customer_email', 'customer_name'))
        >>> str(dep)
        'customer_id -> customer_email, customer_name'
    """

    lhs: tuple[str, ...]
    rhs: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "lhs", _columns(self.lhs))
        object.__setattr__(self, "rhs", _columns(self.rhs))
        if not self.lhs or not self.rhs:
            raise ValueError(f"functional dependency {self}: both sides need a column")

    def __str__(self) -> str:
        return f"{', '.join(self.lhs)} -> {', '.join(self.rhs)}"

    @property
    def attributes(self) -> frozenset[str]:
        """Every column the dependency mentions."""
        return frozenset(self.lhs) | frozenset(self.rhs)


def fd(text: str) -> FunctionalDependency:
    """Parse ``"a, b -> c, d"`` into a :class:`FunctionalDependency`.

    Example:
        >>> fd("charge_id, fee_type -> fee_amount").lhs
        ('charge_id', 'fee_type')
        >>> fd("charge_id")
        Traceback (most recent call last):
        ...
        ValueError: functional dependency 'charge_id': expected 'X -> Y'
    """
    left, arrow, right = text.partition("->")
    if not arrow:
        raise ValueError(f"functional dependency {text!r}: expected 'X -> Y'")

    def names(side: str) -> tuple[str, ...]:
        return tuple(n.strip() for n in side.split(",") if n.strip())

    return FunctionalDependency(names(left), names(right))


def _columns(columns: Columns) -> tuple[str, ...]:
    if isinstance(columns, str):
        return (columns,)
    out = tuple(columns)
    if len(set(out)) != len(out):
        raise ValueError(f"columns {out}: a column is named twice")
    return out


def _check_columns(df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"relation has no column {', '.join(missing)}; it has {list(df.columns)}")


# --------------------------------------------------------------------------- on data
def violations(df: pd.DataFrame, lhs: Columns, rhs: Columns) -> pd.DataFrame:
    """The rows that break X -> Y, as the distinct (X, Y) combinations of each broken X.

    Args:
        df: the relation.
        lhs: X, one column name or several.
        rhs: Y, one column name or several.

    Returns:
        One row per distinct (X, Y) among the X values that have more than one Y, sorted
        by X then Y, with ``row_count``: how many rows of ``df`` carry that (X, Y). Empty
        (same columns) when the dependency holds. NULLs compare equal (module docstring).

    Example:
        >>> df = pd.DataFrame({"customer_id": ["cus_1", "cus_1", "cus_2"],
        ...                    "email": ["a@example.com", "b@example.com", None]})
        >>> violations(df, "customer_id", "email")
          customer_id          email  row_count
        0       cus_1  a@example.com          1
        1       cus_1  b@example.com          1
    """
    x, y = _columns(lhs), _columns(rhs)
    _check_columns(df, (*x, *y))
    if "row_count" in (*x, *y):
        raise ValueError("violations: a column is called row_count, the name of the count")
    both = list(dict.fromkeys((*x, *y)))
    counted = df.groupby(both, dropna=False, sort=False).size().rename("row_count").reset_index()
    broken = counted[counted.duplicated(subset=list(x), keep=False)]
    return broken.sort_values(both, na_position="last", kind="stable").reset_index(drop=True)


def holds(df: pd.DataFrame, lhs: Columns, rhs: Columns) -> bool:
    """Whether X -> Y holds on the rows of ``df`` (NULL equals NULL).

    Example:
        >>> df = pd.DataFrame({"price_id": ["p1", "p1", "p2"], "product_id": ["a", "a", "a"]})
        >>> holds(df, "price_id", "product_id"), holds(df, "product_id", "price_id")
        (True, False)
    """
    x, y = _columns(lhs), _columns(rhs)
    _check_columns(df, (*x, *y))
    distinct = df[list(dict.fromkeys((*x, *y)))].drop_duplicates()
    return not distinct.duplicated(subset=list(x)).any()


def _codes(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column as integer codes, NULL a code of its own (NULL equals NULL)."""
    out = {}
    for name in df.columns:
        codes, _ = pd.factorize(df[name], use_na_sentinel=False)
        out[name] = codes.astype(np.int64)
    return out


def _unique(codes: Sequence[np.ndarray]) -> bool:
    if not codes or len(codes[0]) == 0:
        return True
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        # Re-factorize the running combination so it never overflows.
        combined, _ = pd.factorize(combined * (int(c.max()) + 1) + c)
    return len(np.unique(combined)) == len(combined)


def candidate_keys(
    df: pd.DataFrame, among: Sequence[str] | None = None, max_size: int = 3
) -> list[tuple[str, ...]]:
    """Minimal sets of columns whose values are unique on the rows of ``df``.

    On a sample, a column that happens to be unique (a timestamp) looks like a key: pass
    ``among`` to search only the columns that could be keys in the domain.

    Args:
        df: the relation (duplicate rows are ignored: a relation is a set).
        among: the columns to search, in order; every column by default.
        max_size: the largest key size tried.

    Returns:
        The keys, smallest first, each in the order of ``among``; none are supersets of
        another.

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1", "ch_1", "ch_2"],
        ...                    "fee_type": ["stripe_fee", "tax", "stripe_fee"],
        ...                    "fee_amount": [59, 12, 59]})
        >>> candidate_keys(df)  # on 3 rows, the amounts happen to tell fee lines apart
        [('charge_id', 'fee_type'), ('charge_id', 'fee_amount')]
        >>> candidate_keys(df, among=["charge_id", "fee_type"])
        [('charge_id', 'fee_type')]
    """
    cols = list(df.columns if among is None else among)
    _check_columns(df, cols)
    codes = _codes(df.drop_duplicates()[cols])
    keys: list[tuple[str, ...]] = []
    for size in range(1, max_size + 1):
        for combo in itertools.combinations(cols, size):
            if any(set(k) <= set(combo) for k in keys):
                continue
            if _unique([codes[c] for c in combo]):
                keys.append(combo)
    return keys


def project(df: pd.DataFrame, columns: Columns) -> pd.DataFrame:
    """The distinct rows of ``df`` on ``columns`` (relational projection), first-seen order.

    Example:
        >>> df = pd.DataFrame({"customer_id": ["cus_1", "cus_1"], "charge_id": ["ch_1", "ch_2"]})
        >>> project(df, "customer_id")
          customer_id
        0       cus_1
    """
    cols = list(_columns(columns))
    _check_columns(df, cols)
    return df[cols].drop_duplicates().reset_index(drop=True)


def split_on(
    df: pd.DataFrame, dependency: FunctionalDependency
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decompose ``df`` on X -> Y into (X + Y) and (all columns - Y) (Heath's theorem).

    When X -> Y holds, the natural join of the two parts is ``df`` again (lossless).

    Returns:
        ``(determined, rest)``: the projection on X and Y, keyed by X; and the projection
        on the other columns, which keeps X to join on.

    Raises:
        ValueError: X -> Y does not hold on ``df`` (the split would be lossy); the message
            names the first X value with conflicting Y values.

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1", "ch_2"], "currency": ["usd", "usd"],
        ...                    "exponent": [2, 2]})
        >>> currencies, charges = split_on(df, fd("currency -> exponent"))
        >>> currencies.to_dict("records"), list(charges.columns)
        ([{'currency': 'usd', 'exponent': 2}], ['charge_id', 'currency'])
    """
    broken = violations(df, dependency.lhs, dependency.rhs)
    if not broken.empty:
        first = broken.iloc[0]
        where = ", ".join(f"{c}={first[c]!r}" for c in dependency.lhs)
        raise ValueError(
            f"{dependency} does not hold: {where} has several values of "
            f"{', '.join(dependency.rhs)}; splitting on it would be lossy"
        )
    determined = project(df, [*dependency.lhs, *(c for c in dependency.rhs if c not in dependency.lhs)])
    rest = project(df, [c for c in df.columns if c not in dependency.rhs or c in dependency.lhs])
    return determined, rest


def rejoin(parts: Sequence[pd.DataFrame], how: str = "inner") -> pd.DataFrame:
    """Natural join of ``parts`` on the columns they share.

    Starting from the first part, each step joins the first remaining part that shares
    a column with the result so far, on all the columns they share.

    Args:
        parts: the relations.
        how: ``"inner"`` (the natural join) or ``"left"`` (keep rows of the left side that
            have no match, as a parent without children).

    Raises:
        ValueError: some part shares no column with the others (a cross product).

    Example:
        >>> a = pd.DataFrame({"charge_id": ["ch_1"], "customer_id": ["cus_1"]})
        >>> b = pd.DataFrame({"customer_id": ["cus_1"], "email": ["a@example.com"]})
        >>> rejoin([a, b]).to_dict("records")
        [{'charge_id': 'ch_1', 'customer_id': 'cus_1', 'email': 'a@example.com'}]
    """
    if how not in ("inner", "left"):
        raise ValueError(f"rejoin: how={how!r}; expected 'inner' or 'left'")
    if not parts:
        raise ValueError("rejoin: no parts")

    result, pending = parts[0], list(enumerate(parts[1:], start=1))
    while pending:
        # The first part (in the given order) that shares a column with the result so far.
        for position, (_, right) in enumerate(pending):
            on = [c for c in result.columns if c in right.columns]
            if on:
                result = result.merge(right, on=on, how=how)
                del pending[position]
                break
        else:
            names = [list(p.columns) for _, p in pending]
            raise ValueError(
                f"rejoin: parts {[i for i, _ in pending]} ({names}) share no column with the "
                "others; a natural join would be a cross product"
            )
    return result


@dataclass(frozen=True)
class RejoinComparison:
    """The re-join of a decomposition against the original relation, as sets of rows.

    Attributes:
        missing: rows of the original that the re-join lost.
        spurious: rows of the re-join that the original never had.
    """

    missing: pd.DataFrame
    spurious: pd.DataFrame

    @property
    def lossless(self) -> bool:
        """True when the re-join is the original: nothing missing, nothing spurious."""
        return self.missing.empty and self.spurious.empty


def compare_rejoin(
    original: pd.DataFrame, parts: Sequence[pd.DataFrame], how: str = "inner"
) -> RejoinComparison:
    """Re-join ``parts`` (:func:`rejoin`) and compare with ``original`` as sets of rows.

    Values compare by value (``1`` equals ``1.0``; NULL equals NULL), whatever the row
    and column order.

    Raises:
        ValueError: the parts do not have exactly the original's columns between them.

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1", "ch_2"], "currency": ["usd", "usd"],
        ...                    "amount": [100, 200]})
        >>> lossy = compare_rejoin(df, [project(df, ["charge_id", "currency"]),
        ...                              project(df, ["currency", "amount"])])
        >>> lossy.lossless, len(lossy.spurious)
        (False, 2)
    """
    joined = rejoin(parts, how=how)
    if set(joined.columns) != set(original.columns):
        raise ValueError(
            f"the parts have columns {sorted(joined.columns)}, the original "
            f"{sorted(original.columns)}"
        )
    cols = list(original.columns)
    left = original[cols].drop_duplicates()
    right = joined[cols].drop_duplicates()
    both = left.merge(right, on=cols, how="outer", indicator=True)
    missing = both.loc[both["_merge"] == "left_only", cols].reset_index(drop=True)
    spurious = both.loc[both["_merge"] == "right_only", cols].reset_index(drop=True)
    return RejoinComparison(missing, spurious)


def is_lossless(original: pd.DataFrame, parts: Sequence[pd.DataFrame], how: str = "inner") -> bool:
    """Whether the re-join of ``parts`` is exactly ``original`` (as a set of rows).

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1", "ch_2"], "currency": ["usd", "jpy"],
        ...                    "exponent": [2, 0]})
        >>> is_lossless(df, list(split_on(df, fd("currency -> exponent"))))
        True
    """
    return compare_rejoin(original, parts, how=how).lossless


# --------------------------------------------------------------------------- first normal form
def non_atomic_columns(df: pd.DataFrame, sep: str = ",") -> list[str]:
    """Text columns holding a list: some value contains ``sep`` (a repeating group).

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1"], "fee_types": ["stripe_fee,tax"]})
        >>> non_atomic_columns(df)
        ['fee_types']
    """
    out = []
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_string_dtype(col) or col.dtype == object:
            text = col.dropna()
            text = text[text.map(lambda v: isinstance(v, str))]
            if text.str.contains(sep, regex=False).any():
                out.append(name)
    return out


def unnest(
    df: pd.DataFrame,
    lists: Mapping[str, str],
    *,
    sep: str = ",",
    dtypes: Mapping[str, str] | None = None,
    key: Columns | None = None,
) -> pd.DataFrame:
    """One row per item of a repeating group: first normal form.

    Parallel lists (``fee_types`` and ``fee_amounts``) are zipped: item i of each goes to
    row i. The other columns are repeated on every row.

    Args:
        df: the relation.
        lists: list column -> name of the column of its items, in the output's order.
        sep: the separator inside a list.
        dtypes: dtypes of the new columns (items are text otherwise).
        key: columns naming a row in errors (the row number otherwise).

    Raises:
        ValueError: a list is empty or NULL (its row would vanish: not reversible), or
            parallel lists differ in length; the message names the row.

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1"], "fee_types": ["stripe_fee,tax"],
        ...                    "fee_amounts": ["59,12"]})
        >>> unnest(df, {"fee_types": "fee_type", "fee_amounts": "fee_amount"},
        ...        dtypes={"fee_amount": "int64"}).to_dict("records")
        [{'charge_id': 'ch_1', 'fee_type': 'stripe_fee', 'fee_amount': 59}, {'charge_id': 'ch_1', 'fee_type': 'tax', 'fee_amount': 12}]
    """
    _check_columns(df, lists)
    keys = _columns(key) if key is not None else None
    split = {c: df[c].map(lambda v: [] if pd.isna(v) or v == "" else str(v).split(sep)) for c in lists}
    lengths = pd.DataFrame({c: s.map(len) for c, s in split.items()})
    first = next(iter(lists))
    for i, (row, n) in enumerate(zip(df.index, lengths[first], strict=True)):
        bad = [c for c in lists if lengths.at[row, c] != n]
        if n == 0 or bad:
            who = (", ".join(f"{k}={df.at[row, k]!r}" for k in keys)) if keys else f"row {i}"
            rule = (
                f"{first} is empty; flattening would drop the row"
                if n == 0
                else f"{', '.join(bad)} and {first} differ in length"
            )
            raise ValueError(f"{who}: {rule}")
    first_col_pos = min(df.columns.get_loc(c) for c in lists)
    out = df.drop(columns=list(lists)).copy()
    for c, name in lists.items():
        out[name] = split[c]
    out = out.explode(list(lists.values()), ignore_index=True)
    others = [c for c in df.columns if c not in lists]
    order = [*others[:first_col_pos], *lists.values(), *others[first_col_pos:]]
    out = out[order]
    for name in lists.values():
        out[name] = out[name].astype((dtypes or {}).get(name, "str"))
    return out


def nest(
    df: pd.DataFrame, by: Columns, lists: Mapping[str, str], *, sep: str = ","
) -> pd.DataFrame:
    """The inverse of :func:`unnest`: one row per ``by``, items joined into lists.

    Args:
        df: the flattened relation.
        by: the columns that identify a row of the nested relation.
        lists: item column -> name of its list column.
        sep: the separator to join with.

    Returns:
        The other columns (which must be constant per ``by``) and the list columns, in
        first-seen order of ``by``, items in row order.

    Example:
        >>> df = pd.DataFrame({"charge_id": ["ch_1", "ch_1"], "fee_type": ["stripe_fee", "tax"]})
        >>> nest(df, "charge_id", {"fee_type": "fee_types"}).to_dict("records")
        [{'charge_id': 'ch_1', 'fee_types': 'stripe_fee,tax'}]
    """
    keys = list(_columns(by))
    _check_columns(df, [*keys, *lists])
    others = [c for c in df.columns if c not in lists]
    joined = df.groupby(keys, sort=False, dropna=False).agg(
        **{name: (item, lambda s: sep.join(map(str, s))) for item, name in lists.items()}
    )
    base = df[others].drop_duplicates()
    if base.duplicated(subset=keys).any():
        raise ValueError(f"nest: columns other than the lists are not constant per {keys}")
    return base.merge(joined.reset_index(), on=keys, how="left").reset_index(drop=True)


# --------------------------------------------------------------------------- theory
def closure(attributes: Iterable[str], dependencies: Iterable[FunctionalDependency]) -> frozenset[str]:
    """Every attribute that ``attributes`` determine under ``dependencies`` (X+).

    Example:
        >>> deps = [fd("charge_id -> customer_id"), fd("customer_id -> email")]
        >>> sorted(closure(["charge_id"], deps))
        ['charge_id', 'customer_id', 'email']
    """
    deps = list(dependencies)
    result = set(attributes)
    changed = True
    while changed:
        changed = False
        for d in deps:
            if set(d.lhs) <= result and not set(d.rhs) <= result:
                result |= set(d.rhs)
                changed = True
    return frozenset(result)


def _determinants(attributes: Collection[str], deps: Sequence[FunctionalDependency]) -> list[str]:
    """The attributes of ``attributes`` that appear on some left side, in given order."""
    lhs = {a for d in deps for a in d.lhs}
    found = [a for a in attributes if a in lhs]
    if len(found) > MAX_DETERMINANT_ATTRIBUTES:
        raise ValueError(
            f"{len(found)} determinant attributes: more than {MAX_DETERMINANT_ATTRIBUTES}, "
            "too many subsets to enumerate"
        )
    return found


def _subsets(items: Sequence[str], nonempty: bool = True) -> Iterable[tuple[str, ...]]:
    start = 1 if nonempty else 0
    return itertools.chain.from_iterable(
        itertools.combinations(items, n) for n in range(start, len(items) + 1)
    )


def implied_keys(
    attributes: Sequence[str], dependencies: Iterable[FunctionalDependency]
) -> list[tuple[str, ...]]:
    """The candidate keys of a relation on ``attributes`` that ``dependencies`` imply.

    Attributes that nothing determines belong to every key; the search adds subsets of
    the other determinant attributes, smallest first.

    Returns:
        The keys, each in the order of ``attributes``, smallest first.

    Example:
        >>> deps = [fd("charge_id -> amount, customer_id"), fd("customer_id -> email"),
        ...         fd("charge_id, fee_type -> fee_amount")]
        >>> implied_keys(["charge_id", "fee_type", "fee_amount", "amount", "customer_id",
        ...               "email"], deps)
        [('charge_id', 'fee_type')]
    """
    attrs = list(dict.fromkeys(attributes))
    everything = set(attrs)
    deps = list(dependencies)
    core = [a for a in attrs if a not in closure(everything - {a}, deps)]
    candidates = [a for a in _determinants(attrs, deps) if a not in core]
    keys: list[tuple[str, ...]] = []
    for extra in _subsets(candidates, nonempty=False):
        chosen = set(core) | set(extra)
        if any(set(k) <= chosen for k in keys):
            continue
        if everything <= closure(chosen, deps):
            keys.append(tuple(a for a in attrs if a in chosen))
    return keys


def project_dependencies(
    dependencies: Iterable[FunctionalDependency], attributes: Sequence[str]
) -> list[FunctionalDependency]:
    """A cover of the dependencies that hold on the projection onto ``attributes``.

    For each subset X of the determinant attributes kept, X -> (X+ & attributes) - X;
    attributes never on a left side determine nothing, so those subsets suffice.

    Example:
        >>> deps = [fd("charge_id -> customer_id"), fd("customer_id -> email")]
        >>> [str(d) for d in project_dependencies(deps, ["charge_id", "email"])]
        ['charge_id -> email']
    """
    deps = list(dependencies)
    attrs = list(dict.fromkeys(attributes))
    out = []
    for x in _subsets(_determinants(attrs, deps)):
        rhs = [a for a in attrs if a in closure(x, deps) and a not in x]
        if rhs:
            out.append(FunctionalDependency(x, tuple(rhs)))
    return out


def minimal_cover(dependencies: Iterable[FunctionalDependency]) -> list[FunctionalDependency]:
    """An equivalent set with single right sides, no extraneous left attribute, none redundant.

    Example:
        >>> deps = [fd("a -> b, c"), fd("a, b -> c"), fd("b -> c")]
        >>> [str(d) for d in minimal_cover(deps)]
        ['a -> b', 'b -> c']
    """
    deps = [
        FunctionalDependency(d.lhs, (a,)) for d in dependencies for a in d.rhs if a not in d.lhs
    ]
    deps = list(dict.fromkeys(deps))
    reduced = []
    for d in deps:
        lhs = list(d.lhs)
        for a in list(lhs):
            if len(lhs) > 1 and d.rhs[0] in closure([b for b in lhs if b != a], deps):
                lhs.remove(a)
        reduced.append(FunctionalDependency(tuple(lhs), d.rhs))
    reduced = list(dict.fromkeys(reduced))
    kept = list(reduced)
    for d in reduced:
        others = [e for e in kept if e != d]
        if d.rhs[0] in closure(d.lhs, others):
            kept = others
    return kept


def _group(deps: Iterable[FunctionalDependency], order: Sequence[str]) -> list[FunctionalDependency]:
    """Merge dependencies with the same left side; sides in ``order``; sorted by left side."""
    rank = {a: i for i, a in enumerate(order)}
    by_lhs: dict[tuple[str, ...], set[str]] = {}
    for d in deps:
        by_lhs.setdefault(d.lhs, set()).update(d.rhs)
    out = [
        FunctionalDependency(lhs, tuple(sorted(rhs, key=rank.__getitem__)))
        for lhs, rhs in by_lhs.items()
    ]
    return sorted(out, key=lambda d: [rank[a] for a in d.lhs])


def partial_dependencies(
    attributes: Sequence[str], dependencies: Iterable[FunctionalDependency]
) -> list[FunctionalDependency]:
    """What 2NF forbids: non-key attributes determined by part of a candidate key.

    Returns:
        One dependency per minimal proper subset S of a key that determines non-prime
        attributes: S -> those attributes (in the order of ``attributes``).

    Example:
        >>> deps = [fd("charge_id -> amount"), fd("charge_id, fee_type -> fee_amount")]
        >>> [str(d) for d in partial_dependencies(
        ...     ["charge_id", "fee_type", "fee_amount", "amount"], deps)]
        ['charge_id -> amount']
    """
    attrs = list(dict.fromkeys(attributes))
    deps = list(dependencies)
    keys = implied_keys(attrs, deps)
    prime = {a for k in keys for a in k}
    out: list[FunctionalDependency] = []
    for key in keys:
        for subset in _subsets(key):
            if len(subset) == len(key):
                continue
            found = [
                a for a in attrs
                if a not in prime and a in closure(subset, deps)
                and not any(set(d.lhs) < set(subset) and a in d.rhs for d in out)
            ]  # fmt: skip
            if found:
                out.append(FunctionalDependency(subset, tuple(found)))
    return _group(out, attrs)


def transitive_dependencies(
    attributes: Sequence[str], dependencies: Iterable[FunctionalDependency]
) -> list[FunctionalDependency]:
    """What 3NF forbids beyond 2NF: non-key attributes determined by non-key attributes.

    Returns:
        X -> A for every determinant set X (from :func:`project_dependencies`) that is not
        a superkey and not part of a key, with the non-prime attributes A outside X it
        determines.

    Example:
        >>> deps = [fd("charge_id -> customer_id"), fd("customer_id -> email")]
        >>> [str(d) for d in transitive_dependencies(["charge_id", "customer_id", "email"], deps)]
        ['customer_id -> email']
    """
    attrs = list(dict.fromkeys(attributes))
    deps = list(dependencies)
    keys = implied_keys(attrs, deps)
    prime = {a for k in keys for a in k}
    out = []
    for d in project_dependencies(deps, attrs):
        superkey = any(set(k) <= set(d.lhs) for k in keys)
        in_key = any(set(d.lhs) < set(k) for k in keys)
        # Keep what no smaller determinant already gives: the minimal reason for each A.
        smaller = set().union(*(closure(set(d.lhs) - {b}, deps) for b in d.lhs))
        nonprime = [a for a in d.rhs if a not in prime and a not in smaller]
        if not superkey and not in_key and nonprime:
            out.append(FunctionalDependency(d.lhs, tuple(nonprime)))
    return _group(out, attrs)


class NormalForm(enum.IntEnum):
    """The highest normal form a relation is in; ordered, so ``nf >= NormalForm.THIRD`` works."""

    FIRST = 1
    SECOND = 2
    THIRD = 3
    BOYCE_CODD = 4

    def __str__(self) -> str:
        return {1: "1NF", 2: "2NF", 3: "3NF", 4: "BCNF"}[self.value]


def normal_form(
    attributes: Sequence[str], dependencies: Iterable[FunctionalDependency]
) -> NormalForm:
    """The highest normal form of a relation on ``attributes`` (atomic values assumed).

    Example:
        >>> deps = [fd("charge_id -> customer_id"), fd("customer_id -> email")]
        >>> str(normal_form(["charge_id", "customer_id", "email"], deps))
        '2NF'
        >>> str(normal_form(["customer_id", "email"], deps))
        'BCNF'
    """
    attrs = list(dict.fromkeys(attributes))
    deps = list(dependencies)
    if partial_dependencies(attrs, deps):
        return NormalForm.FIRST
    if transitive_dependencies(attrs, deps):
        return NormalForm.SECOND
    keys = implied_keys(attrs, deps)
    for d in project_dependencies(deps, attrs):
        if not any(set(k) <= set(d.lhs) for k in keys):
            return NormalForm.THIRD
    return NormalForm.BOYCE_CODD


def synthesize_3nf(
    attributes: Sequence[str], dependencies: Iterable[FunctionalDependency]
) -> list[tuple[str, ...]]:
    """Bernstein's synthesis: 3NF relation schemas that preserve dependencies, lossless.

    One schema per left side of a minimal cover of the projected dependencies (its left
    side first, then what it determines); a schema holding a candidate key is added if
    none does; schemas contained in another are dropped.

    Example:
        >>> deps = [fd("charge_id -> customer_id, amount"), fd("customer_id -> email")]
        >>> synthesize_3nf(["charge_id", "amount", "customer_id", "email"], deps)
        [('charge_id', 'amount', 'customer_id'), ('customer_id', 'email')]
    """
    attrs = list(dict.fromkeys(attributes))
    deps = list(dependencies)
    cover = _group(minimal_cover(project_dependencies(deps, attrs)), attrs)
    schemas = [
        (*d.lhs, *(a for a in attrs if a in d.rhs and a not in d.lhs)) for d in cover
    ]
    keys = implied_keys(attrs, deps)
    if not any(set(k) <= set(s) for s in schemas for k in keys):
        schemas.insert(0, keys[0])
    return [s for s in schemas if not any(set(s) < set(t) for t in schemas)]
