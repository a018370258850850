# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Synthetic data: a Stripe account you can generate
#
# Nobody can download a real payments warehouse, so every layer of paymodel is tested
# against data from `paymodel generate`. This notebook shows how that simulation works
# and what its output looks like, every figure read from the generated files:
#
# 1. **what is simulated**: customers in several markets and currencies, subscriptions
#    with trials, coupons, upgrades and cancellations, invoices, payments with declines
#    and 3-D Secure, refunds, disputes, fees and currency conversion;
# 2. **the distributions** that drive it: sign-up growth and seasonality, churn by plan,
#    decline codes, fraud and disputes by risk level;
# 3. **the events**: `events.jsonl` is the stream of Stripe Event objects that led to the
#    tables; the subscription statuses over time below are replayed from it;
# 4. **the proof**: the Parquet files load into the OLTP schema (DuckDB) with every key
#    and check on, and every dataset invariant of `paymodel.oltp.invariants` holds;
# 5. **a truthful account**: daily payouts that reconcile, cards that expire, a dispute
#    rate and a share of involuntary churn in real accounts' ranges, measured on a larger
#    account.
#
# The queries behind each table and plot are functions of `paymodel.synthetic.profile`,
# Ibis expressions over one DuckDB connection. Every claim is asserted, so running this
# notebook is a test.

# %%
import hashlib
import json
import math
from pathlib import Path

import ibis
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from paymodel.display import check_plot, configure, nulls
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.history import month_ends, status_at, status_changes
from paymodel.oltp.invariants import assert_invariants
from paymodel.oltp.schema import create_schema
from paymodel.synthetic import config as C
from paymodel.synthetic import generate
from paymodel.synthetic import profile as P
from paymodel.synthetic.events import iter_events
from paymodel.synthetic.load import load_into_oltp
from paymodel.synthetic.realism import MEASURES, measure, parquet_views

# %% tags=["parameters"]
scale = 0.02
seed = 7
out_dir = "build/notebooks/04"
min_charges = 30  # a rate resting on fewer charges is shown with its count, not read
realism_scale = 0.1  # the larger account of the last section, where a dispute rate rests on cases

# %% [markdown]
# ## Generate
#
# `generate(out_dir, scale=..., seed=...)` is the library call behind
# `paymodel generate --scale S --seed N --out DIR`. Scale 1 is about 10,000 customers
# signing up over 24 months.

# %%
configure()
data = Path(out_dir) / "data"
report = generate(data, scale=scale, seed=seed, progress=False)
assert report.rows["customers"] == round(C.CUSTOMERS_PER_SCALE * scale)
assert report.rows["events"] > report.rows["charges"]
t = P.open_generated(data)  # Ibis tables over the Parquet files, one DuckDB connection
pd.Series(report.rows, name="rows").to_frame()

# %% [markdown]
# The same seed and scale give byte-identical files, whatever the machine: every random
# draw comes from a stream keyed by the seed. Two small runs with one seed, and one with
# another, compared file by file:

# %%
def digests(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}  # fmt: skip


runs = {name: Path(out_dir) / "determinism" / name for name in ("a", "b", "other seed")}
for name, folder in runs.items():
    generate(folder, scale=0.002, seed=seed + (name == "other seed"), months=3, progress=False)
same = digests(runs["a"]) == digests(runs["b"])
differs = {k for k, v in digests(runs["a"]).items() if digests(runs["other seed"]).get(k) != v}
assert same
assert differs
print(f"{len(digests(runs['a']))} files: identical for the same seed: {same}; "
      f"{len(differs)} differ for another seed")  # fmt: skip

