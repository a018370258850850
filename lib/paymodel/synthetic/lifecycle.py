"""Simulate one cohort of customers: sign-up, cards, subscriptions, invoices and payments.

Everything is vectorised over the cohort with numpy: a lifecycle is a handful of
random draws per customer or subscription, exploded into periods, invoices, payment
attempts and charges with ``np.repeat`` and cumulative sums. No Python loop runs per
row.

How a subscription lives (each step is visible in the tables and in the events):

1. It starts a few minutes (or days) after sign-up, on a tier, monthly or yearly, in
   the customer's currency, maybe with a 14-day trial and a coupon.
2. A trial converts (the first period starts at ``trial_end``) or lapses (the
   customer cancels during the trial). Without a trial the first invoice is charged at
   once; if it is declined twice the subscription ends ``incomplete_expired``.
3. Each period an invoice is created, finalised an hour later and charged. A
   declined renewal makes the subscription ``past_due``; Smart Retries try again on
   days 3, 8 and 15; a success makes it ``active`` again, four failures cancel it
   (``payment_failed``) or leave it ``unpaid``.
4. Some subscriptions change once, mid-period, with Stripe's two proration lines
   ("Unused time on" the old plan, "Remaining time on" the new one): an upgrade or a
   seat increase is invoiced at once (``subscription_update``); a downgrade or a seat
   decrease is settled on the next renewal invoice, which stays positive (downgrades
   come late in the period, team -> starter only for one or two seats).
5. It ends by voluntary churn (a per-period hazard, higher on cheap tiers and for
   disengaged customers), at period end or immediately, or runs past the horizon.
6. Some churned customers come back later with a new subscription.

All state is "as of the horizon" (the end of the simulated window): nothing after it
exists, so some invoices are open, some subscriptions past_due, some disputes open.

The result also records, per object, the state changes that led to its final row
(:class:`Change`), from which :mod:`paymodel.synthetic.events` renders ``events.jsonl``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from paymodel.model.oltp import error_code
from paymodel.model.reference import EXPONENTS
from paymodel.synthetic import config as C
from paymodel.synthetic.catalog import Catalog, Frame
from paymodel.synthetic.pools import POOLS
from paymodel.synthetic.primitives import (
    DAY,
    HOUR,
    NA,
    add_months,
    convert_minor,
    per_mille,
    quantize,
    rng,
    stripe_ids,
    zero_padded,
)

__all__ = ["Change", "ChunkResult", "simulate_chunk"]

_CUR_INDEX = {c: i for i, c in enumerate(C.CURRENCIES)}
_EXP = np.array([EXPONENTS[c] for c in C.CURRENCIES], dtype=np.int64)
_COUNTRY_CUR = np.array([_CUR_INDEX[c.currency] for c in C.COUNTRIES], dtype=np.int64)
_COUNTRY_CODES = np.array([c.code for c in C.COUNTRIES], dtype=object)
_CUR_CODES = np.array(C.CURRENCIES, dtype=object)

# invoice kinds
TRIAL, CREATE, CYCLE, UPDATE, MANUAL = 0, 1, 2, 3, 4
_BILLING_REASON = np.array(
    ["subscription_create", "subscription_create", "subscription_cycle", "subscription_update", "manual"],
    dtype=object,
)
# invoice outcomes as of the horizon
PAID, PENDING, TERMINAL, VOIDED = 0, 1, 2, 3


@dataclass
class Change:
    """A state change of some objects of one table: rendered as one event each.

    Attributes:
        table: table of the objects.
        index: row positions in the chunk's frame of that table.
        time: unix seconds of each change.
        type: Stripe event type.
        values: column -> new values (aligned with ``index``). Keys ``item:<col>`` set a
            column of the subscription's licensed item, ``items:<col>`` of all its items.
    """

    table: str
    index: np.ndarray
    time: np.ndarray
    type: str
    values: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ChunkResult:
    """The tables of one cohort, the changes that led to them, and latent traits."""

    tables: dict[str, Frame]
    changes: list[Change]
    latent: dict[str, np.ndarray]


def _take(frame: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in frame.items()}


def _cat(*frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate frames column by column; a scalar column is repeated to the frame's length."""

    def col(f: dict[str, np.ndarray], k: str) -> np.ndarray:
        v = np.asarray(f[k], dtype=object if isinstance(f[k], str) else None)
        if v.ndim == 0:
            n = max(len(x) for x in f.values() if np.ndim(x) == 1)
            return np.full(n, f[k], dtype=object)
        return v

    return {k: np.concatenate([col(f, k) for f in frames]) for k in frames[0]}


def _objs(n: int, value: object = None) -> np.ndarray:
    return np.full(n, value, dtype=object)


def _ints(n: int, value: int = NA) -> np.ndarray:
    return np.full(n, value, dtype=np.int64)


