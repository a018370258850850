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
# # 07 · Analytics: the marts and the questions they answer
#
# The star of notebook 06 holds the facts; analysts open the **marts** first. `paymodel
# olap` builds them into the same warehouse, as pure Ibis transforms
# (`paymodel.olap.marts`, `paymodel.olap.metrics`), on DuckDB, PostgreSQL or Spark alike.
# This notebook builds a small generated account and answers, with one mart and one plot
# each:
#
# 1. **how MRR moved** each month: the bridge (opening + new + expansion + reactivation
#    - contraction - churned = closing), checked on every row, and checked against MRR
#    recomputed from the event log without the star;
# 2. **MRR by currency**, in each currency and converted to the reporting currency;
# 3. **how cohorts retain** (by first paid month) and **net revenue retention** over time;
# 4. **payment health**: authorisation rate by card brand and country, decline codes,
#    disputes against Radar's risk level;
# 5. **revenue by product and currency**;
# 6. **what was refunded of each invoice**, each refund once.
#
# Every metric is defined once (`paymodel.model.marts.METRICS`, shown in
# `schemas/marts.dictionary.md`). Every claim below is asserted.

# %%
from pathlib import Path

import duckdb
import ibis
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from paymodel.display import configure
from paymodel.model.marts import METRICS
from paymodel.olap import build_warehouse, metrics, resolve_pii_key
from paymodel.olap.mrr_reference import reference_movements, subscription_months
from paymodel.oltp.engines import duckdb_engine
from paymodel.oltp.schema import create_schema
from paymodel.synthetic import generate
from paymodel.synthetic.events import iter_events
from paymodel.synthetic.load import load_into_oltp

configure()  # whole values in tables: no '...' cutting a rule or an error

# %% tags=["parameters"]
scale = 0.02
seed = 7
out_dir = "build/notebooks/07"

# %% [markdown]
# ## Build an account, its warehouse and its marts
#
# `generate` writes the account and its event log; the OLTP database receives both;
# `build_warehouse` (the library call behind `paymodel olap`) builds the star and then
# the marts, which are steps of the same build.

# %%
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
data, oltp, wh = out / "data", out / "oltp.duckdb", out / "warehouse.duckdb"
for path in (oltp, wh):
    path.unlink(missing_ok=True)
generate(data, scale=scale, seed=seed, progress=False)
engine = duckdb_engine(oltp)
create_schema(engine)
load_into_oltp(data, engine)
engine.dispose()
report = build_warehouse(oltp, wh, pii_key=resolve_pii_key(demo=True))
built = {t.table: t.rows for t in report.tables if t.table.startswith("mart_")}
display(pd.DataFrame({"rows": built}))
assert all(n > 0 for n in built.values()), built

# %%
con = duckdb.connect(str(wh), read_only=True)


def mart(name: str) -> pd.DataFrame:
    return con.sql(f"SELECT * FROM {name}").to_arrow_table().to_pandas()


bridge, movements = mart("mart_mrr_bridge"), mart("mart_mrr_movements")
as_of, currency = report.as_of, report.reporting_currency
print(f"as of {as_of:%Y-%m-%d %H:%M} UTC; reporting currency {currency.upper()}")

# %% [markdown]
# ## 1. How MRR moved: the bridge, checked two ways
#
# `mart_mrr_movements` has one row per customer, month and currency with the customer's
# opening and closing MRR and its movement; `mart_mrr_bridge` sums them per month and
# currency. The identity holds on every row, in minor units and converted.

# %%
parts = ["opening_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
         "churned_mrr", "closing_mrr"]  # fmt: skip
o, n, e, r, c, x, z = (bridge[p] for p in parts)
assert (o + n + e + r - c - x == z).all()
rep = [bridge[f"{p}_reporting"] for p in parts]
assert (rep[0] + rep[1] + rep[2] + rep[3] - rep[4] - rep[5] == rep[6]).all()
print(f"identity holds on all {len(bridge)} rows ({bridge.currency.nunique()} currencies, "
      f"{bridge.month.nunique()} months), in minor units and in {currency.upper()}")  # fmt: skip