# %% [markdown]
# ## How the simulation works
#
# Customers are simulated in cohorts of consecutive sign-ups, vectorised with numpy:
# each lifecycle is a few random draws per customer or subscription, exploded into
# periods, invoices, payment attempts and charges. The knobs live in
# `paymodel.synthetic.config`, printed below:
#
# * **Sign-ups** follow a daily intensity that grows exponentially, peaks in January and
#   drops at weekends.
# * Each customer has a hidden **engagement** (a Beta draw, higher for referrals). It
#   raises trial conversion, lowers churn, adds product sessions and lifts NPS answers.
# * **Subscriptions** pick a tier (starter, team per seat, business per seat), monthly or
#   yearly, maybe a trial and a coupon. **Churn** is a per-period hazard that depends on
#   the tier and falls with engagement. Some churned customers return.
# * **Payments**: each renewal is charged an hour after the invoice is finalised. A
#   decline makes the subscription `past_due`; retries on the retry days recover it or
#   end it (`canceled` for `payment_failed`, or `unpaid`). Cards expire: unless the
#   issuer's card updater renewed it, a card declines with `expired_card` from its expiry.
# * **Fraud**: a share of customers pay with stolen cards. Their charges score high on
#   Radar and are declined more; weeks after their first payment the card's owner
#   disputes it as fraudulent and the merchant cancels the subscription
#   (`payment_disputed`).
# * **Payouts**: every day the available balance is paid out to the bank; a few payouts
#   fail and their funds join a later one.

# %%
knobs = {
    "sign-up growth per year": f"x{2.718 ** C.SIGNUP_GROWTH_PER_YEAR:.2f}",
    "seasonality amplitude": C.SIGNUP_SEASONALITY,
    "weekend factor": C.WEEKEND_FACTOR,
    "trial share / days": f"{C.TRIAL_SHARE} / {C.TRIAL_DAYS}",
    "monthly churn hazard at engagement 0.5": ", ".join(
        f"{tier} {rate}" for tier, rate in zip(C.TIERS, C.MONTHLY_CHURN_BY_TIER, strict=True)),
    "retry days after a failed renewal": ", ".join(str(d) for d in C.RETRY_DAYS[1:]),
    "first-attempt decline (honest / fraudster)": f"{C.FIRST_ATTEMPT_DECLINE} / {C.FRAUDSTER_DECLINE}",
    "retry decline": C.RETRY_DECLINE,
    "fraudster share of customers": C.FRAUDSTER_SHARE,
    "dispute rate by risk level": ", ".join(f"{k} {v}" for k, v in C.DISPUTE_RATE.items()),
    "cards renewed by the card updater": C.CARD_UPDATER_SHARE,
    "payouts the bank refuses": C.PAYOUT_FAILURE_SHARE,
    "fees": "2.9% + 30c, +1.5% international card, +1% conversion; dispute 15 USD",
}  # fmt: skip
assert (C.FEE_PERCENT_PER_MILLE, C.FEE_FIXED_USD_CENTS) == (29, 30)
pd.Series(knobs, name="value").to_frame()

# %% [markdown]
# ## Markets and money
#
# Each customer is billed in the currency of its country, including the zero-decimal yen
# and the three-decimal Kuwaiti dinar (amounts in fils end in 0). The counts:

# %%
spread = P.currencies_and_countries(t)
display(pd.Series(spread, name="count").to_frame())
display(P.markets(t).to_pandas())
assert spread["countries (customer addresses)"] >= 10
prices = t["prices"]
starter = prices.filter(prices.lookup_key.isin(["starter_month_usd", "starter_month_jpy",
                                                 "starter_month_kwd"]))  # fmt: skip
display(starter.select("lookup_key", "unit_amount", "currency").order_by("lookup_key").to_pandas())
charges = t["charges"]
assert {"jpy", "kwd"} <= set(charges.currency.to_pandas())
assert charges.filter((charges.currency == "kwd") & (charges.amount % 10 != 0)).count().to_pandas() == 0

# %% [markdown]
# ## Sign-ups: growth and seasonality

# %%
signups = P.signups_by_month(t).to_pandas()
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.bar(range(len(signups)), signups["signups"])
ax.set_xticks(range(len(signups)), signups["month"].dt.strftime("%Y-%m"), rotation=90)
ax.set(title="Sign-ups per month", xlabel="month of sign-up (UTC)", ylabel="new customers")
check_plot(ax)
plt.show()
first_year, second_year = signups["signups"][:12].sum(), signups["signups"][12:24].sum()
print(f"sign-ups: {first_year} in the first 12 months, {second_year} in the next 12")
assert second_year > 1.3 * first_year, (first_year, second_year)

