"""Automatic payouts: Stripe's default daily schedule over the whole account.

Payouts are a fact about the account, not about one cohort of customers: every day's
payout sweeps what became available across all cohorts. :func:`payout_schedule` is
therefore computed once, from the ``available_on`` and ``net`` of every balance
transaction the cohorts made (:class:`PayoutSchedule`), and each cohort's balance
transactions are then stamped with the payout that settled them
(:meth:`PayoutSchedule.payout_of`).

The schedule, per settlement currency:

* A payout run happens at 00:00 UTC every day of the window. It sweeps every balance
  transaction whose ``available_on`` is after the previous run and not after this one.
* If what has been swept since the last payout is positive, a payout of that amount is
  created (``automatic``, ``standard``) with its own balance transaction (type
  ``payout``, the negative amount); it arrives the next business day. If it is zero or
  negative (a day of refunds and disputes only), nothing is paid out and the swept
  transactions wait for the next payout, as Stripe carries a negative balance forward.
* A small share (:data:`config.PAYOUT_FAILURE_SHARE`) fails at its arrival date with a
  bank failure code; a ``payout_failure`` balance transaction (positive, reporting
  category ``payout_reversal``) returns the funds, and the next run sweeps them into a
  later payout: the retry.

So for every payout, ``-(its own balance transaction's amount)`` equals the sum of the
``net`` of the balance transactions whose ``payout_id`` is that payout, its own one
aside (the payout invariant of :mod:`paymodel.oltp.invariants`).

Example:
    >>> import numpy as np
    >>> day = 86_400
    >>> avail, usd = np.array([day // 2, day + 5, 2 * day]), np.array(["usd"] * 3, dtype=object)
    >>> s = payout_schedule(0, avail, np.array([-300, 1000, 50]), usd, start=0, horizon=5 * day)
    >>> s.payouts["amount"].tolist(), s.payouts["created"].tolist() == [2 * day]
    ([750], True)
    >>> s.payout_of(avail, usd).tolist() == [s.payouts["id"][0]] * 3
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paymodel.synthetic import config as C
from paymodel.synthetic.catalog import Frame
from paymodel.synthetic.primitives import DAY, NA, rng, stripe_ids

__all__ = ["PayoutSchedule", "payout_schedule"]

_FAILURES = (
    ("account_closed", "The bank account has been closed."),
    ("no_account", "The bank account details on file are probably incorrect."),
    ("insufficient_funds", "Your Stripe account has insufficient funds to cover the payout."),
    ("could_not_process", "The bank could not process this payout."),
)


def _arrival(created: np.ndarray) -> np.ndarray:
    """The next business day after ``created`` (standard payouts do not arrive at weekends)."""
    t = created + DAY
    weekday = (t // DAY + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    return t + np.where(weekday == 5, 2 * DAY, np.where(weekday == 6, DAY, 0))


@dataclass
class PayoutSchedule:
    """The account's payouts and the balance transactions they make.

    Attributes:
        payouts: the ``payouts`` frame.
        transactions: the payouts' own balance transactions (type ``payout`` and
            ``payout_failure``), a ``balance_transactions`` frame.
        run_payout: per currency, per daily run, the index of the payout that sweeps what
            became available at that run (``-1``: none before the horizon).
    """

    payouts: Frame
    transactions: Frame
    start: int
    currencies: tuple[str, ...]
    run_payout: np.ndarray

    def payout_of(self, available_on: np.ndarray, currency: np.ndarray) -> np.ndarray:
        """The id of the payout that settles each balance transaction (``None``: not yet)."""
        run = _run_of(available_on, self.start)
        cur = np.array([self.currencies.index(c) for c in currency], dtype=np.int64)
        n_runs = self.run_payout.shape[1]
        inside = run < n_runs
        idx = np.where(inside, self.run_payout[cur, np.minimum(run, n_runs - 1)], -1)
        ids = np.asarray(self.payouts["id"], dtype=object)
        return np.where(idx >= 0, ids[np.maximum(idx, 0)] if len(ids) else None, None)

    def created_of(self, payout_ids: np.ndarray) -> np.ndarray:
        """When each payout was created (``NA`` for ``None``)."""
        pos = {p: i for i, p in enumerate(self.payouts["id"].tolist())}
        created = self.payouts["created"]
        return np.array([NA if p is None else int(created[pos[p]]) for p in payout_ids], dtype=np.int64)


def _run_of(t: np.ndarray, start: int) -> np.ndarray:
    """The daily run (0 = the first day's midnight) that sweeps an instant: the first at or after it."""
    return np.maximum(-((start - np.asarray(t, dtype=np.int64)) // DAY), 0)


def payout_schedule(
    seed: int,
    available_on: np.ndarray,
    net: np.ndarray,
    currency: np.ndarray,
    *,
    start: int,
    horizon: int,
) -> PayoutSchedule:
    """Daily automatic payouts of the account's balance transactions (see the module).

    Args:
        seed: the run's seed (failures are drawn from their own stream).
        available_on, net, currency: every balance transaction of every cohort.
        start: midnight UTC of the first simulated day (the first run).
        horizon: end of the window: no run, arrival or failure at or after it.
    """
    gen = rng(seed, "payouts")
    n_runs = max(int(-((start - horizon) // DAY)), 0)
    run_t = start + np.arange(n_runs, dtype=np.int64) * DAY
    currencies = tuple(sorted(set(np.asarray(currency, dtype=object).tolist()) or {C.SETTLEMENT_CURRENCY}))
    run = _run_of(available_on, start)
    fail_draw = gen.random((len(currencies), n_runs))
    code_draw = gen.integers(0, len(_FAILURES), (len(currencies), n_runs))
    run_payout = np.full((len(currencies), n_runs), -1, dtype=np.int64)
    rows: list[tuple[int, int, int, int, int, int]] = []  # currency, run, amount, arrival, failed_at, code
    for ci, cur in enumerate(currencies):
        m = (np.asarray(currency, dtype=object) == cur) & (run < n_runs)
        swept = np.zeros(n_runs, dtype=np.int64)
        np.add.at(swept, run[m], np.asarray(net, dtype=np.int64)[m])  # exact integer sums
        returned = np.zeros(n_runs, dtype=np.int64)
        open_amount = 0
        waiting: list[int] = []
        for r in range(n_runs):
            open_amount += int(swept[r]) + int(returned[r])
            waiting.append(r)
            if open_amount <= 0:
                continue
            arrival = int(_arrival(np.array([run_t[r]]))[0])
            failed = fail_draw[ci, r] < C.PAYOUT_FAILURE_SHARE and arrival < horizon
            index = len(rows)
            rows.append((ci, r, open_amount, arrival, arrival if failed else NA, int(code_draw[ci, r])))
            run_payout[ci, waiting] = index
            if failed:
                back = int(_run_of(np.array([arrival]), start)[0])
                if back < n_runs:
                    returned[back] += open_amount
            open_amount = 0
            waiting = []
    n = len(rows)
    cols = np.array(rows, dtype=np.int64).reshape(n, 6)
    cur_codes = np.array(currencies, dtype=object)
    created = run_t[cols[:, 1]] if n else np.zeros(0, np.int64)
    amount, arrival, failed_at, code = cols[:, 2], cols[:, 3], cols[:, 4], cols[:, 5]
    failed = failed_at != NA
    arrived = arrival < horizon
    ids = stripe_ids(gen, "po_", n)
    codes = np.array([f[0] for f in _FAILURES], dtype=object)
    messages = np.array([f[1] for f in _FAILURES], dtype=object)
    payouts: Frame = {
        "id": ids,
        "amount": amount.copy(),
        "currency": cur_codes[cols[:, 0]] if n else np.zeros(0, object),
        "status": np.where(failed, "failed", np.where(arrived, "paid", "pending")).astype(object),
        "arrival_date": arrival.copy(),
        "method": np.full(n, "standard", dtype=object),
        "automatic": np.ones(n, dtype=bool),
        "failure_code": np.where(failed, codes[code], None).astype(object),
        "failure_message": np.where(failed, messages[code], None).astype(object),
        "description": np.full(n, "STRIPE PAYOUT", dtype=object),
        "created": created.copy(),
        "metadata": np.full(n, "{}", dtype=object),
    }
    # own balance transactions: the payout (negative), and the return of a failed one
    fi = np.flatnonzero(failed)
    t_own = np.r_[created, failed_at[fi]]
    kind = np.r_[np.zeros(n, np.int64), np.ones(len(fi), np.int64)]
    src = np.r_[np.arange(n), fi]
    amt = np.r_[-amount, amount[fi]]
    bt_ids = stripe_ids(gen, "txn_", len(src))
    cur_of = payouts["currency"][src] if len(src) else np.zeros(0, object)
    schedule = PayoutSchedule(payouts, {}, start, currencies, run_payout)
    settled_by = schedule.payout_of(t_own, cur_of) if len(src) else np.zeros(0, object)
    # a payout's own transaction belongs to it; a failure's return to the payout that retries it
    settled_by = np.where(kind == 0, ids[src] if n else None, settled_by)
    schedule.transactions = {
        "id": bt_ids,
        "type": np.array(["payout", "payout_failure"], dtype=object)[kind],
        "reporting_category": np.array(["payout", "payout_reversal"], dtype=object)[kind],
        "amount": amt,
        "fee": np.zeros(len(src), dtype=np.int64),
        "net": amt.copy(),
        "currency": cur_of,
        "exchange_rate": np.full(len(src), NA, dtype=np.int64),
        "status": np.where(t_own <= horizon, "available", "pending").astype(object),
        "available_on": t_own,
        "description": np.array(["STRIPE PAYOUT", "Payout failure"], dtype=object)[kind],
        "charge_id": np.full(len(src), None, dtype=object),
        "refund_id": np.full(len(src), None, dtype=object),
        "dispute_id": np.full(len(src), None, dtype=object),
        "source_payout_id": ids[src] if n else np.zeros(0, object),
        "payout_id": settled_by.astype(object),
        "created": t_own.copy(),
    }
    return schedule
