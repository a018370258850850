"""``events.jsonl``: the Stripe Event objects that led to the generated tables.

The contract (shared with :mod:`paymodel.oltp.ingest`, see ``docs`` in the README):

* One Stripe Event object per line: ``id`` (``evt_`` + 24 base62 characters), ``object``
  ``"event"``, ``type`` (a real Stripe event type), ``created`` (unix seconds),
  ``api_version``, ``livemode`` false, ``pending_webhooks`` 0, ``request`` (``id`` and
  ``idempotency_key`` for changes an API request made, such as a customer or refund
  being created; both null for automatic ones, such as a renewal) and ``data``:
  ``object`` is the full snapshot AFTER the change, rendered by
  :func:`paymodel.model.stripe.to_stripe_object`; ``previous_attributes`` (updates
  only) holds the old value of every top-level field that changed.
* Every state change of every Stripe object has an event. Nested rows travel inside
  their parent's snapshot: subscription items in the subscription, invoice lines in the
  invoice, the address in the customer, balance transactions (expanded, with their fee
  details) in the charge, the refund, the dispute and the payout (its own as
  ``balance_transaction``, a failure's return as ``failure_balance_transaction``, and
  the list of those it settled as ``balance_transactions``). Stripe sends no events for
  balance transactions, subscription items or line items, and neither do we.
* Lines are sorted by ``created``, then parents before children (customers, payment
  methods, subscriptions, discounts, invoices, payment intents, invoice payments,
  charges, refunds, disputes), then a fixed order. For one object ``created`` is
  strictly increasing, so "an older snapshot never overwrites a newer one" can be
  decided from ``created`` alone. Every parent is created by an earlier line.
* The LAST snapshot of each object equals its row in the Parquet tables: replaying the
  events (in order, shuffled, or with duplicates) with ``paymodel ingest`` rebuilds the
  Stripe-object tables exactly. ``currencies`` and ``fx_rates`` are reference data, not
  Stripe objects: load them from Parquet.
* Balance transactions are final in every snapshot (their ``status`` is the one at the
  end of the window): Stripe sends no event when funds become available. Their
  ``payout`` (the automatic payout that settled them) is set only in snapshots taken
  after that payout was created; the payout's own events carry them with it.
* Invoice payments are created when they are paid (one ``invoice_payment.paid`` each).

Event types emitted: ``product.created``, ``price.created``, ``coupon.created``,
``customer.created``, ``customer.updated`` (currency set at the first bill,
``delinquent``), ``payment_method.attached`` / ``.updated`` (the card updater's new
expiry) / ``.detached``,
``customer.subscription.created`` / ``.updated`` / ``.deleted``,
``customer.discount.created``, ``invoice.created`` / ``.finalized`` / ``.payment_failed``
/ ``.paid`` / ``.voided`` / ``.marked_uncollectible``, ``payment_intent.created`` /
``.requires_action`` / ``.payment_failed`` / ``.succeeded`` / ``.canceled``,
``invoice_payment.paid``, ``charge.succeeded`` / ``.failed`` / ``.refunded`` /
``.updated`` (disputed), ``refund.created``, ``charge.dispute.created`` / ``.updated`` /
``.closed``, ``payout.created`` / ``.paid`` / ``.failed``.

Rendering is the one per-row step of the generator (a Python dict per event); each
cohort is written to a sorted temporary file and the files are merged in time order at
the end, so memory stays bounded.
"""

from __future__ import annotations

import heapq
import itertools
import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from paymodel.model.stripe import to_stripe_object
from paymodel.safe_write import make_dir, open_for_writing, refuse_symlink
from paymodel.synthetic import config as C
from paymodel.synthetic.catalog import Catalog, Frame
from paymodel.synthetic.lifecycle import CREATE, CYCLE, ChunkResult
from paymodel.synthetic.payouts import PayoutSchedule
from paymodel.synthetic.primitives import DAY, NA, rng, stripe_ids

__all__ = ["API_VERSION", "EventWriter", "iter_events"]

API_VERSION = "2025-09-30.clover"

_RANK = {
    t: i
    for i, t in enumerate(
        ["products", "prices", "coupons", "customers", "payment_methods", "subscriptions",
         "discounts", "invoices", "payment_intents", "invoice_payments", "charges", "refunds",
         "disputes", "payouts"]
    )
}  # fmt: skip
_RATE_COLUMNS = {("coupons", "percent_off"), ("balance_transactions", "exchange_rate")}