# %% [markdown]
# ## Subscriptions by status over time, replayed from the events
#
# Each `customer.subscription.*` event carries the subscription's snapshot after the
# change. Replaying them and reading the status at each month end gives the status mix
# over time, without touching the tables (`paymodel.oltp.history`: the warehouse runs the
# same replay).

# %%
changes = t.con.create_table(
    "subscription_status_changes",
    status_changes(iter_events(data / "events.jsonl"), "customer.subscription."),
)
span = changes.agg(first=changes.created.min(), last=changes.created.max()).to_pandas().iloc[0]
ends = month_ends(span["first"], span["last"])
mix = (status_at(changes, ends).to_pandas()
       .pivot(index="at", columns="status", values="objects").fillna(0).astype(int))  # fmt: skip
mix.index = mix.index.strftime("%Y-%m")
ax = mix.plot(kind="area", stacked=True, figsize=(10, 3.5))
ax.set(title="Subscriptions by status at month end", xlabel="month end (UTC)",
       ylabel="subscriptions")  # fmt: skip
check_plot(ax)
plt.show()
last = status_at(changes, [span["last"]]).to_pandas().set_index("status")["objects"]
subs = t["subscriptions"]
table = subs.group_by("status").agg(n=subs.count()).to_pandas().set_index("status")["n"]
assert last.sort_index().to_dict() == table.sort_index().to_dict()
assert {"active", "canceled", "trialing"} <= set(table.index)
pd.DataFrame({"replayed from the events": last, "subscriptions table": table})

# %% [markdown]
# The status each subscription has after its last event is the status its row holds,
# for every status.
#
# ## What drives churn
#
# The hazard set in the knobs above is highest on the starter tier. What the sample
# shows, per tier: the share of subscriptions canceled at the customer's request, and the
# share ended by failed payments. Tiers differ in more than the hazard (team and business
# subscriptions are per seat and run longer), so the sample's order need not be the
# hazard's.

# %%
churn = P.churn_by_tier(t).to_pandas()
shares = churn.set_index("tier")["voluntary_churn_share"]
order = " > ".join(f"{tier} ({share:.2f})" for tier, share in shares.sort_values(ascending=False).items())
display(churn)
display(Markdown(f"Voluntary churn share, highest first: **{order}**."))
assert shares["business"] == shares.min()  # the dearest tier, with the lowest hazard, churns least

# %% [markdown]
# The feedback customers leave, and the NPS answers of those who canceled at their
# request against those still active at the end:

# %%
feedback = t["feedback"]
display(feedback.group_by(["channel", "topic"]).agg(answers=feedback.count())
        .order_by(["channel", "topic"]).to_pandas().set_index(["channel", "topic"]))  # fmt: skip
nps = P.nps_by_outcome(t).to_pandas().set_index("outcome")
display(nps)
display(Markdown(
    f"Mean NPS answer: **{nps.loc['still active', 'mean_rating']:.1f}** for customers still "
    f"active, **{nps.loc['canceled', 'mean_rating']:.1f}** for those who canceled."
))  # fmt: skip
assert nps.loc["still active", "mean_rating"] > nps.loc["canceled", "mean_rating"]

# %% [markdown]
# ## Declines by code
#
# Some payment attempts fail, each with one of Stripe's error codes (`failure_code`; the
# issuer's own reason is in `outcome_reason`, shown further down). Retries of a declined
# renewal decline more often than first attempts (the knobs above), so the share of
# failed attempts is above the first-attempt decline rate.
# `expired_card` is a renewal on a card that expired without being renewed, and
# `authentication_required` a failed 3-D Secure challenge: there are as many of those
# as charges whose 3-D Secure result is `failed`.

