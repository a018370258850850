"""Inputs of the document layer: product clickstream and customer feedback, as JSON Lines.

Two files under ``documents/``, one JSON object per line, written cohort by cohort:

``behaviour_events.jsonl`` (one line per clickstream event)::

    {"event_id": "bev_...", "customer_id": "cus_...", "session_id": "sess_...",
     "timestamp": "2024-03-05T14:02:11Z", "event": "feature_used", "page": "/reports",
     "properties": {"device": "desktop", "browser": "firefox", "plan": "team",
                    "duration_ms": 5400, "feature": "scheduled_reports"}}

``feedback.jsonl`` (one line per piece of feedback)::

    {"feedback_id": "fb_...", "customer_id": "cus_...", "created": "2024-05-01T09:00:00Z",
     "channel": "nps_survey" | "cancellation_survey" | "support_ticket",
     "rating": 0-10 for nps_survey, 1-5 otherwise, "rating_scale": "0-10" | "1-5",
     "topic": "pricing" | "missing_feature" | "billing" | "reliability" | "support" | "praise" | ...,
     "text": "...", "locale": "en"}

How they relate to the tables (so a later layer can join and explain):

* Sessions happen while a customer has an account: between sign-up and the end of
  their last subscription (or the horizon). Engaged customers (the latent trait that
  also lowers churn) have more sessions and more events per session.
* A customer who cancels has a session shortly before the cancellation with a
  ``cancel_flow_started`` event on ``/billing/cancel``; an upgrade or seat increase is
  preceded by ``upgrade_clicked`` on ``/pricing``.
* Every voluntary cancellation leaves a ``cancellation_survey`` with a low rating; a
  subscription ended by failed payments leaves a ``support_ticket`` about billing;
  NPS answers rise with engagement.

Texts are English, assembled from templates (no language model, no download).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from paymodel.safe_write import make_dir, open_for_writing
from paymodel.synthetic import config as C
from paymodel.synthetic.lifecycle import ChunkResult
from paymodel.synthetic.primitives import DAY, HOUR, NA, rng, stripe_ids

__all__ = ["FEEDBACK_CHANNELS", "PAGES", "DocumentWriter"]

PAGES = {
    "page_view": ("/dashboard", "/reports", "/settings", "/team", "/billing", "/docs", "/integrations"),
    "feature_used": ("/reports", "/dashboard", "/integrations"),
    "report_exported": ("/reports",),
    "invite_sent": ("/team",),
    "search": ("/dashboard", "/docs"),
    "settings_changed": ("/settings",),
    "billing_viewed": ("/billing",),
    "upgrade_clicked": ("/pricing",),
    "cancel_flow_started": ("/billing/cancel",),
}
"""Event names and the pages they happen on."""
_ORDINARY = ("page_view", "feature_used", "report_exported", "invite_sent", "search",
             "settings_changed", "billing_viewed")  # fmt: skip
_ORDINARY_W = (0.42, 0.25, 0.08, 0.05, 0.1, 0.05, 0.05)
_FEATURES = ("scheduled_reports", "csv_export", "dashboards", "alerts", "api_keys", "sso")
_DEVICES = ("desktop", "mobile", "tablet")
_BROWSERS = ("chrome", "safari", "firefox", "edge")
FEEDBACK_CHANNELS = ("nps_survey", "cancellation_survey", "support_ticket")

_TEXTS = {
    ("nps_survey", "praise"): (
        "Reports save me hours every week. Keep it up!",
        "The dashboards are exactly what our team needed.",
        "Great product, setup took five minutes.",
        "Support answered within the hour, really impressed.",
    ),
    ("nps_survey", "missing_feature"): (
        "Good overall, but I miss an export to Google Sheets.",
        "Please add SSO on the Team plan.",
        "It works, but we need more granular roles.",
    ),
    ("nps_survey", "pricing"): (
        "Useful, but the per-seat price adds up quickly for us.",
        "Too expensive for a small team.",
    ),
    ("nps_survey", "reliability"): (
        "The dashboard was slow several times this month.",
        "Reports sometimes fail to load and I have to refresh.",
    ),
    ("cancellation_survey", "pricing"): (
        "Canceling because it is too expensive for what we use.",
        "Budget cuts, we cannot justify the cost right now.",
    ),
    ("cancellation_survey", "missing_feature"): (
        "We need integrations you do not offer yet.",
        "Switching to a tool that has the reporting features we need.",
    ),
    ("cancellation_survey", "not_needed"): (
        "The project ended, we no longer need it.",
        "We were only evaluating; not the right time for us.",
    ),
    ("cancellation_survey", "competitor"): (
        "Moving to a competitor that bundles this with our CRM.",
        "Found a cheaper alternative.",
    ),
    ("support_ticket", "billing"): (
        "My card was declined but I have funds, can you retry the payment?",
        "Why was my subscription canceled? I updated my card.",
        "I was charged but my invoice still shows as open.",
    ),
    ("support_ticket", "support"): (
        "How do I add a teammate to my workspace?",
        "The export button does nothing in Safari.",
        "Can I change the billing email on my account?",
    ),
}


def _iso(ts: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(ts.astype("datetime64[s]"), unit="s"), "Z").astype(object)


def _texts(gen: np.random.Generator, channel: str, topics: np.ndarray) -> np.ndarray:
    out = np.empty(len(topics), dtype=object)
    for topic in np.unique(topics):
        m = topics == topic
        pool = np.array(_TEXTS[(channel, str(topic))], dtype=object)
        out[m] = pool[gen.integers(0, len(pool), int(m.sum()))]
    return out


def behaviour_events(seed: int, chunk: int, result: ChunkResult, horizon: int) -> dict[str, np.ndarray]:
    """Clickstream of one cohort, as columns (one row per event, sorted by customer, time)."""
    g = rng(seed, "documents", chunk)
    lat = result.latent
    cust = result.tables["customers"]
    n = len(cust["id"])
    created = cust["created"]
    # active window: sign-up -> end of the last subscription (horizon if one is live)
    end = np.where(lat["subscriber"], created + 14 * DAY, created + 7 * DAY)
    sub_end = np.where(lat["sub_end"] == NA, horizon, lat["sub_end"])
    np.maximum.at(end, lat["sub_cust"], sub_end)
    end = np.minimum(end, horizon)
    e = lat["engagement"]
    weeks = np.maximum(end - created, HOUR) / (7 * DAY)
    n_sessions = g.poisson(0.15 + 0.9 * e * weeks)
    s_cust = np.repeat(np.arange(n), n_sessions)
    s_start = created[s_cust] + (g.random(len(s_cust)) * (end[s_cust] - created[s_cust])).astype(np.int64)
    # signal sessions: before cancellations and before upgrades
    canc = np.flatnonzero((lat["sub_reason"] == "cancellation_requested") & (lat["sub_canceled_at"] != NA))
    up = np.flatnonzero(np.isin(lat["sub_change_kind"], (0, 2)))
    sig_cust = np.r_[lat["sub_cust"][canc], lat["sub_cust"][up]]
    sig_t = np.r_[lat["sub_canceled_at"][canc] - g.integers(60, 2 * HOUR, len(canc)),
                  lat["sub_t_change"][up] - g.integers(60, 2 * HOUR, len(up))]  # fmt: skip
    sig_event = np.r_[np.full(len(canc), "cancel_flow_started", dtype=object),
                      np.full(len(up), "upgrade_clicked", dtype=object)]  # fmt: skip
    n_s = len(s_cust)
    all_cust = np.r_[s_cust, sig_cust]
    all_start = np.r_[s_start, sig_t]
    n_all = len(all_cust)
    n_ev = 1 + g.poisson(1.0 + 4.0 * e[all_cust])
    n_ev[n_s:] = np.maximum(n_ev[n_s:], 2)
    session_ids = stripe_ids(g, "sess_", n_all, 16)
    device = np.array(_DEVICES, dtype=object)[g.choice(3, n_all, p=(0.68, 0.27, 0.05))]
    browser = np.array(_BROWSERS, dtype=object)[g.choice(4, n_all, p=(0.6, 0.2, 0.12, 0.08))]
    ev_s = np.repeat(np.arange(n_all), n_ev)
    first = np.r_[0, np.cumsum(n_ev)[:-1]]
    pos = np.arange(len(ev_s)) - first[ev_s]
    gaps = g.exponential(45.0, len(ev_s)).astype(np.int64) + 1
    gaps[pos == 0] = 0
    csum = np.cumsum(gaps)
    ts = all_start[ev_s] + csum - csum[first[ev_s]]
    name = np.array(_ORDINARY, dtype=object)[g.choice(len(_ORDINARY), len(ev_s), p=_ORDINARY_W)]
    name[pos == 0] = "page_view"
    last = pos == n_ev[ev_s] - 1
    is_sig = ev_s >= n_s
    name[is_sig & last] = sig_event[ev_s[is_sig & last] - n_s]
    page = np.empty(len(ev_s), dtype=object)
    for ev_name, pages in PAGES.items():
        m = name == ev_name
        page[m] = np.array(pages, dtype=object)[g.integers(0, len(pages), int(m.sum()))]
    feature = np.where(name == "feature_used", np.array(_FEATURES, dtype=object)[g.integers(0, len(_FEATURES), len(ev_s))], None)
    # the plan at the time: the tier of the customer's latest subscription started before
    tier_names = np.array(C.TIERS, dtype=object)
    plan = np.full(n, None, dtype=object)
    plan[lat["sub_cust"]] = tier_names[lat["sub_tier"]]
    keep = ts < horizon
    return {
        "event_id": stripe_ids(g, "bev_", len(ev_s), 16)[keep],
        "customer_id": cust["id"][all_cust[ev_s]][keep],
        "session_id": session_ids[ev_s][keep],
        "timestamp": ts[keep],
        "event": name[keep],
        "page": page[keep],
        "device": device[ev_s][keep],
        "browser": browser[ev_s][keep],
        "plan": plan[all_cust[ev_s]][keep],
        "duration_ms": (g.exponential(4000, len(ev_s)).astype(np.int64) + 200)[keep],
        "feature": feature[keep],
    }


def feedback(seed: int, chunk: int, result: ChunkResult, horizon: int) -> dict[str, np.ndarray]:
    """Feedback of one cohort: NPS answers, cancellation surveys, support tickets."""
    g = rng(seed, "documents", 10**6 + chunk)
    lat = result.latent
    cust = result.tables["customers"]
    n = len(cust["id"])
    e = lat["engagement"]
    parts = []
    # NPS: a third of customers answer once, some twice; the score rises with engagement
    k = (g.random(n) < 0.35).astype(np.int64) + (g.random(n) < 0.1)
    c = np.repeat(np.arange(n), k)
    t = cust["created"][c] + g.integers(7 * DAY, 400 * DAY, len(c))
    score = np.clip(np.round(g.normal(0.5 + 9.5 * e[c], 1.3)), 0, 10).astype(np.int64)
    topic = np.where(score >= 9, "praise", np.where(score >= 7, "missing_feature",
                     np.where(g.random(len(c)) < 0.5, "pricing", "reliability"))).astype(object)  # fmt: skip
    parts.append(("nps_survey", c, t, score, topic, "0-10"))
    # cancellation surveys
    canc = np.flatnonzero((lat["sub_reason"] == "cancellation_requested") & (lat["sub_canceled_at"] != NA))
    c = lat["sub_cust"][canc]
    t = lat["sub_canceled_at"][canc] + g.integers(10, HOUR, len(canc))
    score = np.clip(np.round(g.normal(1.5 + 2.5 * e[c], 0.8)), 1, 5).astype(np.int64)
    topics = np.array(["pricing", "missing_feature", "not_needed", "competitor"], dtype=object)
    topic = topics[g.choice(4, len(c), p=(0.35, 0.25, 0.25, 0.15))]
    parts.append(("cancellation_survey", c, t, score, topic, "1-5"))
    # support tickets: billing after failed payments, how-to questions otherwise
    dunned = np.flatnonzero(np.isin(lat["sub_status"], ("unpaid", "past_due")) | (lat["sub_reason"] == "payment_failed"))
    c_b = lat["sub_cust"][dunned]
    t_b = np.where(lat["sub_end"][dunned] != NA, lat["sub_end"][dunned], horizon - DAY) - g.integers(HOUR, 5 * DAY, len(dunned))
    asks = np.flatnonzero(g.random(n) < 0.12)
    t_a = cust["created"][asks] + g.integers(DAY, 300 * DAY, len(asks))
    c = np.r_[c_b, asks]
    t = np.r_[t_b, t_a]
    score = np.clip(np.round(g.normal(np.r_[np.full(len(c_b), 2.0), np.full(len(asks), 4.0)], 0.8)), 1, 5).astype(np.int64)
    topic = np.r_[np.full(len(c_b), "billing", dtype=object), np.full(len(asks), "support", dtype=object)]
    parts.append(("support_ticket", c, t, score, topic, "1-5"))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "created", "channel", "rating", "scale", "topic", "text")}
    for channel, c, t, score, topic, scale in parts:
        ok = (t < horizon) & (t > cust["created"][c])
        cols["customer"].append(c[ok])
        cols["created"].append(t[ok])
        cols["channel"].append(np.full(int(ok.sum()), channel, dtype=object))
        cols["rating"].append(score[ok])
        cols["scale"].append(np.full(int(ok.sum()), scale, dtype=object))
        cols["topic"].append(topic[ok])
        cols["text"].append(_texts(g, channel, topic[ok]))
    out = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.lexsort((out["created"], out["customer"]))
    out = {k: v[order] for k, v in out.items()}
    m = len(out["customer"])
    return {
        "feedback_id": stripe_ids(g, "fb_", m, 16),
        "customer_id": cust["id"][out["customer"]],
        "created": out["created"],
        "channel": out["channel"],
        "rating": out["rating"],
        "rating_scale": out["scale"],
        "topic": out["topic"],
        "text": out["text"],
        "locale": cust["preferred_locale"][out["customer"]],
    }


class DocumentWriter:
    """Appends each cohort's documents to ``documents/*.jsonl``."""

    def __init__(self, out_dir: Path, seed: int, horizon: int) -> None:
        self.dir = make_dir(out_dir / "documents")
        self.seed = seed
        self.horizon = horizon
        self.paths = {
            "behaviour_events": [self.dir / "behaviour_events.jsonl"],
            "feedback": [self.dir / "feedback.jsonl"],
        }
        self.counts = {"behaviour_events": 0, "feedback": 0}
        for p in self.paths.values():
            open_for_writing(p[0]).close()

    def chunk(self, chunk: int, result: ChunkResult) -> None:
        """Write the documents of one cohort."""
        ev = {k: v.tolist() for k, v in behaviour_events(self.seed, chunk, result, self.horizon).items()}
        stamp = _iso(np.asarray(ev["timestamp"], dtype=np.int64)).tolist()
        with open_for_writing(self.paths["behaviour_events"][0], append=True) as f:
            for i in range(len(stamp)):
                props = {"device": ev["device"][i], "browser": ev["browser"][i], "plan": ev["plan"][i],
                         "duration_ms": ev["duration_ms"][i]}  # fmt: skip
                if ev["feature"][i] is not None:
                    props["feature"] = ev["feature"][i]
                f.write(orjson.dumps({
                    "event_id": ev["event_id"][i], "customer_id": ev["customer_id"][i],
                    "session_id": ev["session_id"][i], "timestamp": stamp[i], "event": ev["event"][i],
                    "page": ev["page"][i], "properties": props,
                }) + b"\n")  # fmt: skip
        self.counts["behaviour_events"] += len(stamp)
        fb = {k: v.tolist() for k, v in feedback(self.seed, chunk, result, self.horizon).items()}
        stamp = _iso(np.asarray(fb["created"], dtype=np.int64)).tolist()
        with open_for_writing(self.paths["feedback"][0], append=True) as f:
            for i in range(len(stamp)):
                f.write(orjson.dumps({
                    "feedback_id": fb["feedback_id"][i], "customer_id": fb["customer_id"][i],
                    "created": stamp[i], "channel": fb["channel"][i], "rating": fb["rating"][i],
                    "rating_scale": fb["rating_scale"][i], "topic": fb["topic"][i],
                    "text": fb["text"][i], "locale": fb["locale"][i],
                }) + b"\n")  # fmt: skip
        self.counts["feedback"] += len(stamp)

    def finish(self) -> dict[str, int]:
        """Rows written per document file."""
        return dict(self.counts)