class _Group:
    """Changes of one kind: ``values[col][k]`` applies to object ``index[k]`` at ``time[k]``."""

    __slots__ = ("api", "index", "table", "time", "type", "values")

    def __init__(self, table: str, index: np.ndarray, time: np.ndarray, type_: str,
                 values: dict[str, Any] | None = None, api: bool = False) -> None:  # fmt: skip
        self.table = table
        self.index = np.asarray(index, dtype=np.int64)
        self.time = np.broadcast_to(np.asarray(time, dtype=np.int64), self.index.shape).copy()
        self.type = type_
        self.values = {
            k: (np.broadcast_to(np.asarray(v, dtype=object), self.index.shape) if np.ndim(v) == 0 else np.asarray(v))
            for k, v in (values or {}).items()
        }
        self.api = api


def _py(table: str, col: str, values: np.ndarray) -> list[Any]:
    """A frame column as Python values (NULL sentinels -> None, scaled rates -> Decimal)."""
    if values.dtype == object:
        return [None if v is None else str(v) for v in values.tolist()]
    if values.dtype == bool:
        return values.tolist()
    out = values.tolist()
    if (table, col) in _RATE_COLUMNS:
        return [None if v == NA else Decimal(v).scaleb(-10) for v in out]
    return [None if v == NA else v for v in out]


class _Rows:
    """Rows of a frame as Python dicts, built lazily."""

    def __init__(self, table: str, frame: Frame) -> None:
        self.table = table
        self.cols = list(frame)
        self.data = {c: _py(table, c, np.asarray(frame[c])) for c in self.cols}

    def row(self, i: int) -> dict[str, Any]:
        return {c: self.data[c][i] for c in self.cols}

    def __len__(self) -> int:
        return len(self.data[self.cols[0]]) if self.cols else 0