print(movements.movement.value_counts().to_string())

# %% [markdown]
# The second check recomputes MRR without the star: `paymodel.olap.mrr_reference`
# replays every subscription's snapshots from `events.jsonl` in plain Python, prices
# them with the OLTP prices, discounts and coupons, and classifies the movements with
# plain `if`s. Every customer-month must agree.

# %%
months = sorted(m for (m,) in con.sql("SELECT DISTINCT month_start FROM dim_date").fetchall()
                if m <= as_of.date())  # fmt: skip
o_con = duckdb.connect(str(oltp), read_only=True)
rows = {t: o_con.sql(f"SELECT * FROM {t}").to_arrow_table().to_pylist()
        for t in ("prices", "discounts", "coupons")}  # fmt: skip
o_con.close()
sub_months = subscription_months(iter_events(data / "events.jsonl"), rows["prices"],
                                 rows["discounts"], rows["coupons"], as_of,
                                 first_month=months[0])  # fmt: skip
reference = {(m.customer_id, m.currency, m.month): (m.opening_mrr, m.closing_mrr, m.movement)
             for m in reference_movements(sub_months, months)}  # fmt: skip
from_mart = {(t.customer_id, t.currency, t.month): (t.opening_mrr, t.closing_mrr, t.movement)
             for t in movements.itertuples()}  # fmt: skip
assert from_mart == reference
print(f"{len(reference):,} customer-months agree with the recomputation from the event log")

# %% [markdown]
# The waterfall of the reporting currency: the month's gains above the axis, its losses
# below, closing MRR as the line. Each currency's components are converted at that
# month's rate, so they add up exactly.

# %%
total = bridge.groupby("month")[[f"{p}_reporting" for p in parts]].sum().astype(float)
total.index = pd.to_datetime(total.index)
fig, ax = plt.subplots(figsize=(11, 4.5))
width = 20
bottom = np.zeros(len(total))
for p, colour in (("new", "#2b8a3e"), ("expansion", "#74b816"), ("reactivation", "#1971c2")):
    ax.bar(total.index, total[f"{p}_mrr_reporting"], width, bottom=bottom, color=colour, label=p)
    bottom += total[f"{p}_mrr_reporting"].to_numpy()
bottom = np.zeros(len(total))
for p, colour in (("contraction", "#f08c00"), ("churned", "#c92a2a")):
    ax.bar(total.index, -total[f"{p}_mrr_reporting"], width, bottom=bottom, color=colour, label=p)
    bottom -= total[f"{p}_mrr_reporting"].to_numpy()
ax2 = ax.twinx()
ax2.plot(total.index, total.closing_mrr_reporting, color="black", marker=".", label="closing MRR")
ax.axhline(0, color="grey", lw=0.8)
ax.set_ylabel(f"MRR movement per month ({currency.upper()})")
ax2.set_ylabel(f"closing MRR ({currency.upper()})")
ax.set_xlabel("month")
n_customers = int(bridge.groupby("month").customers_closing.sum().iloc[-1])
ax.set_title(f"MRR bridge, all currencies converted ({n_customers} paying customers at the end)")
ax.legend(loc="upper left", ncol=5, fontsize=8)
ax2.legend(loc="lower right", fontsize=8)
fig.tight_layout()
fig.savefig(out / "mrr_waterfall.png", dpi=100)
last = total.iloc[-1]
print(f"last month: closing {last.closing_mrr_reporting:,.2f} {currency.upper()}, "
      f"new {last.new_mrr_reporting:,.2f}, churned {last.churned_mrr_reporting:,.2f}")  # fmt: skip
assert last.closing_mrr_reporting > 0

# %% [markdown]
# ## 2. MRR by currency
#
# Each currency's closing MRR, converted, stacked. A bridge that assumed one currency
# (dbt_stripe's, its issue #102) would add yen to dollars.