# %%
declines = P.declines_by_code(t).to_pandas()
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(range(len(declines)), declines["charges"])
ax.set_yticks(range(len(declines)), declines["failure_code"])
ax.invert_yaxis()
ax.set(title="Declines by code", xlabel="failed charges", ylabel="decline code")
check_plot(ax)
plt.show()
rate = P.decline_rate(t).to_pandas().iloc[0]
tds = P.three_d_secure(t).to_pandas()
outcomes = charges.group_by("outcome_type").agg(charges=charges.count()).to_pandas()
display(Markdown(f"Declined attempts: **{int(rate['failed'])}** of **{int(rate['charges'])}** charges "
                 f"(**{rate['rate']:.1%}**). Radar's outcome of each charge, and 3-D Secure:"))  # fmt: skip
display(outcomes, nulls(tds))
assert C.FIRST_ATTEMPT_DECLINE < rate["rate"] < 0.15, rate["rate"]
failed_3ds = tds.set_index("three_d_secure_result")["charges"].get("failed", 0)
assert failed_3ds == declines.set_index("failure_code")["charges"].get("authentication_required", 0)

# %% [markdown]
# ## Fraud and disputes by risk level
#
# Radar gives each charge a risk level. The dispute rate of the succeeded charges at each
# level, with the number of charges it rests on: at small scales only a handful of
# elevated or highest-risk charges go through, and a rate on so few (fewer than
# `min_charges`) moves by tens of points with one dispute. Those bars are hatched and
# their rate is not read.

# %%
by_risk = P.dispute_rate_by_risk(t, min_charges).to_pandas()
fig, ax = plt.subplots(figsize=(6, 3.2))
bars = ax.bar(range(len(by_risk)), by_risk["dispute_rate"] * 100,
              color=["tab:blue" if ok else "lightgrey" for ok in by_risk["enough"]],
              hatch=None)  # fmt: skip
for bar, ok in zip(bars, by_risk["enough"], strict=True):
    bar.set_hatch(None if ok else "//")
ax.bar_label(bars, [f"{d} of {n}" for d, n in zip(by_risk["disputed"], by_risk["succeeded_charges"],
                                                   strict=True)])  # fmt: skip
ax.set_xticks(range(len(by_risk)), by_risk["risk_level"])
ax.set(title=f"Disputed share of succeeded charges (hatched: fewer than {min_charges} charges)",
       xlabel="Radar risk level", ylabel="disputed (%)")  # fmt: skip
ax.set_ylim(0, max(110, ax.get_ylim()[1]))
check_plot(ax)
plt.show()
display(by_risk)
readable = by_risk[by_risk["enough"]]
assert "normal" in set(readable["risk_level"])
thin = [f"{r.risk_level} ({r.succeeded_charges} charge{'s' * (r.succeeded_charges != 1)})"
        for r in by_risk[~by_risk["enough"]].itertuples()]  # fmt: skip
read = ", ".join(f"{r.risk_level} {r.dispute_rate:.1%}" for r in readable.itertuples())
display(Markdown(f"Rates resting on at least {min_charges} charges: {read}."
                 + (f" Below that: {', '.join(thin)}." if thin else "")))  # fmt: skip

# %% [markdown]
# What Radar's score says does not need many charges per level: the charges later
# disputed as fraudulent had a far higher mean risk score than the rest.

# %%
scores = P.risk_score_by_dispute(t).to_pandas().set_index("outcome")
display(scores)
assert scores.loc["fraudulent dispute", "mean_risk_score"] > scores.drop("fraudulent dispute")[
    "mean_risk_score"].max()  # fmt: skip

# %% [markdown]
# ## Fees, currency conversion and prorations
#
# Every movement settles in the account's currency, with Stripe's fees; a dispute costs a
# fixed fee. A charge in another currency settles converted, with its `exchange_rate`
# (FX). Mid-period plan changes are invoiced as prorated lines.

# %%
display(P.fees_by_category(t).to_pandas())
fx = P.settlement(t).to_pandas()
display(fx)
bt = t["balance_transactions"]
assert bt.filter(bt.reporting_category == "dispute").fee.min().to_pandas() == 1500
assert fx["converted"].sum() > 0
assert list(fx["currency"]) == [C.SETTLEMENT_CURRENCY]
proration = P.prorations(t).to_pandas()
display(proration)
assert proration.loc[0, "proration_lines"] > 0