def _py_value(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        v = int(v)
        return None if v == NA else v
    if isinstance(v, np.str_):
        return str(v)
    return v


def _groups_of(result: ChunkResult, cat: Catalog) -> list[_Group]:
    """Every state change of the cohort's Stripe objects."""
    t = result.tables
    x = result.latent["_ctx"]
    sub, per, inv = x["sub"], x["per"], x["inv"]
    horizon = x["horizon"]
    groups: list[_Group] = []
    G = groups.append
    cust = t["customers"]
    n = len(cust["id"])
    # customers
    G(_Group("customers", np.arange(n), cust["created"], "customer.created",
             {"currency": None, "delinquent": False}, api=True))  # fmt: skip
    billed = np.flatnonzero(x["billed"])
    G(_Group("customers", billed, x["first_billed"][billed], "customer.updated",
             {"currency": cust["currency"][billed]}))  # fmt: skip
    ch = t["charges"]
    ch_inv = x["ch_inv"]
    delinquent = np.flatnonzero(cust["delinquent"])
    if len(delinquent):
        failed_t = np.where(~x["ch_ok"], ch["created"], -1)
        last_fail = np.full(len(inv["cust"]), -1, dtype=np.int64)
        np.maximum.at(last_fail, ch_inv, failed_t)
        G(_Group("customers", delinquent, last_fail[x["last_inv"][delinquent]], "customer.updated",
                 {"delinquent": True}))  # fmt: skip
    # payment methods
    pm = t["payment_methods"]
    owner_ids = cust["id"][x["pm_owner"]]
    G(_Group("payment_methods", np.arange(len(pm["id"])), pm["created"], "payment_method.attached",
             {"customer_id": owner_ids, "card_exp_year": x["pm_old_exp_year"]}, api=True))  # fmt: skip
    upd = np.flatnonzero(x["pm_update_t"] != NA)
    G(_Group("payment_methods", upd, x["pm_update_t"][upd], "payment_method.updated",
             {"card_exp_year": pm["card_exp_year"][upd]}))  # the card updater's new expiry  # fmt: skip
    det = np.flatnonzero(x["pm_detached"])
    G(_Group("payment_methods", det, x["pm_detach_t"][det], "payment_method.detached", {"customer_id": None}, api=True))
    # subscriptions
    s_n = len(sub["cust"])
    prices = cat.prices["id"]
    trial = sub["trial"]
    first_start = np.where(trial, sub["start"], np.where(sub["n_eff"] > 0, sub["start"], sub["start"]))
    first_end = np.where(trial, sub["trial_end"], 0)
    # first period of non-trial subscriptions
    base = np.r_[0, np.cumsum(sub["n_eff"])[:-1]] if s_n else np.zeros(0, np.int64)
    has = sub["n_eff"] > 0
    p0_end = np.where(has, per["end"][np.minimum(base, max(len(per["end"]) - 1, 0))] if len(per["end"]) else 0, 0)
    first_end = np.where(trial, sub["trial_end"], p0_end)
    G(_Group("subscriptions", np.arange(s_n), sub["start"], "customer.subscription.created", {
        "status": np.where(trial, "trialing", "incomplete").astype(object),
        "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None, "ended_at": None,
        "cancellation_reason": None,
        "item:price_id": prices[sub["price0"]], "item:quantity": sub["qty"],
        "items:current_period_start": first_start, "items:current_period_end": first_end,
    }, api=True))  # fmt: skip
    # periods: activation of new subscriptions, renewals, past_due and recovery
    pi_ = np.arange(len(per["sub"]))
    psub = per["sub"]
    k = per["k"]
    att_times = np.stack([per["t0"], per["t1"], per["t2"], per["t3"]], axis=1) if len(psub) else np.zeros((0, 4), np.int64)
    succ_t = att_times[pi_, per["attempts"] - 1] if len(psub) else np.zeros(0, np.int64)
    paid = (per["outcome"] == 0)
    after = sub["change"][psub] & (k > sub["c_at"][psub])
    price_k = prices[np.where(after, sub["price1"][psub], sub["price0"][psub])]
    qty_k = np.where(after, sub["new_qty"][psub], sub["qty"][psub])
    create = per["kind"] == CREATE
    ended = sub["ended_at"][psub]

    def live(at: np.ndarray) -> np.ndarray:
        """Periods whose status change at ``at`` comes before their subscription ended (a
        retry can still pay the invoice of a canceled subscription, which stays canceled)."""
        return (ended == NA) | (at < ended)

    m = create & paid & live(succ_t + 2)
    G(_Group("subscriptions", psub[m], succ_t[m] + 2, "customer.subscription.updated", {"status": "active"}))
    m = per["kind"] == CYCLE
    G(_Group("subscriptions", psub[m], per["start"][m], "customer.subscription.updated", {
        "status": "active", "item:price_id": price_k[m], "item:quantity": qty_k[m],
        "items:current_period_start": per["start"][m], "items:current_period_end": per["end"][m],
    }))  # fmt: skip
    m = (per["kind"] == CYCLE) & (per["failures"] > 0) & (per["t0"] < horizon) & live(per["t0"] + 2)
    G(_Group("subscriptions", psub[m], per["t0"][m] + 2, "customer.subscription.updated", {"status": "past_due"}))
    m = (per["kind"] == CYCLE) & (per["failures"] > 0) & paid & live(succ_t + 2)
    G(_Group("subscriptions", psub[m], succ_t[m] + 2, "customer.subscription.updated", {"status": "active"}))
    # plan and seat changes take effect at once (prorated on an immediate or the next invoice)
    m = np.flatnonzero(sub["change"])
    G(_Group("subscriptions", m, sub["t_change"][m], "customer.subscription.updated",
             {"item:price_id": prices[sub["price1"][m]], "item:quantity": sub["new_qty"][m]}, api=True))  # fmt: skip
    # endings
    status, reason = sub["status"], sub["reason"]
    canceled_at, ended_at = sub["canceled_at"], sub["ended_at"]
    req = np.flatnonzero(sub["cancel_at_period_end"])
    G(_Group("subscriptions", req, canceled_at[req], "customer.subscription.updated", {
        "cancel_at_period_end": True, "cancel_at": sub["cancel_at"][req], "canceled_at": canceled_at[req],
        "cancellation_reason": reason[req],
    }, api=True))  # fmt: skip
    end_req = np.flatnonzero(sub["cancel_at_period_end"] & (status == "canceled"))
    G(_Group("subscriptions", end_req, ended_at[end_req], "customer.subscription.deleted",
             {"status": "canceled", "ended_at": ended_at[end_req]}))  # fmt: skip
    now = np.flatnonzero(~sub["cancel_at_period_end"] & (status == "canceled"))
    G(_Group("subscriptions", now, ended_at[now], "customer.subscription.deleted", {
        "status": "canceled", "canceled_at": canceled_at[now], "ended_at": ended_at[now],
        "cancellation_reason": reason[now],
    }, api=True))  # fmt: skip
    m = np.flatnonzero(status == "unpaid")
    G(_Group("subscriptions", m, sub["t_term"][m], "customer.subscription.updated", {"status": "unpaid"}))
    m = np.flatnonzero(status == "incomplete_expired")
    G(_Group("subscriptions", m, ended_at[m], "customer.subscription.updated",
             {"status": "incomplete_expired", "ended_at": ended_at[m]}))  # fmt: skip
    # discounts
    d = t["discounts"]
    G(_Group("discounts", np.arange(len(d["id"])), d["starts_at"], "customer.discount.created", api=True))
    # invoices
    iv = t["invoices"]
    ni = len(iv["id"])
    G(_Group("invoices", np.arange(ni), iv["created"], "invoice.created", {
        "status": "draft", "number": None, "finalized_at": None, "amount_paid": 0,
        "amount_remaining": iv["amount_due"], "paid_at": None, "attempt_count": 0, "voided_at": None,
    }, api=False))  # fmt: skip
    G(_Group("invoices", np.arange(ni), iv["finalized_at"], "invoice.finalized",
             {"status": "open", "number": iv["number"], "finalized_at": iv["finalized_at"]}))  # fmt: skip
    ch_j = x["ch_j"]
    bad = np.flatnonzero(~x["ch_ok"])
    G(_Group("invoices", ch_inv[bad], ch["created"][bad], "invoice.payment_failed", {"attempt_count": ch_j[bad] + 1}))
    m = np.flatnonzero(iv["status"] == "paid")
    G(_Group("invoices", m, iv["paid_at"][m], "invoice.paid", {
        "status": "paid", "amount_paid": iv["amount_paid"][m], "amount_remaining": 0,
        "paid_at": iv["paid_at"][m], "attempt_count": iv["attempt_count"][m],
    }))  # fmt: skip
    m = np.flatnonzero(iv["status"] == "void")
    G(_Group("invoices", m, iv["voided_at"][m], "invoice.voided", {"status": "void", "voided_at": iv["voided_at"][m]},
             api=True))  # fmt: skip
    m = np.flatnonzero(iv["status"] == "uncollectible")
    G(_Group("invoices", m, sub["t_term"][inv["sub"][m]], "invoice.marked_uncollectible", {"status": "uncollectible"}))
    # payment intents: created, then per attempt (3-D Secure step, result), then canceled
    p = t["payment_intents"]
    npi = len(p["id"])
    pi_of_ch = x["pi_row"][ch_inv]
    first_ch = np.full(npi, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_ch, pi_of_ch, np.arange(len(ch_inv)))
    G(_Group("payment_intents", np.arange(npi), p["created"], "payment_intent.created", {
        "status": "requires_confirmation", "amount_received": 0, "last_payment_error_code": None,
        "last_payment_error_decline_code": None, "canceled_at": None, "cancellation_reason": None,
        "payment_method_id": ch["payment_method_id"][first_ch] if npi else np.zeros(0, object),
    }))  # fmt: skip
    tds = np.flatnonzero(x["tds"] != None)  # noqa: E711
    G(_Group("payment_intents", pi_of_ch[tds], ch["created"][tds] - 1, "payment_intent.requires_action",
             {"status": "requires_action", "payment_method_id": ch["payment_method_id"][tds]}))  # fmt: skip
    ok = np.flatnonzero(x["ch_ok"])
    G(_Group("payment_intents", pi_of_ch[ok], ch["created"][ok], "payment_intent.succeeded", {
        "status": "succeeded", "amount_received": ch["amount_captured"][ok], "last_payment_error_code": None,
        "last_payment_error_decline_code": None, "payment_method_id": ch["payment_method_id"][ok],
    }))  # fmt: skip
    code = np.where(ch["failure_code"][bad] == "authentication_required", "payment_intent_authentication_failure",
                    ch["failure_code"][bad]).astype(object)  # fmt: skip
    reason = ch["outcome_reason"][bad]
    decline = np.where(code == "payment_intent_authentication_failure", None,
                       np.where(reason == "highest_risk_level", "fraudulent", reason)).astype(object)  # fmt: skip
    G(_Group("payment_intents", pi_of_ch[bad], ch["created"][bad], "payment_intent.payment_failed", {
        "status": "requires_payment_method", "last_payment_error_code": code,
        "last_payment_error_decline_code": decline,
        "payment_method_id": ch["payment_method_id"][bad],
    }))  # fmt: skip
    m = np.flatnonzero(p["status"] == "canceled")
    G(_Group("payment_intents", m, p["canceled_at"][m], "payment_intent.canceled", {
        "status": "canceled", "canceled_at": p["canceled_at"][m], "cancellation_reason": p["cancellation_reason"][m],
    }))  # fmt: skip
    ip = t["invoice_payments"]
    G(_Group("invoice_payments", np.arange(len(ip["id"])), ip["created"], "invoice_payment.paid"))
    # charges
    nc = len(ch["id"])
    G(_Group("charges", ok, ch["created"][ok], "charge.succeeded",
             {"amount_refunded": 0, "refunded": False, "disputed": False}))  # fmt: skip
    G(_Group("charges", bad, ch["created"][bad], "charge.failed", {"amount_refunded": 0, "refunded": False, "disputed": False}))
    r = t["refunds"]
    r_ch = x["r_ch"]
    cum = np.zeros(len(r_ch), dtype=np.int64)
    if len(r_ch):
        amounts = r["amount"]
        csum = np.cumsum(amounts)
        starts = np.r_[0, np.flatnonzero(r_ch[1:] != r_ch[:-1]) + 1]
        first = np.repeat(starts, np.diff(np.r_[starts, len(r_ch)]))
        cum = csum - np.r_[0, csum][first]
    captured = ch["amount_captured"][r_ch]
    G(_Group("charges", r_ch, r["created"], "charge.refunded",
             {"amount_refunded": cum, "refunded": (cum == captured) & (captured > 0)}, api=True))  # fmt: skip
    dp = t["disputes"]
    d_ch = x["d_ch"]
    G(_Group("charges", d_ch, dp["created"], "charge.updated", {"disputed": True}))
    G(_Group("refunds", np.arange(len(r_ch)), r["created"], "refund.created", api=True))
    nd = len(d_ch)
    rev, close = x["review_t"], x["close_t"]
    G(_Group("disputes", np.arange(nd), dp["created"], "charge.dispute.created", {"status": "needs_response"}))
    m = np.flatnonzero(rev < horizon)
    G(_Group("disputes", m, rev[m], "charge.dispute.updated", {"status": "under_review"}))
    m = np.flatnonzero(close < horizon)
    G(_Group("disputes", m, close[m], "charge.dispute.closed", {"status": dp["status"][m]}))
    del nc
    return groups


class _Renderer:
    """Turns the changes of one cohort into Event JSON lines, in time order."""

    def __init__(self, result: ChunkResult, groups: list[_Group], schedule: PayoutSchedule | None = None) -> None:
        t = result.tables
        x = result.latent["_ctx"]
        self.rows = {name: _Rows(name, t[name]) for name in _RANK if name in t}
        self.groups = groups
        # nested rows
        self.addresses: dict[str, dict[str, Any]] = {}
        a = _Rows("customer_addresses", t["customer_addresses"])
        for i in range(len(a)):
            row = a.row(i)
            self.addresses[row["customer_id"]] = row
        self.items = _Rows("subscription_items", t["subscription_items"])
        self.items_of: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(x["item_sub"].tolist()):
            self.items_of[s].append(i)
        self.lines = _Rows("invoice_line_items", t["invoice_line_items"])
        inv_ids = t["invoices"]["id"]
        pos = {v: i for i, v in enumerate(inv_ids.tolist())}
        self.lines_of: dict[int, list[int]] = defaultdict(list)
        for i, v in enumerate(t["invoice_line_items"]["invoice_id"].tolist()):
            self.lines_of[pos[v]].append(i)
        self.bts = _Rows("balance_transactions", t["balance_transactions"])
        # a balance transaction names its payout only in snapshots taken after the payout
        # was made (strictly after: at the same instant the payout's own event comes later)
        payout_ids = np.asarray(t["balance_transactions"]["payout_id"], dtype=object)
        self.bt_payout_created = (
            schedule.created_of(payout_ids) if schedule is not None
            else np.full(len(payout_ids), NA, dtype=np.int64)
        )  # fmt: skip
        self.fees = _Rows("balance_transaction_fee_details", t["balance_transaction_fee_details"])
        self.fees_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i in range(len(self.fees)):
            row = self.fees.row(i)
            self.fees_of[row["balance_transaction_id"]].append(row)
        self._lines_cache: dict[int, dict[str, list[dict[str, Any]]]] = {}
        self.bt_of: dict[tuple[str, int], list[int]] = defaultdict(list)
        src_table = {0: "charges", 1: "refunds", 2: "disputes", 3: "disputes"}
        for i, (kind, src) in enumerate(zip(x["bt_kind"].tolist(), x["bt_src"].tolist(), strict=True)):
            self.bt_of[(src_table[kind], src)].append(i)

    def related(self, table: str, idx: int, obj: dict[str, Any], state: dict[str, Any], at: int) -> dict | None:
        if table == "customers":
            addr = self.addresses.get(obj["id"])
            return {"customer_addresses": [addr] if addr else []}
        if table == "subscriptions":
            items = []
            for j, item_i in enumerate(self.items_of[idx]):
                row = self.items.row(item_i)
                if j == 0:
                    if "item:price_id" in state:
                        row["price_id"] = state["item:price_id"]
                    if "item:quantity" in state:
                        row["quantity"] = state["item:quantity"]
                for col in ("current_period_start", "current_period_end"):
                    if "items:" + col in state:
                        row[col] = state["items:" + col]
                items.append(row)
            return {"subscription_items": items}
        if table == "invoices":
            lines = self._lines_cache.get(idx)
            if lines is None:
                lines = {"invoice_line_items": [self.lines.row(i) for i in self.lines_of[idx]]}
                self._lines_cache[idx] = lines
            return lines
        if table in ("charges", "refunds", "disputes"):
            bts = []
            for i in self.bt_of[(table, idx)]:
                b = self.bts.row(i)
                if b["created"] > at:
                    continue
                if b["payout_id"] is not None and not self.bt_payout_created[i] < at:
                    b["payout_id"] = None
                bts.append(b)
            fees = [f for b in bts for f in self.fees_of[b["id"]]]
            return {"balance_transactions": bts, "balance_transaction_fee_details": fees}
        return None

    def count(self) -> int:
        return sum(len(g.index) for g in self.groups)

    def events(self) -> Iterator[tuple[int, str, str, dict[str, Any], dict[str, Any] | None, bool]]:
        """(created, type, table, snapshot, previous_attributes, api) in time order.

        Two changes of one object in the same second (rare: independent draws) are
        pulled apart by one second before ordering, so ``created`` strictly increases
        per object and the stream is still sorted. State is dropped as soon as an
        object has no change left, so memory holds only objects still changing.
        """
        if not self.groups:
            return
        times = np.concatenate([g.time for g in self.groups])
        rank = np.concatenate([np.full(len(g.index), _RANK[g.table]) for g in self.groups])
        gid = np.concatenate([np.full(len(g.index), i) for i, g in enumerate(self.groups)])
        pos = np.concatenate([np.arange(len(g.index)) for g in self.groups])
        obj = np.concatenate([g.index for g in self.groups])
        times = _strictly_increasing_per_object(times, rank, obj, gid, pos)
        order = np.lexsort((pos, gid, obj, rank, times))
        okey = rank * (1 << 40) + obj
        remaining = dict(zip(*np.unique(okey, return_counts=True), strict=True))
        state: dict[int, dict[str, Any]] = {}
        rows: dict[int, dict[str, Any]] = {}
        last_obj: dict[int, dict[str, Any]] = {}
        o_gid, o_obj, o_pos = gid[order].tolist(), obj[order].tolist(), pos[order].tolist()
        o_key, o_time = okey[order].tolist(), times[order].tolist()
        for g_i, i, p, key, at in zip(o_gid, o_obj, o_pos, o_key, o_time, strict=True):
            g = self.groups[g_i]
            st = state.setdefault(key, {})
            row = rows.get(key)
            if row is None:
                row = rows[key] = self.rows[g.table].row(i)
            for col, vals in g.values.items():
                v = st[col] = _py_value(vals[p])
                if ":" not in col:
                    row[col] = v
            snap = to_stripe_object(g.table, row, self.related(g.table, i, row, st, at))
            prev = last_obj.get(key)
            previous = None
            if prev is not None:
                previous = {k: prev.get(k) for k in snap if snap[k] != prev.get(k)}
            remaining[key] -= 1
            if remaining[key]:
                last_obj[key] = snap
            else:
                last_obj.pop(key, None)
                state.pop(key, None)
                rows.pop(key, None)
                if g.table == "invoices":
                    self._lines_cache.pop(i, None)
            yield at, g.type, g.table, snap, previous, g.api


def _strictly_increasing_per_object(times: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """``times`` bumped so that the changes of one object (rank, obj) strictly increase.

    Within an object, in (time, group, position) order, each time becomes
    ``max(time, previous + 1)``: a running maximum of ``time - k`` plus ``k``.
    """
    rank, obj, gid, pos = keys
    order = np.lexsort((pos, gid, times, obj, rank))
    r, o, t = rank[order], obj[order], times[order]
    new_obj = np.r_[True, (r[1:] != r[:-1]) | (o[1:] != o[:-1])]
    seg = np.cumsum(new_obj) - 1
    starts = np.flatnonzero(new_obj)
    k = np.arange(len(t)) - starts[seg]
    a = t - k
    # segment-wise running maximum: offset each segment above the previous ones
    span = int(a.max() - a.min()) + 1 if len(a) else 1
    shifted = a - a.min() + seg * span
    run = np.maximum.accumulate(shifted) - seg * span + a.min()
    out = np.empty_like(times)
    out[order] = run + k
    return out


def _event_lines(renderer: _Renderer, seed: int, chunk: int) -> Iterator[tuple[int, bytes]]:
    n = renderer.count()
    gen = rng(seed, "events", chunk)
    evt_ids = stripe_ids(gen, "evt_", n, 24)
    req_ids = stripe_ids(gen, "req_", n, 14)
    keys = stripe_ids(gen, "", n, 32)
    for j, (at, type_, _table, snap, previous, api) in enumerate(renderer.events()):
        data: dict[str, Any] = {"object": snap}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": str(evt_ids[j]),
            "object": "event",
            "api_version": API_VERSION,
            "created": at,
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": str(req_ids[j]), "idempotency_key": str(keys[j])} if api else {"id": None, "idempotency_key": None},
            "type": type_,
        }
        yield at, orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


class EventWriter:
    """Writes ``events.jsonl``: one sorted temporary file per cohort, merged at the end."""

    def __init__(self, out_dir: Path, seed: int, cat: Catalog, horizon: int) -> None:
        self.out = out_dir
        self.seed = seed
        self.cat = cat
        self.horizon = horizon
        self.tmp = out_dir / ".events-tmp"
        refuse_symlink(out_dir / "events.jsonl")  # before the work, not after
        refuse_symlink(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        make_dir(self.tmp)
        self.files: list[Path] = []

    def _write(self, part: int, lines: Iterable[tuple[int, bytes]]) -> None:
        path = self.tmp / f"part-{part:06d}.jsonl"
        with open_for_writing(path) as f:
            for seq, (at, line) in enumerate(lines):
                f.write(b"%012d%06d%09d\t" % (at, part, seq) + line + b"\n")
        self.files.append(path)

    def catalog(self) -> None:
        """Events of the catalog: products, prices and coupons, before any customer."""
        cat = self.cat
        lines = []
        gen = rng(self.seed, "events", 10**6)
        n = len(cat.products["id"]) + len(cat.prices["id"]) + len(cat.coupons["id"])
        evt = stripe_ids(gen, "evt_", n, 24)
        req = stripe_ids(gen, "req_", n, 14)
        keys = stripe_ids(gen, "", n, 32)
        j = 0
        for table, frame, type_ in (("products", cat.products, "product.created"),
                                    ("prices", cat.prices, "price.created"),
                                    ("coupons", cat.coupons, "coupon.created")):  # fmt: skip
            rows = _Rows(table, frame)
            for i in range(len(rows)):
                snap = to_stripe_object(table, rows.row(i))
                at = int(frame["created"][i])
                event = {
                    "id": str(evt[j]), "object": "event", "api_version": API_VERSION, "created": at,
                    "data": {"object": snap}, "livemode": False, "pending_webhooks": 0,
                    "request": {"id": str(req[j]), "idempotency_key": str(keys[j])}, "type": type_,
                }  # fmt: skip
                lines.append((at, orjson.dumps(event, option=orjson.OPT_SORT_KEYS)))
                j += 1
        lines.sort(key=lambda x: x[0])
        self._write(0, lines)

    def chunk(self, chunk: int, result: ChunkResult, schedule: PayoutSchedule | None = None) -> None:
        """Render and write the events of one cohort (``schedule``: the account's payouts)."""
        renderer = _Renderer(result, _groups_of(result, self.cat), schedule)
        self._write(chunk + 1, _event_lines(renderer, self.seed, chunk))

    def payouts(self, schedule: PayoutSchedule, bt_files: list[Path], fee_files: list[Path]) -> None:
        """Events of the account's payouts, each snapshot with the transactions it settled.

        ``payout.created`` when a run makes it (status ``pending``), then ``payout.paid``
        at its arrival date or ``payout.failed`` (with ``failure_balance_transaction``).
        The balance transactions are read back from the Parquet parts the cohorts wrote,
        one payout at a time, so memory holds one payout's transactions.
        """
        p = schedule.payouts
        n = len(p["id"])
        bts = pa.concat_tables([pq.read_table(f) for f in bt_files]) if bt_files else None
        if bts is None or n == 0:
            return
        fees = pa.concat_tables([pq.read_table(f) for f in fee_files]) if fee_files else None
        bts = bts.filter(pc.is_valid(bts.column("payout_id"))).sort_by("payout_id")
        fee_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if fees is not None:
            settled_ids = pc.is_in(fees.column("balance_transaction_id"), value_set=bts.column("id"))
            for row in fees.filter(settled_ids).to_pylist():
                fee_of[row["balance_transaction_id"]].append(row)
        payout_keys = bts.column("payout_id").to_numpy(zero_copy_only=False)
        starts = np.r_[0, np.flatnonzero(payout_keys[1:] != payout_keys[:-1]) + 1, len(payout_keys)]
        span = {payout_keys[a]: (a, b) for a, b in itertools.pairwise(starts) if b > a}
        rows = _Rows("payouts", p)
        own = _Rows("balance_transactions", schedule.transactions)
        own_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for k in range(len(own)):
            bt = own.row(k)
            own_of[bt["source_payout_id"]].append(bt)
        gen = rng(self.seed, "events", 10**6 + 1)
        evt = stripe_ids(gen, "evt_", 3 * n, 24)
        lines: list[tuple[int, bytes]] = []
        j = 0
        for i in range(n):
            final = rows.row(i)
            a, b = span.get(final["id"], (0, 0))
            mine = bts.slice(a, b - a).to_pylist()
            seen = {bt["id"] for bt in mine}
            mine += [bt for bt in own_of.get(final["id"], ()) if bt["id"] not in seen]
            fee_rows = [f for bt in mine for f in fee_of.get(bt["id"], ())]
            steps = [(final["created"], "payout.created",
                      {"status": "pending", "failure_code": None, "failure_message": None})]  # fmt: skip
            if final["status"] == "paid":
                steps.append((final["arrival_date"], "payout.paid", {}))
            elif final["status"] == "failed":
                steps.append((final["arrival_date"], "payout.failed", {}))
            previous_snap = None
            for at, type_, values in steps:
                row = {**final, **values}
                visible = [bt for bt in mine if _unix_of(bt["created"]) <= at]
                snap = to_stripe_object(
                    "payouts", row,
                    {"balance_transactions": visible, "balance_transaction_fee_details": fee_rows},
                )  # fmt: skip
                data: dict[str, Any] = {"object": snap}
                if previous_snap is not None:
                    data["previous_attributes"] = {
                        k: previous_snap.get(k) for k in snap if snap[k] != previous_snap.get(k)
                    }
                previous_snap = snap
                event = {
                    "id": str(evt[j]), "object": "event", "api_version": API_VERSION, "created": at,
                    "data": data, "livemode": False, "pending_webhooks": 0,
                    "request": {"id": None, "idempotency_key": None}, "type": type_,
                }  # fmt: skip
                lines.append((at, orjson.dumps(event, option=orjson.OPT_SORT_KEYS)))
                j += 1
        lines.sort(key=lambda x: x[0])
        # the last part: at one instant, a payout comes after the cohorts' objects it settles
        self._write(999_999, lines)

    def finish(self) -> int:
        """Merge the cohorts' files into ``events.jsonl`` in time order; return the count."""
        handles = [p.open("rb") for p in self.files]
        n = 0
        try:
            with open_for_writing(self.out / "events.jsonl") as out:
                for line in heapq.merge(*handles):
                    out.write(line.split(b"\t", 1)[1])
                    n += 1
        finally:
            for h in handles:
                h.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return n


def _unix_of(v: Any) -> int:
    return int(v.timestamp()) if hasattr(v, "timestamp") else int(v)


def iter_events(path: Path | str) -> Iterator[dict[str, Any]]:
    """The events of an ``events.jsonl`` file, as dicts, in file order."""
    with Path(path).open("rb") as f:
        for line in f:
            yield orjson.loads(line)


# silence "imported but unused" for names kept for readers of this module
_ = (C, DAY)