# %%
by_cur = bridge.pivot_table(index="month", columns="currency", values="closing_mrr_reporting",
                            aggfunc="sum").astype(float).fillna(0)  # fmt: skip
by_cur.index = pd.to_datetime(by_cur.index)
order = by_cur.iloc[-1].sort_values(ascending=False).index
fig, ax = plt.subplots(figsize=(11, 4.5))
palette = plt.get_cmap("tab20").colors
ax.stackplot(by_cur.index, [by_cur[c] for c in order], labels=[c.upper() for c in order],
             colors=palette[: len(order)])  # fmt: skip
ax.set_ylabel(f"closing MRR ({currency.upper()}, converted at each month's rate)")
ax.set_xlabel("month")
ax.set_title(f"MRR by billing currency ({len(order)} currencies)")
ax.legend(loc="upper left", ncol=6, fontsize=8)
fig.tight_layout()
fig.savefig(out / "mrr_by_currency.png", dpi=100)
last_native = bridge[bridge.month == bridge.month.max()].set_index("currency")
display(last_native[["closing_mrr", "closing_mrr_reporting", "customers_closing"]]
        .sort_values("closing_mrr_reporting", ascending=False))  # fmt: skip
assert bridge.currency.nunique() >= 3

# %% [markdown]
# ## 3. Retention: cohorts and NRR
#
# `mart_cohort_retention` follows each cohort (customers by first paid month) month by
# month. The heatmap shows revenue retention (the cohort's MRR against its first month);
# the cohort sizes are on the left, as the later columns rest on fewer customers.

# %%
cohorts = mart("mart_cohort_retention")
usd = cohorts[cohorts.currency == "usd"]
heat = usd.pivot_table(index="cohort_month", columns="months_since", values="revenue_retention",
                       aggfunc="first").astype(float)  # fmt: skip
sizes = usd.groupby("cohort_month").cohort_customers.first()
fig, ax = plt.subplots(figsize=(11, 6))
im = ax.imshow(heat.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1.5)
ax.set_yticks(range(len(heat)), [f"{pd.Timestamp(m):%Y-%m} (n={sizes[m]})" for m in heat.index],
              fontsize=7)  # fmt: skip
ax.set_xlabel("months since the first paid month")
ax.set_ylabel("cohort (first paid month, customers)")
ax.set_title("USD cohorts: MRR retained against the cohort's first month")
fig.colorbar(im, ax=ax, label="revenue retention (1 = first month's MRR)")
fig.tight_layout()
fig.savefig(out / "cohort_retention.png", dpi=100)
assert (usd[usd.months_since == 0].logo_retention == 1).all()
assert (usd.customers_retained <= usd.cohort_customers).all()

# %% [markdown]
# NRR is computed by the same function as the mart's column, `metrics.nrr`, applied here
# to the bridge summed over currencies in the reporting currency. Its definition:

# %%
display(Markdown(f"**nrr** = `{METRICS['nrr'].formula}`: {METRICS['nrr'].description}"))
summed = bridge.groupby("month")[[f"{p}_reporting" for p in parts]].sum().astype(float)
summed.columns = parts
summed = summed.reset_index()
nrr_frame = ibis.duckdb.connect().execute(
    ibis.memtable(summed).mutate(nrr=metrics.nrr, grr=metrics.grr)
)
nrr_frame = nrr_frame[nrr_frame.opening_mrr > 0]
fig, ax = plt.subplots(figsize=(11, 4))
ax.plot(pd.to_datetime(nrr_frame.month), nrr_frame.nrr.astype(float) * 100, marker=".",
        label="NRR")  # fmt: skip
ax.plot(pd.to_datetime(nrr_frame.month), nrr_frame.grr.astype(float) * 100, marker=".",
        label="GRR")  # fmt: skip