# %% [markdown]
# ## Load into the OLTP schema and assert the invariants
#
# `load_into_oltp` inserts the Parquet files into the schema of notebook 03, parents
# first, with every primary key, foreign key, unique key and check constraint on. Then
# `assert_invariants` runs the cross-row rules of `paymodel.oltp.invariants` (fees add up,
# refunds add up to `amount_refunded`, paid invoices are covered by succeeded payments, a
# succeeded payment intent has exactly one succeeded charge...) as SQL, printed whole:

# %%
engine = duckdb_engine()
create_schema(engine)
loaded = load_into_oltp(data, engine)
results = assert_invariants(engine)
assert all(r.ok for r in results)
assert loaded["charges"] == report.rows["charges"]
assert loaded["events"] == report.rows["events"]  # the event log is loaded too
engine.dispose()
pd.DataFrame([(r.name, r.description, r.violations) for r in results],
             columns=["invariant", "rule", "violations"]).set_index("invariant")  # fmt: skip

# %% [markdown]
# ## The events
#
# One Stripe Event object per line, in time order; each carries the object's snapshot
# after the change and, for an update, the attributes it had before.

# %%
events = t.con.read_json(str(data / "events.jsonl"), table_name="events_raw",
                         columns={"id": "VARCHAR", "type": "VARCHAR", "created": "BIGINT"})
types = events.group_by("type").agg(events=events.count()).order_by(ibis.desc("events"))
display(types.to_pandas().set_index("type"))
example = next(e for e in iter_events(data / "events.jsonl") if e["type"] == "invoice.paid")
print(json.dumps({k: example[k] for k in ("id", "type", "created")} |
                 {"previous_attributes": example["data"].get("previous_attributes")}, indent=2))  # fmt: skip
assert example["data"]["previous_attributes"]["status"] == "open"
assert types.events.sum().to_pandas() == report.rows["events"]

# %% [markdown]
# ## A more truthful account: payouts, expiring cards, disputes, dunning
#
# *(This section is generated on its own, larger account at `realism_scale`: on the
# notebook's small account a dispute rate rests on a handful of disputes, counted below.)*
#
# Measured on earlier versions of the generator: cards never expired, a few customers of
# one seed disputed again and again and kept being charged (its dispute rate was far
# above Stripe's monitoring threshold), and failed payments ended hardly any
# cancellation. Each of these is now a measure of `paymodel.synthetic.realism` with the
# range a real card-billed SaaS account sits in. The tables and plots below are queries
# of `paymodel.synthetic.profile` over the larger account.

# %%
big = Path(out_dir) / "realism"
big_report = generate(big, scale=realism_scale, seed=seed, progress=False, events=False, documents=False)
tr = P.open_generated(big)
support = pd.DataFrame({
    name: [rows["customers"], int(d["succeeded_charges"]), int(d["disputes"])]
    for name, rows, d in (("this notebook's account", report.rows, P.dispute_counts(t).to_pandas().iloc[0]),
                          ("the larger account", big_report.rows, P.dispute_counts(tr).to_pandas().iloc[0]))
}, index=["customers", "succeeded charges", "disputes"])  # fmt: skip
display(support)
assert support.loc["disputes", "this notebook's account"] < 10 <= support.loc["disputes", "the larger account"]
real = parquet_views(big)
values = measure(real)
real.dispose()
display(nulls(pd.DataFrame([(m.name, m.description, values[m.name], m.low, m.high, m.ok(values[m.name]))
                            for m in MEASURES], columns=["measure", "what", "value", "low", "high", "in range"])))  # fmt: skip
assert all(m.ok(values[m.name]) for m in MEASURES)

