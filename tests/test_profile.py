"""The profile of a generated account (paymodel.synthetic.profile) says what the tables hold.

One small account (scale 0.02, seed 7, 24 months: some 200 customers, failed payouts,
expired cards and a few disputes) is generated per module. The payout queries are checked
against the rules of the payout schedule, and against an account whose ``net`` was
tampered with; the dispute and dunning queries agree with the SQL measures of
:mod:`paymodel.synthetic.realism`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from paymodel.synthetic import generate
from paymodel.synthetic import profile as P
from paymodel.synthetic.realism import measure, parquet_views


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("profile")
    generate(out, scale=0.02, seed=7, progress=False, events=False, documents=False)
    return out


@pytest.fixture(scope="module")
def t(folder: Path) -> P.Generated:
    return P.open_generated(folder)


@pytest.fixture(scope="module")
def payouts(t: P.Generated) -> pd.DataFrame:
    return P.payouts_reconciled(t).to_pandas()


def test_every_payout_equals_the_net_it_settles(payouts: pd.DataFrame) -> None:
    assert {"paid", "failed"} <= set(payouts["status"])
    assert (payouts["amount"] > 0).all()
    assert (payouts["amount"] == payouts["settled_net"]).all()
    assert payouts["created"].is_monotonic_increasing
    assert payouts["charges"].sum() > len(payouts)  # payouts settle the account's charges


def test_each_failed_payout_has_one_payout_failure_coming_back(
    t: P.Generated, payouts: pd.DataFrame
) -> None:
    failed = payouts["status"] == "failed"
    assert failed.sum() > 0
    assert (payouts.loc[failed, "returns"] == 1).all()
    assert (payouts.loc[~failed, "returns"] == 0).all()
    bt = t["balance_transactions"]
    back = bt.filter(bt.type == "payout_failure").to_pandas()
    assert len(back) == failed.sum()
    # the funds come back at the failure and join a later payout: the retry
    created = payouts.set_index("id")["created"]
    retried = back.dropna(subset=["payout_id"])
    assert len(retried) > 0
    assert (
        created[retried["payout_id"]].to_numpy() > created[retried["source_payout_id"]].to_numpy()
    ).all()
    retried_by = payouts.set_index("id").loc[retried["source_payout_id"], "retried_by"]
    assert retried_by.tolist() == retried["payout_id"].tolist()


def test_a_payout_s_contents_net_to_zero_and_hold_its_charges(
    t: P.Generated, payouts: pd.DataFrame
) -> None:
    for row in payouts[payouts["status"] == "paid"].iloc[::40].itertuples():
        contents = P.payout_contents(t, row.id).to_pandas().set_index("reporting_category")
        assert contents["net"].sum() == 0, row.id
        assert contents.loc["payout", "net"] == -row.amount
        assert contents.loc["payout", "transactions"] == 1
        assert contents["transactions"].get("charge", 0) == row.charges


def test_a_tampered_net_leaves_its_payout_unreconciled(
    t: P.Generated, payouts: pd.DataFrame
) -> None:
    bt = t["balance_transactions"]
    victim = (
        bt.filter((bt.type == "charge") & bt.payout_id.notnull())
        .order_by("id")
        .limit(1)
        .to_pandas()
    )
    tampered = bt.mutate(net=(bt.id == victim["id"][0]).ifelse(bt.net + 1, bt.net))
    off = P.payouts_reconciled(P.Generated(t.con, {**t.tables, "balance_transactions": tampered}))
    off = off.filter(off.amount != off.settled_net).to_pandas()
    assert off["id"].tolist() == victim["payout_id"].tolist()
    assert (off["settled_net"] - off["amount"]).tolist() == [1]


def test_payouts_by_status_add_up(t: P.Generated, payouts: pd.DataFrame) -> None:
    by_status = P.payouts_by_status(t).to_pandas().set_index("status")
    assert by_status["payouts"].to_dict() == payouts["status"].value_counts().to_dict()
    assert by_status["amount"].sum() == payouts["amount"].sum()


def test_expired_card_declines_cover_every_month(t: P.Generated) -> None:
    months = P.expired_card_declines_by_month(t).to_pandas()
    ch = t["charges"]
    first, last = ch.created.min().to_pandas(), ch.created.max().to_pandas()
    expected = pd.date_range(first.replace(day=1).normalize(), last, freq="MS").tz_localize(None)
    assert list(months["month"]) == list(expected)  # no month left out, zeros included
    assert (months["declines"] == 0).any()
    expired = ch.filter(ch.failure_code == "expired_card").count().to_pandas()
    assert months["declines"].sum() == expired > 0


def test_decline_places_and_payment_errors(t: P.Generated) -> None:
    places = P.decline_places(t).to_pandas()
    ch, pi = t["charges"], t["payment_intents"]
    assert places["charges"].sum() == ch.filter(ch.status == "failed").count().to_pandas()
    assert places["charges"].is_monotonic_decreasing
    reasons = (
        places.fillna({"outcome_reason": "NULL"})
        .groupby("failure_code")["outcome_reason"]
        .apply(set)
    )
    assert reasons["expired_card"] == {"expired_card"}
    assert reasons["authentication_required"] == {"NULL"}  # no issuer answered
    assert len(reasons["card_declined"]) > 1  # the issuer's reasons behind one Stripe code
    errors = P.payment_errors(t).to_pandas()
    assert (
        errors["intents"].sum()
        == pi.filter(pi.last_payment_error_code.notnull()).count().to_pandas()
    )
    assert "card_declined" in set(errors["last_payment_error_code"])


def test_disputes_and_cancellations_agree_with_the_realism_measures(
    t: P.Generated, folder: Path
) -> None:
    engine = parquet_views(folder)
    values = measure(engine)
    engine.dispose()
    counts = P.dispute_counts(t).to_pandas().iloc[0]
    assert counts["disputes"] == t["disputes"].count().to_pandas() > 0
    assert math.isclose(counts["dispute_rate"], values["dispute_rate"])
    assert math.isclose(counts["repeat_disputers"] / counts["disputing_customers"],
                        values["repeat_disputer_share"])  # fmt: skip
    assert P.disputes_by_reason(t).to_pandas()["disputes"].sum() == counts["disputes"]
    reasons = P.paying_cancellations(t).to_pandas().set_index("cancellation_reason")
    assert math.isclose(reasons["share"].sum(), 1.0)
    assert math.isclose(reasons.loc["payment_failed", "share"],
                        values["failed_payment_cancellation_share"])  # fmt: skip
    subs = t["subscriptions"]
    assert (
        reasons["subscriptions"].sum() < subs.filter(subs.status == "canceled").count().to_pandas()
    )