ax.axhline(100, color="grey", lw=0.8)
ax.set_ylabel("% of the opening MRR kept a month later")
ax.set_xlabel("month")
ax.set_title(f"Net and gross revenue retention, monthly, all currencies in {currency.upper()}")
ax.legend()
fig.tight_layout()
fig.savefig(out / "nrr.png", dpi=100)
assert (nrr_frame.grr.astype(float) <= nrr_frame.nrr.astype(float) + 1e-12).all()
assert (nrr_frame.grr.astype(float) <= 1).all()
print(f"median monthly NRR {nrr_frame.nrr.astype(float).median():.1%}, "
      f"GRR {nrr_frame.grr.astype(float).median():.1%}")  # fmt: skip

# %% [markdown]
# ## 4. Payment health
#
# The authorisation rate counts what the card network saw (Radar's blocks never reach
# it): approved over sent. The counts are printed on the bars, as a rate on a few
# attempts says little.

# %%
display(Markdown(f"**authorisation_rate** = `{METRICS['authorisation_rate'].formula}`"))
health = mart("mart_payment_health")
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, dim in zip(axes, ("card_brand", "card_country"), strict=True):
    h = health[(health.dimension == dim) & (health.sent_to_network > 0)]
    h = h.sort_values("sent_to_network", ascending=False).head(10)
    bars = ax.bar(h.value, h.authorisation_rate.astype(float) * 100, color="#1971c2")
    for bar, n_sent in zip(bars, h.sent_to_network, strict=True):
        ax.annotate(f"n={n_sent}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.set_ylim(0, 105)
    ax.set_ylabel("authorisation rate (%)")
    ax.set_xlabel(dim.replace("_", " "))
    ax.tick_params(axis="x", rotation=45)
axes[0].set_title("Approved / sent to the network, by card brand")
axes[1].set_title("by issuing country (the 10 with most attempts)")
fig.tight_layout()
fig.savefig(out / "authorisation_rates.png", dpi=100)
rates = health.authorisation_rate.dropna().astype(float)
assert ((rates >= 0) & (rates <= 1)).all()
attempts_total = int(con.sql("SELECT count(*) FROM fact_payment_attempts").fetchone()[0])
for dim in ("card_brand", "card_funding", "card_country"):
    assert health[health.dimension == dim].attempts.sum() == attempts_total, dim
print(f"{attempts_total:,} attempts; each dimension's rows add up to all of them")

# %% [markdown]
# Decline codes, most frequent first, and disputes against Radar's risk level.

# %%
codes = mart("mart_decline_codes").sort_values("failed_attempts")
risk = mart("mart_risk_levels").set_index("risk_level")
risk = risk.loc[[lv for lv in ("normal", "elevated", "highest") if lv in risk.index]]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
axes[0].barh(codes.failure_code, codes.failed_attempts, color="#c92a2a")
axes[0].set_xlabel("failed attempts (count)")
axes[0].set_title(f"Decline and failure codes ({codes.failed_attempts.sum()} failed attempts)")
bars = axes[1].bar(risk.index, risk.dispute_rate.astype(float) * 100, color="#f08c00",
                   label="dispute rate")  # fmt: skip
axes[1].bar(risk.index, risk.fraud_rate.astype(float) * 100, color="#862e9c", width=0.4,
            label="fraud-dispute rate")  # fmt: skip
for bar, (n_ok, n_disp) in zip(bars, zip(risk.charges_succeeded, risk.charges_disputed,
                                         strict=True), strict=True):  # fmt: skip
    axes[1].annotate(f"{n_disp}/{n_ok}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     ha="center", va="bottom", fontsize=8)  # fmt: skip
axes[1].set_xlabel("Radar risk level (mean risk score in the table below)")
axes[1].set_ylabel("% of succeeded charges disputed")
axes[1].set_title("Disputes by risk level (disputed / succeeded)")
axes[1].legend()
fig.tight_layout()
fig.savefig(out / "declines_and_disputes.png", dpi=100)
display(risk[["charges_succeeded", "charges_disputed", "charges_fraud_disputed",
              "mean_risk_score", "dispute_rate", "fraud_rate"]])  # fmt: skip
assert abs(codes.share.astype(float).sum() - 1) < 1e-6
scores = risk.mean_risk_score.astype(float)
assert scores.is_monotonic_increasing, "Radar's levels order its scores"

# %% [markdown]
# 3-D Secure and dispute outcomes, from their marts:

# %%
tds = mart("mart_three_d_secure")
challenged, confirmed = int(tds.intents_challenged.sum()), int(tds.intents_confirmed.sum())
passed = int(tds.challenged_succeeded.sum())
outcomes = mart("mart_dispute_outcomes")
decided = int(outcomes.disputes_won.sum() + outcomes.disputes_lost.sum())
print(f"3-D Secure: {challenged}/{confirmed} confirmed intents challenged "
      f"({challenged / confirmed:.1%}), {passed}/{challenged} of them succeeded")  # fmt: skip
print(f"disputes: {int(outcomes.disputes.sum())} opened, {decided} decided, "
      f"{int(outcomes.disputes_won.sum())} won")  # fmt: skip
assert 0 < challenged <= confirmed
assert passed <= challenged

# %% [markdown]
# ## 5. Revenue by product and currency
#
# Billed revenue comes from the star's invoice lines (paid invoices), converted at each
# invoice's date.

# %%
revenue = con.sql("""
    SELECT p.name AS product, l.currency, sum(l.amount_reporting) AS revenue, count(*) AS lines
    FROM fact_invoice_lines l JOIN dim_product p USING (product_key)
    WHERE l.invoice_status = 'paid'
    GROUP BY ALL
""").to_df()
pivot = revenue.pivot_table(index="product", columns="currency", values="revenue",
                            aggfunc="sum").astype(float).fillna(0)  # fmt: skip
pivot = pivot.loc[pivot.sum(axis=1).sort_values().index]
fig, ax = plt.subplots(figsize=(11, 4.5))
left = np.zeros(len(pivot))
palette = plt.get_cmap("tab20").colors
for i, cur in enumerate(pivot.sum().sort_values(ascending=False).index):
    ax.barh(pivot.index, pivot[cur], left=left, label=cur.upper(), color=palette[i % 20])
    left += pivot[cur].to_numpy()
for y, (name, tot) in enumerate(pivot.sum(axis=1).items()):
    n_lines = int(revenue[revenue["product"] == name]["lines"].sum())
    ax.annotate(f"{n_lines} lines", (tot, y), va="center", fontsize=8, xytext=(3, 0),
                textcoords="offset points")  # fmt: skip
ax.set_xlabel(f"billed revenue, paid invoices ({currency.upper()}, converted)")
ax.set_title("Revenue by product and billing currency")
ax.legend(ncol=6, fontsize=8, loc="lower right")
fig.tight_layout()
fig.savefig(out / "revenue_by_product.png", dpi=100)
assert revenue.revenue.astype(float).sum() > 0

# %% [markdown]
# ## 6. What was refunded of each invoice
#
# Stripe's invoice names no charge any more: the star links each invoice to the payment
# intent its invoice payment names (`fact_invoice_lines.payment_intent_id`), so
# `mart_invoice_details` carries what was refunded of that intent's charges and the amount
# paid net of refunds. Refunds are summed per charge before they meet the invoice. Joining
# refunds straight to invoice lines, as fivetran/dbt_stripe does, repeats a line once per
# refund of its charge, and an invoice's refund once per line. The mart's figures are checked
# against the OLTP tables.

# %%
invoices = mart("mart_invoice_details")
o_con = duckdb.connect(str(oltp), read_only=True)
oltp_refunded = dict(o_con.sql("""
    SELECT ch.currency, sum(r.amount) FROM invoice_payments ip
    JOIN charges ch ON ch.payment_intent_id = ip.payment_intent_id
    JOIN refunds r ON r.charge_id = ch.id AND r.status = 'succeeded'
    WHERE ip.status = 'paid' GROUP BY 1
""").fetchall())
o_con.close()
naive = con.sql("""
    SELECT l.currency, count(*) AS line_rows, count(DISTINCT l.invoice_line_item_id) AS lines,
        sum(r.amount) AS refunded
    FROM fact_invoice_lines l
    JOIN fact_refunds r ON r.payment_intent_id = l.payment_intent_id AND r.status = 'succeeded'
    GROUP BY 1
""").to_df().set_index("currency")
refunded_invoices = invoices[invoices.amount_refunded > 0]
mart_refunded = {c: int(v) for c, v in
                 refunded_invoices.groupby("currency").amount_refunded.sum().items()}  # fmt: skip
print(f"{len(refunded_invoices)} of {len(invoices)} invoices had a refund, in "
      f"{len(mart_refunded)} currencies; the mart's refunded amount per currency equals the "
      f"OLTP's: {mart_refunded == oltp_refunded}")
naive = naive.assign(mart_refunded=pd.Series(mart_refunded))
display(naive)
print(f"joining refunds to lines: {int(naive.line_rows.sum())} rows for "
      f"{int(naive.lines.sum())} lines; {int((naive.refunded > naive.mart_refunded).sum())} "
      f"of {len(naive)} currencies over-count their refunds")
assert mart_refunded == oltp_refunded, "each refund counted once"
assert (invoices.amount_paid_net == invoices.amount_paid - invoices.amount_refunded).all()
assert naive.line_rows.sum() > naive.lines.sum(), "the naive join repeats lines"
assert (naive.refunded >= naive.mart_refunded).all()
assert (naive.refunded > naive.mart_refunded).any(), "and adds a refund once per line"

# %% [markdown]
# Per currency, the share of what paid invoices collected that was refunded (minor units of
# each currency, so the share, not the sum, compares across currencies):

# %%
paid = invoices[invoices.status == "paid"]
by_cur = paid.groupby("currency").agg(paid=("amount_paid", "sum"),
                                      refunded=("amount_refunded", "sum"),
                                      invoices=("invoice_id", "size"),
                                      refunded_invoices=("amount_refunded",
                                                         lambda s: int((s > 0).sum())))  # fmt: skip
by_cur["share"] = by_cur.refunded / by_cur.paid
by_cur = by_cur.sort_values("share")
fig, ax = plt.subplots(figsize=(9, 4))
ax.barh([c.upper() for c in by_cur.index], 100 * by_cur.share, color="tab:red")
for y, r in enumerate(by_cur.itertuples()):
    ax.annotate(f"{r.refunded_invoices} of {r.invoices} invoices", (100 * r.share, y),
                va="center", fontsize=8, xytext=(3, 0), textcoords="offset points")  # fmt: skip
ax.set_xlabel("refunded, % of the amount paid on paid invoices")
ax.set_ylabel("invoice currency")
ax.set_title("Refunds of the charges that paid invoices, by currency")
ax.set_xlim(0, 100 * by_cur.share.max() * 1.35)
fig.tight_layout()
fig.savefig(out / "invoice_refunds_by_currency.png", dpi=100)
display(by_cur)
assert by_cur.refunded[by_cur.refunded > 0].to_dict() == mart_refunded, "on paid invoices"
con.close()

# %% [markdown]
# ## What this showed
#
# - The marts are steps of the warehouse build, pure Ibis over the star's facts.
# - The MRR bridge's identity held on every month and currency, in minor units and in
#   the reporting currency, and every customer-month of `mart_mrr_movements` equalled the
#   recomputation from the event log, made without the star.
# - MRR was shown per currency and converted; cohorts, NRR and GRR came from the same
#   metric functions the marts use, whose definitions are in the data dictionary.
# - Payment health: authorisation rates by brand and country (with their counts), decline
#   codes, disputes and fraud disputes by Radar risk level, 3-D Secure and dispute
#   outcomes, each from its mart.
# - Invoices carry what was refunded of the charge that paid them, each refund once, equal
#   to the OLTP's refunds; joining refunds to invoice lines instead repeats both.
#
# Next: [08 · Documents](08_nosql_documents.ipynb) designs the document store (TinyDB, with a
# PostgreSQL JSONB twin) from its access patterns.