# %% [markdown]
# ### Payouts: which charges are in this payout
#
# Each day's automatic payout sweeps what became available; every balance transaction
# names the payout that settled it (`payout_id`), so a payout reconciles with one
# `GROUP BY`: `-(the payout's own balance transaction)` equals the `net` of what it
# settled, for every payout, paid or failed. A failed payout's funds come back as a
# `payout_failure` transaction, one per failed payout, and join a later payout.

# %%
payouts = P.payouts_reconciled(tr).to_pandas()
currencies = tr["currencies"]
minor = 10 ** int(currencies.filter(currencies.code == C.SETTLEMENT_CURRENCY).exponent.max().to_pandas())
assert set(payouts["currency"]) == {C.SETTLEMENT_CURRENCY}
unit = C.SETTLEMENT_CURRENCY.upper()
fig, ax = plt.subplots(figsize=(10, 3.2))
for status, color, width in (("paid", "tab:blue", 0.8), ("pending", "tab:gray", 2), ("failed", "tab:red", 2)):
    part = payouts[payouts["status"] == status]
    ax.vlines(part["created"], 0, part["amount"] / minor, color=color, linewidth=width,
              label=f"{status} ({len(part)} payout{'s' * (len(part) != 1)})")  # fmt: skip
ax.set(title="Daily automatic payouts", xlabel="payout day (created, UTC)",
       ylabel=f"amount ({unit})")  # fmt: skip
ax.set_ylim(bottom=0)
ax.legend(loc="upper left")
check_plot(ax)
plt.show()
by_status = P.payouts_by_status(tr).to_pandas()
display(by_status.assign(amount=by_status["amount"] / minor).rename(columns={"amount": f"amount ({unit})"}))
assert (payouts["amount"] == payouts["settled_net"]).all()  # every payout reconciles
failed = payouts["status"] == "failed"
assert failed.sum() > 0
assert (payouts.loc[failed, "returns"] == 1).all()  # each failed payout's funds came back once
assert (payouts.loc[~failed, "returns"] == 0).all()
retries = payouts.loc[failed].dropna(subset=["retried_by"])
assert len(retries) > 0
assert (payouts.set_index("id").loc[retries["retried_by"], "created"].to_numpy()
        > retries["created"].to_numpy()).all()  # the funds join a later payout
