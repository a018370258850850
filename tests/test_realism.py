"""The generated account behaves like a real one, over several seeds (paymodel.synthetic.realism).

At scale 0.1 (about 1,000 customers over 24 months, some 5,000 succeeded charges) every
measure lands in its range for each seed: no charge succeeds on an expired card and
expired cards decline with ``expired_card``; disputes are 0.2%-0.75% of succeeded
charges, nobody is charged after a lost fraud dispute and repeat disputers are rare;
failed payments end 15-40% of the cancellations of paying subscriptions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paymodel.synthetic import generate
from paymodel.synthetic.realism import MEASURES, measure, out_of_range, parquet_views

SEEDS = (0, 1, 2, 3)
SCALE = 0.1


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def account(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp(f"realism-{request.param}")
    generate(out, scale=SCALE, seed=request.param, progress=False, events=False, documents=False)
    engine = parquet_views(out)
    values = measure(engine)
    with engine.connect() as conn:
        values["_succeeded"] = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM charges WHERE status = 'succeeded'"
        ).scalar_one()
    engine.dispose()
    return values


def test_every_measure_is_in_its_range(account: dict) -> None:
    assert account["_succeeded"] > 3000  # a scale where a rate of 0.2% rests on cases
    assert out_of_range(account) == {}


def test_the_ranges_are_the_issue_s(account: dict) -> None:
    """The ranges themselves: a loosened range would make the test above meaningless."""
    ranges = {m.name: (m.low, m.high) for m in MEASURES}
    assert ranges["dispute_rate"] == (0.002, 0.0075)
    assert ranges["failed_payment_cancellation_share"] == (0.15, 0.40)
    assert ranges["charges_succeeded_after_card_expiry"] == (0, 0)
    assert ranges["charges_after_lost_fraud_dispute"] == (0, 0)
    assert account["expired_card_declines"] > 10  # cards do expire and decline


def test_the_measures_catch_what_they_claim(tmp_path: Path) -> None:
    """A planted succeeded charge on an expired card is counted."""
    generate(tmp_path, scale=0.02, seed=5, months=12, progress=False, events=False, documents=False)
    engine = parquet_views(tmp_path)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE charges2 AS SELECT * FROM charges"
        )
        conn.exec_driver_sql(
            "INSERT INTO charges2 SELECT * REPLACE (c.id || '_late' AS id, 'succeeded' AS status, "
            "TIMESTAMP '2099-01-01' AS created) FROM charges c WHERE c.status = 'succeeded' LIMIT 1"
        )
        conn.exec_driver_sql("DROP VIEW charges")
        conn.exec_driver_sql("ALTER TABLE charges2 RENAME TO charges")
    values = measure(engine)
    engine.dispose()
    assert values["charges_succeeded_after_card_expiry"] == 1