def _choice(gen: np.random.Generator, weights: tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return gen.choice(len(p), size=n, p=p / p.sum())


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2... within runs of equal values of a sorted ``groups`` array."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(groups[1:] != groups[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    return np.arange(n) - first


# ------------------------------------------------------------------------ customers


def _customers(seed: int, chunk: int, signup: np.ndarray, ids: np.random.Generator) -> tuple[Frame, Frame, dict]:
    g = rng(seed, "customers", chunk)
    n = len(signup)
    country = _choice(g, tuple(c.weight for c in C.COUNTRIES), n)
    channel = _choice(g, C.SIGNUP_CHANNEL_WEIGHTS, n)
    engagement = g.beta(2.0 + 1.5 * (channel == 2), 2.0)
    fraud = g.random(n) < C.FRAUDSTER_SHARE
    subscriber = g.random(n) < C.SUBSCRIBER_SHARE
    one_off = g.random(n) < C.ONE_OFF_BUYER_SHARE
    has_address = g.random(n) < C.ADDRESS_SHARE
    cus_ids = stripe_ids(ids, "cus_", n)
    name = _objs(n)
    email = _objs(n)
    phone = _objs(n)
    line1, line2, city, state, postal = _objs(n), _objs(n), _objs(n), _objs(n), _objs(n)
    locale = _objs(n)
    for ci, ctry in enumerate(C.COUNTRIES):
        m = country == ci
        k = int(m.sum())
        if not k:
            continue
        pool = POOLS[ctry.code]
        ascii_first = np.array([_ascii(s) for s in pool.first], dtype=object)
        ascii_last = np.array([_ascii(s) for s in pool.last], dtype=object)
        fi = g.integers(0, len(pool.first), k)
        la = g.integers(0, len(pool.last), k)
        name[m] = np.array(pool.first, dtype=object)[fi] + " " + np.array(pool.last, dtype=object)[la]
        num = g.integers(1, 1000, k).astype(str).astype(object)
        dom = np.array(pool.email_domains, dtype=object)[g.integers(0, len(pool.email_domains), k)]
        email[m] = ascii_first[fi] + "." + ascii_last[la] + num + "@" + dom
        phone[m] = pool.phone_prefix + " " + g.integers(1_000_000, 9_999_999, k).astype(str).astype(object)
        street = np.array(pool.streets, dtype=object)[g.integers(0, len(pool.streets), k)]
        line1[m] = g.integers(1, 400, k).astype(str).astype(object) + " " + street
        l2 = np.where(g.random(k) < 0.15, "Suite " + g.integers(1, 40, k).astype(str).astype(object), None)
        line2[m] = l2
        cities = pool.cities
        ci_idx = g.integers(0, len(cities), k)
        city[m] = np.array([c[0] for c in cities], dtype=object)[ci_idx]
        state[m] = np.array([c[1] for c in cities], dtype=object)[ci_idx]
        if pool.postal_digits:
            postal[m] = zero_padded(g.integers(0, 10**pool.postal_digits, k), pool.postal_digits)
        else:
            letters = np.array(list("ABCDEFGHJKLMNPRSTUVWXY"), dtype=object)
            postal[m] = (letters[g.integers(0, 22, k)] + g.integers(1, 10, k).astype(str).astype(object)
                         + " " + g.integers(1, 10, k).astype(str).astype(object)
                         + letters[g.integers(0, 22, k)] + letters[g.integers(0, 22, k)])  # fmt: skip
        locale[m] = ctry.locale.split("-")[0]
    channel_json = np.array(
        [json.dumps({"signup_channel": c}) for c in C.SIGNUP_CHANNELS], dtype=object
    )
    customers: Frame = {
        "id": cus_ids,
        "email": email,
        "name": name,
        "phone": np.where(g.random(n) < 0.7, phone, None),
        "currency": _objs(n),  # set below once we know who is billed
        "balance": np.zeros(n, dtype=np.int64),
        "delinquent": np.zeros(n, dtype=bool),
        "preferred_locale": locale,
        "created": signup.astype(np.int64),
        "metadata": channel_json[channel],
    }
    addresses: Frame = {
        "customer_id": cus_ids[has_address],
        "line1": line1[has_address],
        "line2": line2[has_address],
        "city": city[has_address],
        "state": state[has_address],
        "postal_code": postal[has_address],
        "country": _COUNTRY_CODES[country[has_address]],
    }
    latent = {
        "country": country,
        "channel": channel,
        "engagement": engagement,
        "fraud": fraud,
        "subscriber": subscriber,
        "one_off": one_off,
    }
    return customers, addresses, latent


def _ascii(s: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower().replace(" ", "")


# ------------------------------------------------------------------------ payment methods


def _card_expiry(g: np.random.Generator, created: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """Expiry of each customer's first card, and what happens when it comes in the window.

    A card expires at the end of its expiry month. If that is before the horizon, the
    issuer's card updater gives a share (:data:`config.CARD_UPDATER_SHARE`) a new
    expiry a few days before (a ``payment_method.updated``); the others' card is dead
    from its expiry (``dead_at``): every later attempt declines with ``expired_card``.
    """
    n = len(created)
    year = created.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    exp_year = year + g.integers(1, 6, n)
    exp_month = g.integers(1, 13, n)
    expires = add_months(np.zeros(n, dtype=np.int64), (exp_year - 1970) * 12 + exp_month)
    in_window = expires < horizon
    updated = in_window & (g.random(n) < C.CARD_UPDATER_SHARE)
    update_at = np.where(updated, expires - g.integers(1, 20, n) * DAY, NA)
    update_at = np.where(updated, np.maximum(update_at, created + 1), NA)
    never = np.iinfo(np.int64).max
    return {
        "exp_year": exp_year, "exp_month": exp_month, "in_window": in_window,
        "update_at": update_at, "new_exp_year": exp_year + g.integers(3, 5, n),
        "dead_at": np.where(in_window & ~updated, expires, never),
    }  # fmt: skip


def _payment_methods(g, ids, cust_created, billed, country, fraud, horizon, cards):
    """One card per billed customer; some replace it later (the old card is detached).

    A card that expires in the window is updated or dies (:func:`_card_expiry`), never
    replaced: the replacement cards expire after the window.
    """
    who = np.flatnonzero(billed)
    n = len(who)
    created = cust_created[who] + 60
    replace = (g.random(n) < C.CARD_REPLACEMENT_SHARE) & ~cards["in_window"][who]
    lo = created + 30 * DAY
    t_replace = lo + (g.random(n) * np.maximum(horizon - lo, 0)).astype(np.int64)
    replace &= t_replace < horizon
    # rows: first cards, then replacement cards
    owner = np.r_[who, who[replace]]
    pm_created = np.r_[created, t_replace[replace]]
    m = len(owner)
    intl = g.random(m) < np.where(fraud[owner], 0.5, C.INTERNATIONAL_CARD_SHARE)
    card_country = np.where(intl, g.integers(0, len(C.COUNTRIES), m), country[owner])
    card_country = np.where(intl & (card_country == country[owner]), 0, card_country)
    card_country = np.where(intl & (country[owner] == 0) & (card_country == 0), 1, card_country)
    brands = np.array(["visa", "mastercard", "amex", "discover", "jcb"], dtype=object)
    brand = brands[_choice(g, (0.55, 0.32, 0.08, 0.02, 0.03), m)]
    funding = np.array(["credit", "debit", "prepaid"], dtype=object)[_choice(g, (0.6, 0.37, 0.03), m)]
    year = (pm_created.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970)
    pm: Frame = {
        "id": stripe_ids(ids, "pm_", m),
        "customer_id": _objs(m),  # filled by the caller
        "type": _objs(m, "card"),
        "card_brand": brand,
        "card_funding": funding,
        "card_country": _COUNTRY_CODES[card_country],
        "card_last4": zero_padded(g.integers(0, 10_000, m), 4),
        "card_exp_month": np.r_[cards["exp_month"][who], g.integers(1, 13, m - n)].astype(np.int64),
        "card_exp_year": np.r_[
            np.where(cards["update_at"][who] != NA, cards["new_exp_year"][who], cards["exp_year"][who]),
            year[n:] + g.integers(3, 6, m - n),
        ].astype(np.int64),
        "card_fingerprint": stripe_ids(ids, "", m, 16),
        "created": pm_created,
    }
    detached = np.r_[replace, np.zeros(int(replace.sum()), bool)]
    detach_time = np.r_[np.where(replace, t_replace, NA), _ints(int(replace.sum()))]
    # per-customer lookup: first card row, replacement card row, replacement time
    first_row = np.full(len(billed), -1, dtype=np.int64)
    first_row[who] = np.arange(n)
    second_row = np.full(len(billed), -1, dtype=np.int64)
    second_row[who[replace]] = n + np.arange(int(replace.sum()))
    switch_at = np.full(len(billed), np.iinfo(np.int64).max, dtype=np.int64)
    switch_at[who[replace]] = t_replace[replace]
    return pm, owner, card_country, detached, detach_time, (first_row, second_row, switch_at)


# ------------------------------------------------------------------------ subscriptions


@dataclass
class _Spells:
    sub: Frame  # per subscription (internal columns)
    per: Frame  # per paid period (internal columns)


def _period_matrix(anchor: np.ndarray, step: np.ndarray, k: int) -> np.ndarray:
    return add_months(anchor[:, None], step[:, None] * np.arange(k)[None, :])


def _draw_failures(g, n: int, fail_p: np.ndarray) -> np.ndarray:
    """Declined attempts before the first success (a zero-inflated geometric count)."""
    first = g.random(n) < fail_p
    extra = g.geometric(1.0 - C.RETRY_DECLINE, n) - 1
    return np.where(first, 1 + extra, 0).astype(np.int64)


def _attempt_offsets(kind: np.ndarray) -> np.ndarray:
    """Offsets (seconds after the first attempt) of up to 4 attempts per invoice kind."""
    cycle = np.array(C.RETRY_DAYS, dtype=np.int64) * DAY
    create = np.array([0, C.FIRST_INVOICE_RETRY_HOURS[1] * HOUR, 0, 0], dtype=np.int64)
    other = np.array([0, 1, 2, 3], dtype=np.int64) * DAY
    table = np.stack([create, create, cycle, other, other])
    return table[kind]


def _spells(g, cust, start, allow_trial, latent, cat: Catalog, horizon: int, months: int) -> _Spells:
    s = len(cust)
    e = latent["engagement"][cust]
    tier = _choice(g, C.TIER_WEIGHTS, s)
    yearly = g.random(s) < C.YEARLY_SHARE
    cur = _COUNTRY_CUR[latent["country"][cust]]
    seats = 1 + g.geometric(1.0 / C.TEAM_SEATS_MEAN, s) - 1
    qty = np.where(tier == 0, 1, np.maximum(seats, 1)).astype(np.int64)
    trial = allow_trial & (g.random(s) < C.TRIAL_SHARE)
    trial_end = np.where(trial, start + C.TRIAL_DAYS * DAY, NA)
    converts = trial & (g.random(s) < C.TRIAL_CONVERSION_BASE + 0.5 * e)
    anchor = np.where(trial, trial_end, start)
    step = np.where(yearly, 12, 1).astype(np.int64)
    k_max = months // 1 + 3
    P = _period_matrix(anchor, step, k_max)
    n_fit = (horizon > P).sum(axis=1)
    n_fit = np.where(trial & (~converts | (trial_end >= horizon)), 0, n_fit)
    # a fraudster's charges are disputed as fraudulent by the card's owner weeks later, and
    # the merchant stops serving them then: no period starts after that (fraud_cut)
    fraud_sub = latent["fraud"][cust]
    fraud_cut = np.where(fraud_sub, P[:, 0] + g.integers(*C.FRAUD_DISPUTE_DAYS, s) * DAY, NA)
    n_fit = np.where(fraud_sub, np.minimum(n_fit, (fraud_cut[:, None] > P).sum(axis=1)), n_fit)
    h = np.asarray(C.MONTHLY_CHURN_BY_TIER)[tier] * (0.2 + 1.6 * (1 - e))
    h = np.where(yearly, 0.6 * (1 - (1 - h) ** 12), h)
    n_churn = g.geometric(np.clip(h, 1e-4, 0.99), s)
    n_cand = np.minimum(n_churn, n_fit)
    metered = (~yearly) & (tier > 0) & (g.random(s) < C.METERED_SHARE)
    # coupons
    coupon = np.full(s, -1, dtype=np.int64)
    u = g.random(s)
    acc = 0.0
    for ci, spec in enumerate(C.COUPONS):
        hit = (u >= acc) & (u < acc + spec[6])
        if spec[3] is not None:  # amount off in USD: USD subscriptions only
            hit &= cur == _CUR_INDEX["usd"]
        coupon[hit] = ci
        acc += spec[6]
    # periods (candidate) and their payment attempts
    sub_of = np.repeat(np.arange(s), n_cand)
    k = _rank_within(sub_of)
    p_start = P[sub_of, k]
    p_end = P[sub_of, k + 1]
    kind = np.where((k == 0) & ~trial[sub_of], CREATE, CYCLE)
    created = p_start
    finalized = np.where(kind == CREATE, created + 1, created + HOUR)
    fail_p = np.where(latent["fraud"][cust[sub_of]], C.FRAUDSTER_DECLINE, C.FIRST_ATTEMPT_DECLINE)
    failures = _draw_failures(g, len(sub_of), fail_p)
    max_att = np.where(kind == CREATE, 2, 4)
    off = _attempt_offsets(kind)
    jitter = g.integers(0, HOUR, (len(sub_of), 4))
    jitter[:, 0] = 0
    times = finalized[:, None] + 1 + off + np.where(off > 0, jitter, 0)
    # an expired card the customer did not update declines every attempt from its expiry
    dead = latent["card_dead_at"][cust[sub_of]]
    would_pay = times[np.arange(len(sub_of)), np.minimum(failures, max_att - 1)]
    failures = np.where(would_pay >= dead, max_att, failures)
    attempts = np.minimum(failures + 1, max_att)
    success = failures < max_att
    last_t = times[np.arange(len(sub_of)), attempts - 1]
    expire_t = created + C.INCOMPLETE_EXPIRY_HOURS * HOUR
    outcome = np.where(
        success & (last_t < horizon),
        PAID,
        np.where(
            ~success & (kind == CREATE) & (expire_t < horizon),
            TERMINAL,
            np.where(~success & (kind == CYCLE) & (last_t + HOUR < horizon), TERMINAL, PENDING),
        ),
    )
    # truncate each subscription at its first period that is not paid
    not_paid = np.where(outcome != PAID, k, np.iinfo(np.int64).max)
    first_bad = np.full(s, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_bad, sub_of, not_paid)
    keep = k <= first_bad[sub_of]
    n_eff = np.bincount(sub_of[keep], minlength=s)
    per = {
        "sub": sub_of, "k": k, "start": p_start, "end": p_end, "kind": kind, "created": created,
        "finalized": finalized, "failures": failures, "attempts": attempts, "success": success,
        "outcome": outcome, "t0": times[:, 0], "t1": times[:, 1], "t2": times[:, 2], "t3": times[:, 3],
        "last_t": last_t,
    }  # fmt: skip
    per = _take(per, keep)
    last_idx = np.full(s, -1, dtype=np.int64)
    np.maximum.at(last_idx, per["sub"], np.arange(len(per["sub"])))
    has_per = n_eff > 0
    last_outcome = np.where(has_per, per["outcome"][np.maximum(last_idx, 0)], PAID) if len(per["sub"]) else np.full(s, PAID)
    last_outcome = np.where(has_per, last_outcome, PAID)
    # ---- status, as of the horizon
    status = _objs(s, "active")
    cancel_at_period_end = np.zeros(s, dtype=bool)
    cancel_at, canceled_at, ended_at = _ints(s), _ints(s), _ints(s)
    reason = _objs(s)
    # trials
    trialing = trial & (trial_end >= horizon)
    status[trialing] = "trialing"
    lapse = trial & ~converts & (trial_end < horizon)
    lapse_req = start + (g.random(s) * (C.TRIAL_DAYS * DAY - 2)).astype(np.int64) + 1
    status[lapse] = "canceled"
    cancel_at_period_end[lapse] = True
    cancel_at[lapse] = trial_end[lapse]
    canceled_at[lapse] = lapse_req[lapse]
    ended_at[lapse] = trial_end[lapse]
    reason[lapse] = "cancellation_requested"
    # a trial that will lapse after the horizon: the customer may already have canceled
    lapse_future = trial & ~converts & (trial_end >= horizon) & (lapse_req < horizon)
    cancel_at_period_end[lapse_future] = True
    cancel_at[lapse_future] = trial_end[lapse_future]
    canceled_at[lapse_future] = lapse_req[lapse_future]
    # payment outcomes of the last period
    lp = np.maximum(last_idx, 0)
    pend = has_per & (last_outcome == PENDING)
    first_kind = per["kind"][lp] if len(per["sub"]) else np.zeros(s, dtype=np.int64)
    status[pend & (first_kind == CREATE)] = "incomplete"
    # past_due only once a renewal attempt has failed before the horizon
    failed_before = pend & (per["t0"][lp] < horizon) & (per["failures"][lp] > 0) if len(per["sub"]) else pend
    status[pend & (first_kind == CYCLE) & failed_before] = "past_due"
    term = has_per & (last_outcome == TERMINAL)
    expired = term & (first_kind == CREATE)
    status[expired] = "incomplete_expired"
    ended_at[expired] = per["created"][lp][expired] + C.INCOMPLETE_EXPIRY_HOURS * HOUR if len(per["sub"]) else 0
    dunned = term & (first_kind == CYCLE)
    unpaid = dunned & (g.random(s) < C.UNPAID_SHARE)
    dun_cancel = dunned & ~unpaid
    status[unpaid] = "unpaid"
    status[dun_cancel] = "canceled"
    t_term = per["last_t"][lp] + HOUR if len(per["sub"]) else _ints(s)
    canceled_at[dun_cancel] = t_term[dun_cancel]
    ended_at[dun_cancel] = t_term[dun_cancel]
    reason[dun_cancel] = "payment_failed"
    # voluntary churn in the last period
    churn = has_per & (last_outcome == PAID) & (n_churn <= n_fit) & (n_eff == n_churn)
    immediate = g.random(s) < C.IMMEDIATE_CANCEL_SHARE
    if len(per["sub"]):
        l_start, l_end = per["start"][lp], per["end"][lp]
    else:
        l_start = l_end = _ints(s, 0)
    l_paid = per["last_t"][lp] + 2 * HOUR if len(per["sub"]) else l_start
    t_req = l_paid + (g.random(s) * np.maximum(l_end - l_paid - 2 * HOUR, 1)).astype(np.int64)
    req_ok = churn & (t_req < horizon)
    imm = req_ok & immediate
    at_end = req_ok & ~immediate
    canceled_at[req_ok] = t_req[req_ok]
    reason[req_ok] = "cancellation_requested"
    status[imm] = "canceled"
    ended_at[imm] = t_req[imm]
    cancel_at_period_end[at_end] = True
    cancel_at[at_end] = l_end[at_end]
    ended_now = at_end & (l_end < horizon)
    status[ended_now] = "canceled"
    ended_at[ended_now] = l_end[ended_now]
    # the merchant cancels a fraudster's subscription when the fraud dispute arrives
    cut = fraud_sub & has_per & (last_outcome == PAID) & (fraud_cut < horizon)
    cut &= (ended_at == NA) | (ended_at > fraud_cut)
    status[cut] = "canceled"
    cancel_at_period_end[cut] = False
    cancel_at[cut] = NA
    canceled_at[cut] = fraud_cut[cut]
    ended_at[cut] = fraud_cut[cut]
    reason[cut] = "payment_disputed"
    # current period of the items
    cps = np.where(has_per, l_start, np.where(trial, start, start))
    cpe = np.where(has_per, l_end, np.where(trial, trial_end, add_months(start, step)))
    # ---- one change (upgrade, downgrade, seats) in some subscriptions
    can_change = n_eff >= 2
    change = can_change & (g.random(s) < C.CHANGE_SHARE)
    c_at = (g.random(s) * np.maximum(n_eff - 1, 1)).astype(np.int64)  # period of the change
    # 0 upgrade, 1 downgrade, 2 seats up, 3 seats down
    ck = _choice(g, (0.25, 0.15, 0.4, 0.2), s)
    ck = np.where(tier == 0, 0, np.where((tier == 2) & (ck == 0), 2, ck))
    ck = np.where((ck == 3) & (qty < 2), 2, ck)
    # team -> starter only for one or two seats (else the prorated credit exceeds the next bill)
    ck = np.where((ck == 1) & (tier == 1) & (qty > 2), 3, ck)
    new_tier = np.where(ck == 0, np.minimum(tier + 1 + (g.random(s) < 0.3), 2), np.where(ck == 1, np.maximum(tier - 1, 0), tier))
    # seats down to at least half: the credit never exceeds the next bill
    seats_down = np.minimum(np.maximum(np.ceil(qty / 2).astype(np.int64), 1), qty - 1)
    new_qty = np.select([ck == 2, ck == 3], [qty + 1 + g.geometric(0.4, s), seats_down], qty)
    new_qty = np.where((ck == 0) & (tier == 0), 2 + g.geometric(0.5, s) - 1, new_qty)
    new_qty = np.where((ck == 1) & (new_tier == 0), 1, new_qty)
    # period bounds of the change period
    base = np.r_[0, np.cumsum(n_eff)[:-1]]
    cp = np.where(change, base + c_at, 0)
    if len(per["sub"]):
        c_start, c_end = per["start"][cp], per["end"][cp]
    else:
        c_start = c_end = _ints(s, 0)
    u = g.random(s)
    frac = np.where(ck == 1, 0.5 + 0.4 * u, 0.1 + 0.8 * u)  # downgrades happen late in the period
    t_change = c_start + (frac * (c_end - c_start)).astype(np.int64)
    change &= t_change + 7 * DAY < latent["card_dead_at"][cust]  # paid at once, on a valid card
    price_tab = cat.tier_price_table()
    price0 = price_tab[tier, yearly.astype(int), cur]
    price1 = price_tab[new_tier, yearly.astype(int), cur]
    sub = {
        "cust": cust, "start": start, "tier": tier, "yearly": yearly, "cur": cur, "qty": qty,
        "trial": trial, "trial_end": trial_end, "converts": converts, "anchor": anchor,
        "step": step, "metered": metered, "coupon": coupon, "n_eff": n_eff,
        "status": status, "cancel_at_period_end": cancel_at_period_end, "cancel_at": cancel_at,
        "canceled_at": canceled_at, "ended_at": ended_at, "reason": reason,
        "cps": cps, "cpe": cpe, "change": change, "c_at": c_at, "change_kind": ck,
        "new_tier": new_tier, "new_qty": new_qty, "t_change": t_change, "c_start": c_start,
        "c_end": c_end, "price0": price0, "price1": price1, "lapse_req": lapse_req,
        "last_outcome": np.where(has_per, last_outcome, -1), "t_term": t_term, "churn_req": req_ok,
        "fraud_cut": fraud_cut,
    }  # fmt: skip
    return _Spells(sub, per)


def simulate_chunk(
    seed: int, chunk: int, signup: np.ndarray, cat: Catalog, fx: Frame, horizon: int, months: int
) -> ChunkResult:
    """Simulate the customers who signed up at ``signup`` (unix seconds, sorted).

    Args:
        seed: the run's seed.
        chunk: the cohort's index (keys every random stream of the cohort).
        signup: sign-up instants of the cohort's customers.
        cat: the catalog.
        fx: the daily FX rates (``build_fx_rates``).
        horizon: end of the simulated window (unix seconds, exclusive).
        months: length of the window in months.

    Returns:
        The cohort's rows of every Stripe table, its changes and latent traits.
    """
    ids = rng(seed, "ids", chunk)
    customers, addresses, latent = _customers(seed, chunk, signup, ids)
    n = len(signup)
    g = rng(seed, "subscriptions", chunk)
    gi = rng(seed, "invoices", chunk)
    gp = rng(seed, "payments", chunk)
    cust_created = customers["created"]
    # ---- cards: when each customer's first card expires, and whether its issuer updates it
    cards = _card_expiry(rng(seed, "cards", chunk), cust_created + 60, horizon)
    latent["card_dead_at"] = cards["dead_at"]
    # ---- first subscriptions, then comebacks
    who = np.flatnonzero(latent["subscriber"])
    delay = 120 + np.where(g.random(len(who)) < 0.5, g.exponential(3 * DAY, len(who)), g.integers(0, 3600, len(who)))
    start1 = cust_created[who] + delay.astype(np.int64)
    ok = start1 < horizon
    sp1 = _spells(g, who[ok], start1[ok], np.ones(int(ok.sum()), bool), latent, cat, horizon, months)
    ended = sp1.sub["ended_at"]
    back = (ended != NA) & (g.random(len(ended)) < C.COMEBACK_SHARE)
    back &= ~latent["fraud"][sp1.sub["cust"]]  # a merchant does not take a fraudster back
    gap = g.integers(C.COMEBACK_DAYS[0] * DAY, C.COMEBACK_DAYS[1] * DAY, len(ended))
    start2 = np.where(back, ended + gap, NA)
    back &= (start2 < horizon) & (start2 != NA) & (start2 < cards["dead_at"][sp1.sub["cust"]])
    sp2 = _spells(g, sp1.sub["cust"][back], start2[back], np.zeros(int(back.sum()), bool), latent, cat, horizon, months)
    s1 = len(sp1.sub["cust"])
    sp2.per["sub"] = sp2.per["sub"] + s1
    sub = _cat(sp1.sub, sp2.sub)
    sub["spell"] = np.r_[np.ones(s1, np.int64), np.full(len(sp2.sub["cust"]), 2)]
    per = _cat(sp1.per, sp2.per)
    S = len(sub["cust"])
    # ---- one-off invoices
    oo = np.flatnonzero(latent["one_off"])
    n_oo = 1 + (g.random(len(oo)) < 0.25)
    oo_cust = np.repeat(oo, n_oo)
    lo = cust_created[oo_cust] + DAY
    oo_t = lo + (g.random(len(oo_cust)) * np.maximum(horizon - lo, 0)).astype(np.int64)
    oo_ok = oo_t < horizon - HOUR
    # paid on a valid card by an honest customer (a one-off takes up to weeks to be paid)
    oo_ok &= ~latent["fraud"][oo_cust] & (oo_t + 60 * DAY < cards["dead_at"][oo_cust])
    oo_cust, oo_t = oo_cust[oo_ok], oo_t[oo_ok]
    # ---- who is billed, and their currency and cards
    billed = np.zeros(n, dtype=bool)
    billed[sub["cust"]] = True
    billed[oo_cust] = True
    first_billed = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_billed, sub["cust"], sub["start"])
    np.minimum.at(first_billed, oo_cust, oo_t)
    customers["currency"] = np.where(billed, _CUR_CODES[_COUNTRY_CUR[latent["country"]]], None)
    pm, pm_owner, pm_country_idx, pm_detached, pm_detach_t, (pm_first, pm_second, pm_switch) = _payment_methods(
        gp, ids, cust_created, billed, latent["country"], latent["fraud"], horizon, cards
    )
    pm["customer_id"] = np.where(pm_detached, None, customers["id"][pm_owner])
    # the card updater's renewals: when, and the expiry year before
    billed_idx = np.flatnonzero(billed)
    pm_update_t = _ints(len(pm["id"]))
    pm_update_t[pm_first[billed_idx]] = cards["update_at"][billed_idx]
    pm_old_exp_year = pm["card_exp_year"].copy()
    pm_old_exp_year[pm_first[billed_idx]] = cards["exp_year"][billed_idx]
    # ---- subscriptions table
    sub_ids = stripe_ids(ids, "sub_", S)
    subscriptions: Frame = {
        "id": sub_ids,
        "customer_id": customers["id"][sub["cust"]],
        "status": sub["status"],
        "currency": _CUR_CODES[sub["cur"]],
        "collection_method": _objs(S, "charge_automatically"),
        "default_payment_method_id": _objs(S),
        "start_date": sub["start"],
        "billing_cycle_anchor": sub["anchor"],
        "trial_start": np.where(sub["trial"], sub["start"], NA),
        "trial_end": sub["trial_end"],
        "cancel_at_period_end": sub["cancel_at_period_end"],
        "cancel_at": sub["cancel_at"],
        "canceled_at": sub["canceled_at"],
        "ended_at": sub["ended_at"],
        "cancellation_reason": sub["reason"],
        "created": sub["start"],
        "metadata": np.where(sub["spell"] == 2, json.dumps({"reactivation": "true"}), "{}").astype(object),
    }
    # ---- items: the licensed one, and a metered one for some
    changed = sub["change"]
    final_price = np.where(changed, sub["price1"], sub["price0"])
    final_qty = np.where(changed, sub["new_qty"], sub["qty"])
    met_subs = np.flatnonzero(sub["metered"])
    api_price = np.array([cat.price_index("api", "month", c) for c in C.CURRENCIES], dtype=np.int64)
    item_sub = np.r_[np.arange(S), met_subs]
    n_items = len(item_sub)
    item_price = np.r_[final_price, api_price[sub["cur"][met_subs]]]
    item_ids = stripe_ids(ids, "si_", n_items)
    items: Frame = {
        "id": item_ids,
        "subscription_id": sub_ids[item_sub],
        "price_id": cat.prices["id"][item_price],
        "quantity": np.r_[final_qty, _ints(len(met_subs))],
        "current_period_start": sub["cps"][item_sub],
        "current_period_end": sub["cpe"][item_sub],
        "created": sub["start"][item_sub],
        "metadata": _objs(n_items, "{}"),
    }
    metered_item = np.full(S, -1, dtype=np.int64)
    metered_item[met_subs] = S + np.arange(len(met_subs))
    # ---- discounts
    dsub = np.flatnonzero(sub["coupon"] >= 0)
    dcoupon = sub["coupon"][dsub]
    months_of = np.array([NA if c[5] is None else c[5] for c in C.COUPONS], dtype=np.int64)
    dur = np.array([c[4] for c in C.COUPONS], dtype=object)
    d_end = np.where(dur[dcoupon] == "repeating", add_months(sub["start"][dsub], np.where(months_of[dcoupon] == NA, 0, months_of[dcoupon])), NA)
    discounts: Frame = {
        "id": stripe_ids(ids, "di_", len(dsub)),
        "coupon_id": cat.coupons["id"][dcoupon],
        "customer_id": customers["id"][sub["cust"][dsub]],
        "subscription_id": sub_ids[dsub],
        "starts_at": sub["start"][dsub],
        "ends_at": d_end,
    }
    sub_disc_end = np.full(S, NA, dtype=np.int64)
    sub_disc_end[dsub] = d_end
    # ---- invoices: trial (zero), periods, updates (prorations), manual
    inv_parts: list[Frame] = []
    line_parts: list[Frame] = []
    # trial invoices
    ts = np.flatnonzero(sub["trial"])
    inv_parts.append({
        "sub": ts, "cust": sub["cust"][ts], "kind": _ints(len(ts), TRIAL), "created": sub["start"][ts],
        "finalized": sub["start"][ts] + 1, "p_start": sub["start"][ts], "p_end": sub["trial_end"][ts],
        "failures": _ints(len(ts), 0), "max_att": _ints(len(ts), 1), "outcome": _ints(len(ts), PAID),
        "pay_start": sub["start"][ts] + 2, "void_at": _ints(len(ts)), "k": _ints(len(ts), -1),
    })  # fmt: skip
    # period invoices
    ps = per["sub"]
    inv_parts.append({
        "sub": ps, "cust": sub["cust"][ps], "kind": per["kind"], "created": per["created"],
        "finalized": per["finalized"], "p_start": per["start"], "p_end": per["end"],
        "failures": per["failures"], "max_att": np.where(per["kind"] == CREATE, 2, 4),
        "outcome": per["outcome"], "pay_start": per["finalized"] + 1,
        "void_at": np.where((per["kind"] == CREATE) & (per["outcome"] == TERMINAL),
                            per["created"] + C.INCOMPLETE_EXPIRY_HOURS * HOUR, NA),
        "k": per["k"],
    })  # fmt: skip
    # immediate proration invoices (upgrade, seats up)
    us = np.flatnonzero(changed & ((sub["change_kind"] == 0) | (sub["change_kind"] == 2)))
    inv_parts.append({
        "sub": us, "cust": sub["cust"][us], "kind": _ints(len(us), UPDATE), "created": sub["t_change"][us],
        "finalized": sub["t_change"][us] + 1, "p_start": sub["t_change"][us], "p_end": sub["c_end"][us],
        "failures": _draw_failures(gi, len(us), np.where(latent["fraud"][sub["cust"][us]], C.FRAUDSTER_DECLINE, C.FIRST_ATTEMPT_DECLINE)),
        "max_att": _ints(len(us), 4), "outcome": _ints(len(us), PAID), "pay_start": sub["t_change"][us] + 2,
        "void_at": _ints(len(us)), "k": _ints(len(us), -2),
    })  # fmt: skip
    # manual invoices
    n_m = len(oo_cust)
    void_time = oo_t + 1 + (gi.random(n_m) * 5 * DAY).astype(np.int64) + 1
    void_m = (gi.random(n_m) < 0.05) & (void_time < horizon)
    pay_delay = (gi.exponential(4 * DAY, n_m) + HOUR).astype(np.int64)
    inv_parts.append({
        "sub": _ints(n_m, -1), "cust": oo_cust, "kind": _ints(n_m, MANUAL), "created": oo_t,
        "finalized": oo_t + 1, "p_start": oo_t, "p_end": oo_t,
        "failures": _draw_failures(gi, n_m, np.where(latent["fraud"][oo_cust], C.FRAUDSTER_DECLINE, C.FIRST_ATTEMPT_DECLINE)),
        "max_att": _ints(n_m, 4), "outcome": np.where(void_m, VOIDED, PAID),
        "pay_start": oo_t + 1 + pay_delay, "void_at": np.where(void_m, void_time, NA),
        "k": _ints(n_m, -3),
    })  # fmt: skip
    inv = _cat(*inv_parts)
    NI = len(inv["cust"])
    inv_cur = np.where(inv["sub"] >= 0, sub["cur"][np.maximum(inv["sub"], 0)], _COUNTRY_CUR[latent["country"][inv["cust"]]])
    inv_exp = _EXP[inv_cur]
    inv_ids = stripe_ids(ids, "in_", NI)
    # ---- lines
    is_sub = inv["sub"] >= 0
    isub = np.maximum(inv["sub"], 0)
    kk = inv["k"]
    after_change = changed[isub] & (kk > sub["c_at"][isub])
    l_price = np.where(after_change, sub["price1"][isub], sub["price0"][isub])
    l_qty = np.where(after_change, sub["new_qty"][isub], sub["qty"][isub])
    unit = cat.prices["unit_amount"]
    # base lines: trial and period invoices
    base_m = (inv["kind"] == TRIAL) | (inv["kind"] == CREATE) | (inv["kind"] == CYCLE)
    bi = np.flatnonzero(base_m)
    b_amount = np.where(inv["kind"][bi] == TRIAL, 0, unit[l_price[bi]] * l_qty[bi])
    pname = cat.products["name"]
    prod_row = {pid: i for i, pid in enumerate(cat.products["id"])}
    price_prod = np.array([prod_row[p] for p in cat.prices["product_id"]], dtype=np.int64)
    b_desc = np.where(
        inv["kind"][bi] == TRIAL,
        "Trial period for " + pname[price_prod[l_price[bi]]],
        l_qty[bi].astype(str).astype(object) + " x " + pname[price_prod[l_price[bi]]],
    )
    line_parts.append({
        "inv": bi, "item": isub[bi], "price": l_price[bi], "qty": l_qty[bi], "amount": b_amount,
        "proration": np.zeros(len(bi), bool), "p_start": inv["p_start"][bi], "p_end": inv["p_end"][bi],
        "desc": b_desc, "base": np.ones(len(bi), bool),
    })  # fmt: skip
    # metered usage lines, in arrears, on renewals
    mi = np.flatnonzero((inv["kind"] == CYCLE) & is_sub & (metered_item[isub] >= 0) & (kk >= 1))
    eng = latent["engagement"][inv["cust"][mi]]
    usage = gi.poisson(np.exp(gi.normal(np.log(20 + 80 * eng), 0.6)))
    m_price = api_price[inv_cur[mi]]
    m_amount = quantize(np.minimum(usage * unit[m_price], 5_000_000), inv_exp[mi])
    m_start = add_months(sub["anchor"][isub[mi]], (kk[mi] - 1) * sub["step"][isub[mi]])
    line_parts.append({
        "inv": mi, "item": metered_item[isub[mi]], "price": m_price, "qty": usage.astype(np.int64),
        "amount": m_amount, "proration": np.zeros(len(mi), bool), "p_start": m_start,
        "p_end": inv["p_start"][mi], "desc": usage.astype(str).astype(object) + " x API usage (per 1,000)",
        "base": np.zeros(len(mi), bool),
    })  # fmt: skip
    # proration lines: on the update invoice (upgrade, seats up) or the next renewal (seats down)
    ui = np.flatnonzero(inv["kind"] == UPDATE)
    us_ = isub[ui]
    rem = sub["c_end"][us_] - sub["t_change"][us_]
    length = sub["c_end"][us_] - sub["c_start"][us_]
    old_amt = unit[sub["price0"][us_]] * sub["qty"][us_]
    new_amt = unit[sub["price1"][us_]] * sub["new_qty"][us_]
    credit = -quantize(old_amt * rem // length, inv_exp[ui])
    debit = quantize(new_amt * rem // length, inv_exp[ui])
    for amount, price, qty, word in ((credit, sub["price0"][us_], sub["qty"][us_], "Unused time on"),
                                     (debit, sub["price1"][us_], sub["new_qty"][us_], "Remaining time on")):  # fmt: skip
        line_parts.append({
            "inv": ui, "item": us_, "price": price, "qty": qty, "amount": amount,
            "proration": np.ones(len(ui), bool), "p_start": sub["t_change"][us_], "p_end": sub["c_end"][us_],
            "desc": word + " " + qty.astype(str).astype(object) + " x " + pname[price_prod[price]],
            "base": np.zeros(len(ui), bool),
        })  # fmt: skip
    # downgrades and seat decreases: both proration lines go onto the next renewal
    di = np.flatnonzero((inv["kind"] == CYCLE) & changed[isub] & np.isin(sub["change_kind"][isub], (1, 3))
                        & (kk == sub["c_at"][isub] + 1))  # fmt: skip
    ds_ = isub[di]
    rem = sub["c_end"][ds_] - sub["t_change"][ds_]
    length = sub["c_end"][ds_] - sub["c_start"][ds_]
    credit = -quantize(unit[sub["price0"][ds_]] * sub["qty"][ds_] * rem // length, inv_exp[di])
    debit = quantize(unit[sub["price1"][ds_]] * sub["new_qty"][ds_] * rem // length, inv_exp[di])
    for amount, price, qty, word in ((credit, sub["price0"][ds_], sub["qty"][ds_], "Unused time on"),
                                     (debit, sub["price1"][ds_], sub["new_qty"][ds_], "Remaining time on")):  # fmt: skip
        line_parts.append({
            "inv": di, "item": ds_, "price": price, "qty": qty, "amount": amount,
            "proration": np.ones(len(di), bool), "p_start": sub["t_change"][ds_], "p_end": sub["c_end"][ds_],
            "desc": word + " " + qty.astype(str).astype(object) + " x " + pname[price_prod[price]],
            "base": np.zeros(len(di), bool),
        })  # fmt: skip
    # manual invoice lines
    mi2 = np.flatnonzero(inv["kind"] == MANUAL)
    prod_choice = gi.integers(0, len(C.ONE_TIME_PRODUCTS_USD), len(mi2))
    one_time = np.array([[cat.price_index(p[0], "one_time", c) for c in C.CURRENCIES] for p in C.ONE_TIME_PRODUCTS_USD])
    o_price = one_time[prod_choice, inv_cur[mi2]]
    o_qty = np.where(prod_choice == 1, gi.integers(1, 4, len(mi2)), 1)
    line_parts.append({
        "inv": mi2, "item": _ints(len(mi2), -1), "price": o_price, "qty": o_qty.astype(np.int64),
        "amount": unit[o_price] * o_qty, "proration": np.zeros(len(mi2), bool),
        "p_start": inv["created"][mi2], "p_end": inv["created"][mi2],
        "desc": o_qty.astype(str).astype(object) + " x " + pname[price_prod[o_price]],
        "base": np.ones(len(mi2), bool),
    })  # fmt: skip
    lines = _cat(*line_parts)
    order = np.lexsort((np.arange(len(lines["inv"])), lines["inv"]))
    lines = {k: v[order] for k, v in lines.items()}
    L = len(lines["inv"])
    subtotal = np.bincount(lines["inv"], weights=lines["amount"], minlength=NI).astype(np.int64)
    # exact integer sums (bincount uses floats; amounts are far below 2^53)
    # ---- discounts on the base line of subscription invoices
    cpn = sub["coupon"][isub]
    pct = np.array([0 if c[2] is None else c[2] for c in C.COUPONS] + [0], dtype=np.int64)[cpn]
    amt_off = np.array([0 if c[3] is None else c[3] for c in C.COUPONS] + [0], dtype=np.int64)[cpn]
    dur_code = np.array([c[4] for c in C.COUPONS] + ["none"], dtype=object)[cpn]
    applies = is_sub & (cpn >= 0) & ((inv["kind"] == CREATE) | (inv["kind"] == CYCLE))
    first_paid = kk == 0
    applies &= np.where(dur_code == "once", first_paid, True)
    applies &= np.where(dur_code == "repeating", inv["p_start"] < sub_disc_end[isub], True)
    disc = np.where(pct > 0, subtotal * pct // 100, np.minimum(amt_off, subtotal))
    disc = np.where(applies, quantize(np.maximum(disc, 0), inv_exp), 0)
    base_line = np.full(NI, -1, dtype=np.int64)
    bl = np.flatnonzero(lines["base"])
    base_line[lines["inv"][bl]] = bl
    disc = np.minimum(disc, np.where(base_line >= 0, lines["amount"][np.maximum(base_line, 0)], 0))
    line_disc = np.zeros(L, dtype=np.int64)
    has_d = disc > 0
    line_disc[base_line[has_d]] = disc[has_d]
    total = subtotal - disc
    amount_due = np.maximum(total, 0)
    # ---- payment attempts on invoices with something to pay
    zero = amount_due == 0
    outcome = inv["outcome"].copy()
    outcome[zero & (outcome != VOIDED)] = PAID
    payable = ~zero & (outcome != VOIDED)
    # manual invoices voided before the customer paid
    max_att = inv["max_att"]
    fails = inv["failures"]
    forced = (inv["kind"] == UPDATE) | (inv["kind"] == MANUAL)
    attempts = np.minimum(fails + 1, max_att)
    success = forced | (fails < max_att)
    off = _attempt_offsets(inv["kind"])
    att_t = inv["pay_start"][:, None] + off
    att_t[:, 1:] += np.where(off[:, 1:] > 0, gp.integers(0, HOUR, (NI, 3)), 0)
    # period invoices reuse the spell's attempt times so outcomes agree
    pi_rows = np.flatnonzero((inv["kind"] == CREATE) | (inv["kind"] == CYCLE))
    att_t[pi_rows] = np.stack([per["t0"], per["t1"], per["t2"], per["t3"]], axis=1)[: len(pi_rows)]
    j = np.arange(4)[None, :]
    made = (j < attempts[:, None]) & (att_t < horizon) & payable[:, None]
    made_n = made.sum(axis=1)
    succ_t = att_t[np.arange(NI), attempts - 1]
    paid_now = payable & success & (succ_t < horizon)
    outcome[payable & ~paid_now & (outcome == PAID)] = PENDING
    # ---- charges: one row per attempt made
    ch_inv, ch_j = np.nonzero(made)
    Cn = len(ch_inv)
    ch_t = att_t[ch_inv, ch_j] + 1
    ch_ok = success[ch_inv] & (ch_j == attempts[ch_inv] - 1)
    ch_cust = inv["cust"][ch_inv]
    use_second = (pm_second[ch_cust] >= 0) & (ch_t >= pm_switch[ch_cust])
    ch_pm = np.where(use_second, pm_second[ch_cust], pm_first[ch_cust])
    card_cc = pm["card_country"][ch_pm]
    fraud_c = latent["fraud"][ch_cust]
    intl = card_cc != "US"
    score = np.clip(np.round(gp.gamma(2.0, 7.0, Cn) + 8 * (card_cc != _COUNTRY_CODES[latent["country"][ch_cust]])), 0, 99)
    score = np.where(fraud_c, np.clip(55 + np.round(gp.gamma(2.0, 9.0, Cn)), 0, 99), score).astype(np.int64)
    ch_ok_score = np.where(ch_ok & (score >= C.RADAR_BLOCK_SCORE), C.RADAR_BLOCK_SCORE - 1 - gp.integers(0, 10, Cn), score)
    score = ch_ok_score
    risk = np.where(score >= C.RISK_HIGHEST, "highest", np.where(score >= C.RISK_ELEVATED, "elevated", "normal")).astype(object)
    tds_share = np.array([c.three_ds_share for c in C.COUNTRIES])
    card_ci = pm_country_idx[ch_pm]
    tds = gp.random(Cn) < tds_share[card_ci]
    blocked = ~ch_ok & (score >= C.RADAR_BLOCK_SCORE) & (gp.random(Cn) < 0.5)
    tds_fail = ~ch_ok & ~blocked & tds & (gp.random(Cn) < 0.3)
    # decline codes: 0 Radar block, 1 failed 3-D Secure, then the issuer's codes
    codes = np.array(["fraudulent", "authentication_required", *(c[0] for c in C.DECLINE_CODES), "expired_card"],
                     dtype=object)  # fmt: skip
    decline = 2 + _choice(gp, tuple(c[1] for c in C.DECLINE_CODES), Cn)
    stolen, fraudulent = (2 + [c[0] for c in C.DECLINE_CODES].index(x) for x in ("stolen_card", "fraudulent"))
    decline = np.where(fraud_c & (gp.random(Cn) < 0.5), np.where(gp.random(Cn) < 0.5, stolen, fraudulent), decline)
    # the first card past its expiry (not updated) declines with expired_card, and only it
    expired = ~ch_ok & (ch_pm == pm_first[ch_cust]) & (ch_t >= latent["card_dead_at"][ch_cust])
    blocked &= ~expired
    tds_fail &= ~expired
    decline = np.where(expired, len(codes) - 1, decline)
    fc_idx = np.where(ch_ok, -1, np.where(blocked, 0, np.where(tds_fail, 1, decline)))
    decline_code = np.where(fc_idx >= 0, codes[np.maximum(fc_idx, 0)], None).astype(object)
    # Stripe's places: failure_code is the error code (card_declined for an issuer
    # decline), outcome.reason the decline code (Radar's reason for a block)
    failure_code = np.array([None if c is None else error_code(c) for c in decline_code], dtype=object)
    failure_code[fc_idx == 1] = "authentication_required"
    outcome_reason = np.where(fc_idx == 0, "highest_risk_level", np.where(fc_idx >= 2, decline_code, None)).astype(object)
    messages = {
        "card_declined": "Your card was declined.", "authentication_required": "Your card was declined. This transaction requires authentication.",
        "insufficient_funds": "Your card has insufficient funds.", "expired_card": "Your card has expired.",
        "incorrect_cvc": "Your card's security code is incorrect.", "processing_error": "An error occurred while processing your card. Try again in a little bit.",
        "lost_card": "Your card was declined.", "stolen_card": "Your card was declined.", "fraudulent": "Your card was declined.",
        "generic_decline": "Your card was declined.", "do_not_honor": "Your card was declined.",
        "card_velocity_exceeded": "Your card was declined for making repeated attempts too frequently or exceeding its amount limit.",
    }  # fmt: skip
    message_of = np.array([messages[c] for c in codes], dtype=object)
    message_of[0] = messages["card_declined"]
    failure_message = np.where(fc_idx >= 0, message_of[np.maximum(fc_idx, 0)], None)
    outcome_type = np.where(ch_ok, "authorized", np.where(blocked, "blocked", "issuer_declined")).astype(object)
    network = np.where(ch_ok, "approved_by_network", np.where(blocked, "not_sent_to_network", "declined_by_network")).astype(object)
    tds_result = np.where(
        tds, np.where(tds_fail, "failed", np.where(gp.random(Cn) < 0.06, "attempt_acknowledged", "authenticated")), None
    ).astype(object)
    tds_result = np.where(blocked, None, tds_result)
    ch_amount = amount_due[ch_inv]
    ch_cur = inv_cur[ch_inv]
    # ---- payment intents: one per invoice with at least one attempt
    pi_inv = np.flatnonzero(made_n > 0)
    P = len(pi_inv)
    pi_row = np.full(NI, -1, dtype=np.int64)
    pi_row[pi_inv] = np.arange(P)
    pi_ids = stripe_ids(ids, "pi_", P)
    last_ch = np.full(NI, -1, dtype=np.int64)
    np.maximum.at(last_ch, ch_inv, np.arange(Cn))  # charges are sorted by (invoice, attempt)
    pi_success = paid_now[pi_inv]
    pi_void = inv["void_at"][pi_inv] != NA
    last_fail_code = np.where(
        failure_code[last_ch[pi_inv]] == "authentication_required", "payment_intent_authentication_failure",
        failure_code[last_ch[pi_inv]],
    )  # fmt: skip
    pi_decline = np.where(fc_idx[last_ch[pi_inv]] == 1, None, decline_code[last_ch[pi_inv]]).astype(object)
    pi_status = np.where(pi_success, "succeeded", np.where(pi_void, "canceled", "requires_payment_method")).astype(object)
    pi_cust = inv["cust"][pi_inv]
    payment_intents: Frame = {
        "id": pi_ids,
        "customer_id": customers["id"][pi_cust],
        "payment_method_id": pm["id"][ch_pm[last_ch[pi_inv]]],
        "currency": _CUR_CODES[inv_cur[pi_inv]],
        "amount": amount_due[pi_inv],
        "amount_capturable": np.zeros(P, dtype=np.int64),
        "amount_received": np.where(pi_success, amount_due[pi_inv], 0),
        "status": pi_status,
        "capture_method": _objs(P, "automatic"),
        "last_payment_error_code": np.where(pi_success, None, last_fail_code),
        "last_payment_error_decline_code": np.where(pi_success, None, pi_decline),
        "cancellation_reason": np.where(pi_void, "void_invoice", None).astype(object),
        "canceled_at": np.where(pi_void, inv["void_at"][pi_inv], NA),
        "description": _objs(P),  # filled once invoice numbers exist
        "created": att_t[pi_inv, 0] - 1,
        "metadata": _objs(P, "{}"),
    }
    charges: Frame = {
        "id": stripe_ids(ids, "ch_", Cn),
        "payment_intent_id": pi_ids[pi_row[ch_inv]],
        "customer_id": customers["id"][ch_cust],
        "payment_method_id": pm["id"][ch_pm],
        "currency": _CUR_CODES[ch_cur],
        "amount": ch_amount,
        "amount_captured": np.where(ch_ok, ch_amount, 0),
        "amount_refunded": np.zeros(Cn, dtype=np.int64),
        "status": np.where(ch_ok, "succeeded", "failed").astype(object),
        "paid": ch_ok.copy(),
        "captured": ch_ok.copy(),
        "refunded": np.zeros(Cn, dtype=bool),
        "disputed": np.zeros(Cn, dtype=bool),
        "failure_code": failure_code.astype(object),
        "failure_message": failure_message,
        "outcome_type": outcome_type,
        "outcome_reason": outcome_reason,
        "outcome_network_status": network,
        "outcome_risk_level": risk,
        "outcome_risk_score": score,
        "three_d_secure_result": tds_result,
        "created": ch_t,
        "metadata": _objs(Cn, "{}"),
    }
    # ---- invoices table
    status = np.select(
        [outcome == PAID, outcome == VOIDED, (outcome == TERMINAL) & (inv["kind"] == CREATE)],
        ["paid", "void", "void"], "open",
    ).astype(object)  # fmt: skip
    # dunning that canceled the subscription marks the invoice uncollectible
    dun_cancel = (outcome == TERMINAL) & (inv["kind"] == CYCLE) & (sub["reason"][isub] == "payment_failed") & is_sub
    status[dun_cancel] = "uncollectible"
    paid_at = np.where(status == "paid", np.where(zero, inv["finalized"] + 1, succ_t + 1), NA)
    voided_at = np.where(status == "void", inv["void_at"], NA)
    amount_paid = np.where(status == "paid", amount_due, 0)
    # number: customer prefix + sequence in finalisation order
    cust_prefix = np.array([p.upper() for p in stripe_ids(ids, "", n, 8)], dtype=object)
    order = np.lexsort((inv["finalized"], inv["cust"]))
    seq = np.empty(NI, dtype=np.int64)
    seq[order] = _rank_within(inv["cust"][order]) + 1
    number = cust_prefix[inv["cust"]] + "-" + zero_padded(seq, 4)
    invoices: Frame = {
        "id": inv_ids,
        "customer_id": customers["id"][inv["cust"]],
        "subscription_id": np.where(is_sub, sub_ids[isub], None),
        "number": number,
        "status": status,
        "billing_reason": _BILLING_REASON[inv["kind"]],
        "collection_method": np.where(inv["kind"] == MANUAL, "send_invoice", "charge_automatically").astype(object),
        "currency": _CUR_CODES[inv_cur],
        "subtotal": subtotal,
        "discount_amount": disc,
        "tax": np.zeros(NI, dtype=np.int64),
        "total": total,
        "starting_balance": np.zeros(NI, dtype=np.int64),
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "amount_remaining": amount_due - amount_paid,
        "attempt_count": made_n.astype(np.int64),
        "period_start": inv["p_start"],
        "period_end": inv["p_end"],
        "due_date": np.where(inv["kind"] == MANUAL, inv["finalized"] + 30 * DAY, NA),
        "finalized_at": inv["finalized"],
        "paid_at": paid_at,
        "voided_at": voided_at,
        "created": inv["created"],
        "metadata": _objs(NI, "{}"),
    }
    payment_intents["description"] = "Payment for Invoice " + number[pi_inv]
    line_items: Frame = {
        "id": stripe_ids(ids, "il_", L),
        "invoice_id": inv_ids[lines["inv"]],
        "subscription_item_id": np.where(lines["item"] >= 0, item_ids[np.maximum(lines["item"], 0)], None),
        "price_id": cat.prices["id"][lines["price"]],
        "currency": _CUR_CODES[inv_cur[lines["inv"]]],
        "amount": lines["amount"].astype(np.int64),
        "discount_amount": line_disc,
        "quantity": lines["qty"].astype(np.int64),
        "description": lines["desc"],
        "proration": lines["proration"],
        "period_start": lines["p_start"],
        "period_end": lines["p_end"],
    }
    # ---- invoice payments: one per paid payment intent
    ip_inv = pi_inv[pi_success]
    IP = len(ip_inv)
    invoice_payments: Frame = {
        "id": stripe_ids(ids, "inpay_", IP),
        "invoice_id": inv_ids[ip_inv],
        "payment_intent_id": pi_ids[pi_row[ip_inv]],
        "currency": _CUR_CODES[inv_cur[ip_inv]],
        "amount_requested": amount_due[ip_inv],
        "amount_paid": amount_due[ip_inv],
        "status": _objs(IP, "paid"),
        "is_default": np.ones(IP, dtype=bool),
        "paid_at": succ_t[ip_inv] + 1,
        "canceled_at": _ints(IP),
        "created": succ_t[ip_inv] + 1,
    }
    # ---- refunds, disputes, balance transactions
    gr = rng(seed, "refunds", chunk)
    gd = rng(seed, "disputes", chunk)
    ok_idx = np.flatnonzero(ch_ok)
    fraud_ok = fraud_c[ok_idx]
    risk_ok = risk[ok_idx]
    p_disp = np.select([risk_ok == "highest", risk_ok == "elevated"], [C.DISPUTE_RATE["highest"], C.DISPUTE_RATE["elevated"]], C.DISPUTE_RATE["normal"])
    disputed = ~fraud_ok & (gd.random(len(ok_idx)) < p_disp)
    d_t = ch_t[ok_idx] + gd.integers(10 * DAY, 60 * DAY, len(ok_idx))
    # a fraudster's subscription: the card's owner disputes its first charge at the cut,
    # when the merchant cancels it (no later charge: see _spells)
    ch_sub = np.where(inv["sub"][ch_inv[ok_idx]] >= 0, inv["sub"][ch_inv[ok_idx]], -1)
    cut_t = np.where(ch_sub >= 0, sub["fraud_cut"][np.maximum(ch_sub, 0)], NA)
    first_of_sub = np.ones(len(ok_idx), dtype=bool)
    o = np.lexsort((ch_t[ok_idx], ch_sub))
    first_of_sub[o[1:]] = ch_sub[o][1:] != ch_sub[o][:-1]
    fraud_dispute = fraud_ok & (ch_sub >= 0) & first_of_sub & (cut_t != NA) & (cut_t > ch_t[ok_idx])
    disputed |= fraud_dispute
    d_t = np.where(fraud_dispute, cut_t, d_t)
    disputed &= d_t < horizon
    refund_p = np.where(inv["kind"][ch_inv[ok_idx]] == MANUAL, 4 * C.REFUND_SHARE, C.REFUND_SHARE)
    refunded = ~disputed & (gr.random(len(ok_idx)) < refund_p)
    r1_t = ch_t[ok_idx] + 60 + (gr.exponential(8 * DAY, len(ok_idx))).astype(np.int64)
    refunded &= r1_t < horizon
    full = gr.random(len(ok_idx)) < 0.6
    amt = ch_amount[ok_idx]
    exp_ok = _EXP[ch_cur[ok_idx]]
    part = quantize((amt * gr.integers(20, 71, len(ok_idx))) // 100, exp_ok)
    part = np.maximum(part, np.where(exp_ok == 3, 10, 1))
    part = np.minimum(part, amt)
    r1_amt = np.where(full, amt, part)
    second = refunded & ~full & (r1_amt < amt) & (gr.random(len(ok_idx)) < 0.3)
    r2_t = r1_t + 3600 + (gr.exponential(5 * DAY, len(ok_idx))).astype(np.int64)
    second &= r2_t < horizon
    r_ch = np.r_[ok_idx[refunded], ok_idx[second]]
    r_amt = np.r_[r1_amt[refunded], (amt - r1_amt)[second]]
    r_t = np.r_[r1_t[refunded], r2_t[second]]
    r_order = np.lexsort((r_t, r_ch))
    r_ch, r_amt, r_t = r_ch[r_order], r_amt[r_order], r_t[r_order]
    R = len(r_ch)
    reasons = np.array(["requested_by_customer", "duplicate", "fraudulent"], dtype=object)
    refunds: Frame = {
        "id": stripe_ids(ids, "re_", R),
        "charge_id": charges["id"][r_ch],
        "payment_intent_id": charges["payment_intent_id"][r_ch],
        "currency": charges["currency"][r_ch],
        "amount": r_amt,
        "status": _objs(R, "succeeded"),
        "reason": reasons[_choice(gr, (0.85, 0.1, 0.05), R)],
        "failure_reason": _objs(R),
        "created": r_t,
        "metadata": _objs(R, "{}"),
    }
    refunded_sum = np.bincount(r_ch, weights=r_amt, minlength=Cn).astype(np.int64)
    charges["amount_refunded"] = refunded_sum
    charges["refunded"] = (charges["amount_captured"] > 0) & (refunded_sum == charges["amount_captured"])
    # disputes
    d_ch = ok_idx[disputed]
    D = len(d_ch)
    d_created = d_t[disputed]
    d_fraud = fraud_c[d_ch]  # honest customers dispute for other reasons
    other = np.array(["product_not_received", "subscription_canceled", "unrecognized", "duplicate",
                      "general", "credit_not_processed", "product_unacceptable"], dtype=object)  # fmt: skip
    d_reason = np.where(d_fraud, "fraudulent", other[_choice(gd, (0.25, 0.25, 0.2, 0.08, 0.1, 0.07, 0.05), D)]).astype(object)
    due = d_created + 21 * DAY
    review_t = d_created + gd.integers(2 * DAY, 18 * DAY, D)
    close_t = review_t + gd.integers(20 * DAY, 60 * DAY, D)
    won = gd.random(D) < np.where(d_fraud, C.DISPUTE_WIN_RATE["fraudulent"], C.DISPUTE_WIN_RATE["other"])
    d_status = np.where(
        close_t < horizon, np.where(won, "won", "lost"), np.where(review_t < horizon, "under_review", "needs_response")
    ).astype(object)
    disputes: Frame = {
        "id": stripe_ids(ids, "dp_", D),
        "charge_id": charges["id"][d_ch],
        "payment_intent_id": charges["payment_intent_id"][d_ch],
        "currency": charges["currency"][d_ch],
        "amount": ch_amount[d_ch],
        "status": d_status,
        "reason": d_reason,
        "evidence_due_by": due,
        "is_charge_refundable": np.zeros(D, dtype=bool),
        "created": d_created,
        "metadata": _objs(D, "{}"),
    }
    charges["disputed"][d_ch] = True
    # balance transactions: charges, refunds, dispute withdrawals and reinstatements
    fx_day = fx["rate_date"]
    fx_first = int(fx_day.min())
    n_days = int(fx_day.max()) - fx_first + 1
    rate_tab = np.zeros((len(C.CURRENCIES), n_days), dtype=np.int64)
    cur_idx = np.array([_CUR_INDEX[c] for c in fx["currency"]], dtype=np.int64)
    rate_tab[cur_idx, fx_day - fx_first] = fx["usd_per_unit"]

    def rate(cur: np.ndarray, t: np.ndarray) -> np.ndarray:
        return rate_tab[cur, t // DAY - fx_first]

    usd = _CUR_INDEX["usd"]
    bt_parts = []
    # charges
    oc = ok_idx
    r = rate(ch_cur[oc], ch_t[oc])
    gross = convert_minor(ch_amount[oc], _EXP[ch_cur[oc]], r)
    intl_oc = intl[oc]
    conv = ch_cur[oc] != usd
    fee0 = per_mille(gross, C.FEE_PERCENT_PER_MILLE) + C.FEE_FIXED_USD_CENTS
    fee1 = np.where(intl_oc, per_mille(gross, C.INTERNATIONAL_FEE_PER_MILLE), 0)
    fee2 = np.where(conv, per_mille(gross, C.CONVERSION_FEE_PER_MILLE), 0)
    bt_parts.append({"kind": _ints(len(oc), 0), "src": oc, "t": ch_t[oc], "amount": gross, "f0": fee0, "f1": fee1, "f2": fee2,
                     "rate": np.where(conv, r, NA), "avail": ch_t[oc] + C.PAYOUT_DELAY_DAYS * DAY})  # fmt: skip
    # A refund settles at its charge's rate, as the difference of the converted cumulative
    # refunded amounts: the refunds of a charge add up to minus its settled amount exactly
    # (the day's rate at refund time made a full refund of a BRL charge settle off its charge).
    rc = ch_cur[r_ch]
    r = rate(rc, ch_t[r_ch])
    done = np.cumsum(r_amt) - r_amt
    first_of_charge = np.r_[True, r_ch[1:] != r_ch[:-1]] if R else np.zeros(0, dtype=bool)
    before = done - np.maximum.accumulate(np.where(first_of_charge, done, 0)) if R else done
    ramt = -(convert_minor(before + r_amt, _EXP[rc], r) - convert_minor(before, _EXP[rc], r))
    z = np.zeros(R, dtype=np.int64)
    bt_parts.append({"kind": _ints(R, 1), "src": np.arange(R), "t": r_t, "amount": ramt, "f0": z, "f1": z, "f2": z,
                     "rate": np.where(rc != usd, r, NA), "avail": r_t})  # fmt: skip
    dc = ch_cur[d_ch]
    r = rate(dc, d_created)
    damt = -convert_minor(ch_amount[d_ch], _EXP[dc], r)
    zd = np.zeros(D, dtype=np.int64)
    bt_parts.append({"kind": _ints(D, 2), "src": np.arange(D), "t": d_created, "amount": damt,
                     "f0": np.full(D, C.DISPUTE_FEE_USD_CENTS, dtype=np.int64), "f1": zd, "f2": zd,
                     "rate": np.where(dc != usd, r, NA), "avail": d_created})  # fmt: skip
    wi = np.flatnonzero(d_status == "won")
    r = rate(dc[wi], close_t[wi])
    bt_parts.append({"kind": _ints(len(wi), 3), "src": wi, "t": close_t[wi],
                     "amount": convert_minor(ch_amount[d_ch[wi]], _EXP[dc[wi]], r), "f0": zd[wi], "f1": zd[wi], "f2": zd[wi],
                     "rate": np.where(dc[wi] != usd, r, NA), "avail": close_t[wi]})  # fmt: skip
    bt = _cat(*bt_parts)
    B = len(bt["kind"])
    fee = bt["f0"] + bt["f1"] + bt["f2"]
    bt_ids = stripe_ids(ids, "txn_", B)
    kind = bt["kind"]
    balance_transactions: Frame = {
        "id": bt_ids,
        "type": np.array(["charge", "refund", "adjustment", "adjustment"], dtype=object)[kind],
        "reporting_category": np.array(["charge", "refund", "dispute", "dispute_reversal"], dtype=object)[kind],
        "amount": bt["amount"],
        "fee": fee,
        "net": bt["amount"] - fee,
        "currency": _objs(B, C.SETTLEMENT_CURRENCY),
        "exchange_rate": bt["rate"],
        "status": np.where(bt["avail"] <= horizon, "available", "pending").astype(object),
        "available_on": bt["avail"],
        "description": np.array(["Payment", "REFUND FOR CHARGE", "Chargeback withdrawal", "Chargeback reversal"], dtype=object)[kind],
        "charge_id": np.where(kind == 0, charges["id"][np.where(kind == 0, bt["src"], 0)] if Cn else None, None),
        "refund_id": np.where(kind == 1, refunds["id"][np.where(kind == 1, bt["src"], 0)] if R else None, None),
        "dispute_id": np.where(kind >= 2, disputes["id"][np.where(kind >= 2, bt["src"], 0)] if D else None, None),
        "source_payout_id": _objs(B),
        "payout_id": _objs(B),  # stamped by the account's payout schedule (synthetic.payouts)
        "created": bt["t"],
    }
    # fee details: one line per non-zero fee component
    fd_parts = []
    for line, (col, desc) in enumerate((("f0", None), ("f1", "International card fee"), ("f2", "Currency conversion fee"))):
        m = bt[col] > 0
        base_desc = np.where(kind[m] == 2, "Dispute fee", "Stripe processing fees") if desc is None else np.full(int(m.sum()), desc, dtype=object)
        fd_parts.append({
            "balance_transaction_id": bt_ids[m], "line": np.full(int(m.sum()), line, dtype=np.int64),
            "type": _objs(int(m.sum()), "stripe_fee"), "amount": bt[col][m],
            "currency": _objs(int(m.sum()), C.SETTLEMENT_CURRENCY), "description": np.asarray(base_desc, dtype=object),
        })  # fmt: skip
    fee_details = _cat(*fd_parts)
    # renumber lines 0.. per balance transaction (a missing international fee leaves no gap)
    o = np.lexsort((fee_details["line"], fee_details["balance_transaction_id"]))
    fee_details = {k: v[o] for k, v in fee_details.items()}
    fee_details["line"] = _rank_within(fee_details["balance_transaction_id"])
    # ---- customers: delinquent when their latest invoice failed and is unpaid
    inv_failed = (made_n > 0) & ~paid_now & (status != "void")
    last_inv = np.full(n, -1, dtype=np.int64)
    o = np.lexsort((inv["created"], inv["cust"]))
    oc = inv["cust"][o]
    is_last = np.r_[oc[1:] != oc[:-1], True] if NI else np.zeros(0, bool)
    last_inv[oc[is_last]] = o[is_last]
    has_inv = last_inv >= 0
    customers["delinquent"] = has_inv & (inv_failed[np.maximum(last_inv, 0)] if NI else False)

    tables = {
        "customers": customers,
        "customer_addresses": addresses,
        "payment_methods": pm,
        "subscriptions": subscriptions,
        "subscription_items": items,
        "discounts": discounts,
        "invoices": invoices,
        "invoice_line_items": line_items,
        "payment_intents": payment_intents,
        "invoice_payments": invoice_payments,
        "charges": charges,
        "refunds": refunds,
        "disputes": disputes,
        "balance_transactions": balance_transactions,
        "balance_transaction_fee_details": fee_details,
    }
    ctx = dict(
        sub=sub, per=per, inv=inv, inv_status=status, made=made, att_t=att_t, attempts=attempts,
        paid_now=paid_now, succ_t=succ_t, zero=zero, pi_inv=pi_inv, pi_row=pi_row, ch_inv=ch_inv, ch_j=ch_j,
        ch_ok=ch_ok, tds=tds_result, r_ch=r_ch, d_ch=d_ch, review_t=review_t, close_t=close_t,
        pm_owner=pm_owner, pm_detached=pm_detached, pm_detach_t=pm_detach_t, first_billed=first_billed,
        pm_update_t=pm_update_t, pm_old_exp_year=pm_old_exp_year,
        item_sub=item_sub, metered_item=metered_item, billed=billed, inv_failed=inv_failed,
        last_inv=last_inv, bt_kind=kind, bt_src=bt["src"], horizon=horizon, cat=cat,
    )  # fmt: skip
    latent.update({"sub_cust": sub["cust"], "sub_start": sub["start"], "sub_end": sub["ended_at"],
                   "sub_tier": sub["tier"], "sub_status": sub["status"], "sub_reason": sub["reason"],
                   "sub_canceled_at": sub["canceled_at"], "sub_change_kind": np.where(sub["change"], sub["change_kind"], -1),
                   "sub_t_change": sub["t_change"]})  # fmt: skip
    return ChunkResult(tables, [], {**latent, "_ctx": ctx})  # type: ignore[dict-item]