one = payouts[payouts["status"] == "paid"].iloc[len(payouts) // 2]
contents = P.payout_contents(tr, one["id"]).to_pandas()
display(Markdown(f"Payout `{one['id']}` ({one['created']:%Y-%m-%d}) settles **{one['charges']}** charges; "
                 f"its balance transactions, its own one included, net to **{contents['net'].sum()}**:"))  # fmt: skip
display(contents.assign(net=contents["net"] / minor).rename(columns={"net": f"net ({unit})"}))
assert contents["net"].sum() == 0
assert contents.set_index("reporting_category").loc["charge", "transactions"] == one["charges"]

# %% [markdown]
# ### Cards expire
#
# A card expires at the end of its expiry month. The issuer's card updater renews some
# (a `payment_method.updated` with the new expiry); the others decline every renewal
# from then on with `expired_card`, dunning gives up, and the subscription ends for
# `payment_failed`. No charge succeeds on a card after its expiry, and no card declines
# as expired before it.

# %%
expiry = P.expired_card_declines_by_month(tr).to_pandas()
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.bar(range(len(expiry)), expiry["declines"])
ax.set_xticks(range(len(expiry)), expiry["month"].dt.strftime("%Y-%m"), rotation=90)
ax.set(title="Charges declined with expired_card, per month", xlabel="month of the charge (UTC)",
       ylabel="declined charges")  # fmt: skip
check_plot(ax)
plt.show()
assert expiry["declines"].sum() == values["expired_card_declines"] > 0
assert values["charges_succeeded_after_card_expiry"] == 0
assert values["expired_card_declines_before_expiry"] == 0

# %% [markdown]
# ### Decline codes where Stripe puts them
#
# `charges.failure_code` is Stripe's error code (`card_declined` for an issuer decline);
# the issuer's reason is `charges.outcome_reason` (Stripe's `outcome.reason`; NULL where
# no issuer answered, as for a failed 3-D Secure) and, on the payment intent,
# `last_payment_error.decline_code` beside `last_payment_error.code`.

# %%
places = P.decline_places(tr).to_pandas()
display(nulls(places))
assert set(places["failure_code"]) <= {"card_declined", "expired_card", "incorrect_cvc", "processing_error",
                                      "authentication_required"}  # fmt: skip
issuer = places[places["failure_code"] == "card_declined"]
assert issuer["outcome_reason"].notna().all()
assert len(issuer) > 1  # one Stripe code, several reasons of the issuer
intent_errors = P.payment_errors(tr).to_pandas()
display(nulls(intent_errors))
assert (intent_errors["last_payment_error_code"] == "card_declined").any()

# %% [markdown]
# ### Disputes
#
# Honest customers dispute a few charges for service reasons; fraudsters' first charge
# is disputed as fraudulent, and the merchant stops serving them then. The rate lands
# in 0.2%-0.75% of succeeded charges (Stripe's monitoring starts at 0.75%).

# %%
display(P.disputes_by_reason(tr).to_pandas())
counts = P.dispute_counts(tr).to_pandas().iloc[0]
n = {k: int(counts[k]) for k in ("disputes", "succeeded_charges", "repeat_disputers", "disputing_customers")}
display(Markdown(f"**{n['disputes']}** disputes on **{n['succeeded_charges']:,}** succeeded charges: "
                 f"**{counts['dispute_rate']:.2%}**; customers with more than one dispute: "
                 f"**{n['repeat_disputers']}** of the **{n['disputing_customers']}** who disputed."))  # fmt: skip
assert math.isclose(counts["dispute_rate"], values["dispute_rate"])  # the Ibis count and the SQL measure agree
assert 0.002 <= values["dispute_rate"] <= 0.0075
assert values["charges_after_lost_fraud_dispute"] == 0
assert values["repeat_disputer_share"] <= 0.1

# %% [markdown]
# ### Dunning and involuntary churn
#
# Failed renewals are retried on the retry days of the knobs above (Smart Retries-like);
# a renewal still unpaid after the last retry cancels the subscription
# (`payment_failed`) or leaves it `unpaid`. Of the paying subscriptions that were
# canceled, the share that failed payments ended lands in 15-40%.

# %%
reasons = P.paying_cancellations(tr).to_pandas()
fig, ax = plt.subplots(figsize=(7, 2.5))
bars = ax.barh(range(len(reasons)), reasons["share"] * 100)
ax.set_yticks(range(len(reasons)), reasons["cancellation_reason"].fillna("NULL"))
ax.invert_yaxis()
ax.bar_label(bars, [f"{n} of {reasons['subscriptions'].sum()}" for n in reasons["subscriptions"]], padding=3)
ax.set(title="Why paying subscriptions were canceled", xlabel="share of the cancellations (%)",
       ylabel="cancellation_reason", xlim=(0, 100))  # fmt: skip
check_plot(ax)
plt.show()
reason_shares = reasons.set_index("cancellation_reason")["share"]
assert math.isclose(reason_shares["payment_failed"], values["failed_payment_cancellation_share"])
assert 0.15 <= values["failed_payment_cancellation_share"] <= 0.40

# %% [markdown]
# ## Summary
#
# The generator writes every OLTP table, the events that led to it and the
# document-layer inputs, byte-identical for one seed. The data carries the patterns a
# payments warehouse must handle, each shown above: money in zero-, two- and
# three-decimal currencies converted to the settlement currency, trials, prorations,
# dunning, refunds, disputes and fees, daily payouts that reconcile and cards that
# expire; statuses replayed from the events match the tables; and it loads into the
# OLTP schema, event log included, with every constraint on and every invariant
# holding. On the larger account of the last section, the dispute rate and the share of
# cancellations for failed payment land in the ranges asserted there, and no charge
# succeeds on an expired card or follows a lost fraud dispute.
#
# Next: [05 · OLTP transactions](05_oltp_transactions.ipynb) runs Stripe's payment flows
# as ACID transactions, on an empty schema of its own.
