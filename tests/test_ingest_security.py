"""Security of what the OLTP side stores and prints, end to end.

Each test plants hostile input (card data, passwords, control characters, symbolic
links, records without bounds) and scans everything the commands stored or printed:
every column of every table, every output stream and every file written.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from paymodel.cli import main
from paymodel.notebooks import _local_kernel_manager
from paymodel.oltp import ingest_guard
from paymodel.oltp.engines import (
    drop_postgres_database,
    dsn_database,
    duckdb_engine,
    fresh_postgres_database,
)
from paymodel.oltp.ingest import ensure_schema, ingest, main_ingest
from paymodel.paths import DATA_DIR, REPO_ROOT
from paymodel.synthetic import generate

STORY = [DATA_DIR / "stripe" / "catalog.json", DATA_DIR / "stripe" / "events.jsonl"]
PANS = ("4242424242424242", "4000056655665556", "378282246310005")
CVC = "7193"
PASSWORD = "planted-Secret-13"
T = 1748854800  # 2025-06-02 09:00 UTC


def _card(**extra: Any) -> dict[str, Any]:
    return {"brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2030,
            "fingerprint": "Xt5EWLLDS7FJjR1c", "funding": "credit", "last4": "4242",
            **extra}  # fmt: skip


def _customer(cid: str = "cus_S1", **extra: Any) -> dict[str, Any]:
    return {"object": "customer", "id": cid, "email": "li@example.com", "name": "Li",
            "currency": "usd", "balance": 0, "delinquent": False, "created": T,
            "metadata": {}, **extra}  # fmt: skip


def _payment_method(pid: str = "pm_S1", **card: Any) -> dict[str, Any]:
    return {"object": "payment_method", "id": pid, "type": "card", "customer": "cus_S1",
            "created": T + 10, "card": _card(**card), "metadata": {}}  # fmt: skip


def _charge(chid: str, customer: str, **card: Any) -> dict[str, Any]:
    return {"object": "charge", "id": chid, "customer": customer, "currency": "usd",
            "amount": 2000, "amount_captured": 2000, "amount_refunded": 0,
            "status": "succeeded", "paid": True, "captured": True, "refunded": False,
            "disputed": False, "created": T + 20,
            "payment_method_details": {"type": "card", "card": _card(**card)},
            "metadata": {}}  # fmt: skip


def _event(eid: str, kind: str, obj: dict[str, Any], created: int = T + 30) -> dict[str, Any]:
    return {"object": "event", "id": eid, "type": kind, "created": created,
            "api_version": "2025-09-30.clover", "livemode": False, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}  # fmt: skip


def hostile_corpus() -> list[tuple[str, str | None]]:
    """``(JSON line, the rule that must refuse it, or None when it must be accepted)``."""
    pan, pan2, amex = PANS
    deep = "[" * 5000 + "]" * 5000
    lines = [
        # card data, in every position a record can take
        (_payment_method(number=pan, cvc=CVC), "card_data"),  # a plain object
        (
            _event("evt_S1", "payment_method.attached", _payment_method("pm_S2", number=pan)),
            "card_data",
        ),  # an event
        (_charge("ch_S1", "cus_MISSING", number=pan2, cvc=CVC), "card_data"),  # would wait
        (_event("evt_S2", "charge.succeeded", _charge("ch_S2", "cus_S1", cvc=CVC)), "card_data"),
        (_charge("ch_S3", "cus_S1", number=int(amex)), "card_data"),
        (
            _customer(
                "cus_S3", metadata={"note": f"card {pan2[:4]} {pan2[4:8]} {pan2[8:12]} {pan2[12:]}"}
            ),
            "card_data",
        ),
        ({"object": "payout", "id": "po_S1", "card": {"number": pan, "cvc": CVC}}, "card_data"),
        # ids, metadata, versions
        (_customer(" "), "invalid_id"),
        (_customer("cus_\u200bS4"), "invalid_id"),
        (_customer("cus_\u202eS5"), "invalid_id"),
        (_customer("cus_" + "A" * 100_000), "invalid_id"),
        (_customer("cus_S6", metadata={f"k{i}": "v" for i in range(10_000)}), "metadata_limits"),
        (_customer("cus_S7", metadata={"k" * 41: "v"}), "metadata_limits"),
        (_customer("cus_S8", metadata={"k": "v" * 501}), "metadata_limits"),
        (_customer("cus_S1", email="evil@example.com", updated=253402300799), "future_version"),
        # genuine records, which must land
        (_customer(), None),
        (_payment_method(), None),
        (_charge("ch_S4", "cus_S1"), None),
        (_charge("ch_S5", "cus_LATER"), None),  # pending: its customer never arrives
    ]
    rendered = [(json.dumps(value), rule) for value, rule in lines]
    rendered += [
        (f'{{"object": "payment_method", "id": "pm_S9", "card": {{"number": "{pan}", '
         f'"cvc": "{CVC}", ', "malformed_json"),  # cut short: quarantined as text
        ('{"object": "customer", "id": "cus_S10", "email": "a@x.io", "email": "b@x.io"}',
         "repeated_key"),
        (f'{{"object": "customer", "name": "{pan} {"x" * (1 << 20)}"}}', "too_large"),
        (deep, "nested_too_deeply"),
        ('{"object": "\\u001b[2J\\rread 0: applied 0", "id": "x_1"}', "unknown_object_type"),
    ]  # fmt: skip
    return rendered


def scan_database(engine: sa.Engine, needles: tuple[str, ...]) -> list[str]:
    """Every (table, column) whose value holds one of ``needles``, across all tables."""
    hits = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings():
                for column, value in row.items():
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    hits += [f"{table}.{column}: {n}" for n in needles if n in text]
    return hits


def scan_files(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def card_needles() -> tuple[str, ...]:
    pan2 = PANS[1]
    return (*PANS, f'"{CVC}"', f"{pan2[:4]} {pan2[4:8]}")


@pytest.fixture
def db(engine: sa.Engine) -> sa.Engine:
    ensure_schema(engine)
    return engine


def test_hostile_records_are_refused_by_rule_and_nothing_leaks(
    db: sa.Engine, tmp_path: Path
) -> None:
    corpus = hostile_corpus()
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(line for line, _ in corpus) + "\n")
    report = ingest(path, db)
    expected = sum(rule is not None for _, rule in corpus)
    assert report.read == len(corpus)
    assert report.quarantined == expected
    assert (report.applied, report.pending) == (3, 1)
    with db.connect() as conn:
        rules = conn.execute(
            sa.text("SELECT source_line, rule FROM ingest_quarantine ORDER BY source_line")
        ).all()
    assert [r for _, r in rules] == [rule for _, rule in corpus if rule is not None]
    leaked = scan_database(db, card_needles())
    assert leaked == []
    with db.connect() as conn:
        email = conn.execute(sa.text("SELECT email FROM customers WHERE id = 'cus_S1'")).scalar()
    assert email == "li@example.com"  # the version from the future did not freeze it
    print(f"\nrecords tried {report.read}, refused {report.quarantined}, leaked {len(leaked)}")


def test_card_data_never_reaches_events_pending_or_quarantine_raw(db: sa.Engine) -> None:
    """The four places a raw copy used to be kept whole, each planted separately."""
    pan = PANS[0]
    records = [
        _event("evt_C1", "payment_method.attached", _payment_method("pm_C1", number=pan)),
        _charge("ch_C1", "cus_NOT_YET", number=pan),
        {"object": "payout", "id": "po_C1", "card": {"number": pan, "cvc": CVC}},
        _event("evt_C2", "charge.succeeded", _charge("ch_C2", "cus_NOT_YET", cvc=CVC)),
    ]
    report = ingest(records, db)
    assert report.quarantined == 4
    assert scan_database(db, card_needles()) == []
    with db.connect() as conn:
        raws = conn.execute(sa.text("SELECT raw FROM ingest_quarantine")).scalars().all()
    assert len(raws) == 4
    assert all("[redacted]" in raw for raw in raws)  # kept, for the operator, redacted


def test_card_data_written_with_escapes_in_a_file_is_still_refused(
    db: sa.Engine, tmp_path: Path
) -> None:
    """The guard decides clean-looking text on the text itself: escapes (a digit or a key
    written as a \\u escape) must send the record to the full check, which refuses it."""
    pan = PANS[0]
    hidden_pan = "".join(f"\\u{ord(d):04x}" for d in pan)
    note = json.dumps(_customer("cus_E1")).replace('"metadata": {}',
                                                  f'"metadata": {{"note": "{hidden_pan}"}}')
    card = (json.dumps(_charge("ch_E1", "cus_E2", number=pan))
            .replace('"number"', '"\\u006eumber"').replace(f'"{pan}"', f'"{hidden_pan}"'))  # fmt: skip
    lines = [note, card, json.dumps(_customer("cus_E2"))]
    assert all(ingest_guard.parse(line) for line in lines)  # each is valid JSON
    assert pan not in note + card
    assert '"number"' not in card
    path = tmp_path / "escaped.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = ingest(path, db)
    assert (report.quarantined, report.applied) == (2, 1)
    with db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT rule, raw FROM ingest_quarantine ORDER BY source_line")
        ).all()
    assert [r.rule for r in rows] == ["card_data", "card_data"]
    assert all("[redacted]" in r.raw and hidden_pan not in r.raw for r in rows)
    assert scan_database(db, card_needles()) == []


def test_a_future_version_is_refused_and_a_later_event_wins(db: sa.Engine) -> None:
    now = int(time.time())
    frozen = _customer(email="false@example.com", updated=253402300799)
    report = ingest([_customer(), frozen], db)
    assert report.quarantined == 1
    genuine = _event("evt_F1", "customer.updated", _customer(email="new@example.com"), now - 60)
    report = ingest([genuine], db)
    assert (report.applied, report.superseded) == (1, 0)
    with db.connect() as conn:
        email = conn.execute(sa.text("SELECT email FROM customers")).scalar_one()
        rule = conn.execute(sa.text("SELECT rule FROM ingest_quarantine")).scalar_one()
    assert (email, rule) == ("new@example.com", "future_version")


# --- what is printed -----------------------------------------------------------------


def _planted(dsn: str) -> str:
    return make_url(dsn).set(password=PASSWORD).render_as_string(hide_password=False)


def test_ingest_and_load_never_print_a_password(
    pg_server_dsn: str,
    pg_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    unreachable = f"postgresql://u:{PASSWORD}@127.0.0.1:1/x?connect_timeout=2"
    assert main(["ingest", str(STORY[0]), "--db", unreachable]) == 2
    keyword = f"host=127.0.0.1 port=1 user=u password={PASSWORD} connect_timeout=2"
    assert main(["ingest", str(STORY[0]), "--db", keyword]) == 2
    assert main(["ingest", str(STORY[0]), "--db", f"hots=x password={PASSWORD}"]) == 2
    assert main(["ingest", str(STORY[0]), "--db", f"mysql://u:{PASSWORD}@h/x"]) == 2
    printed = capsys.readouterr()
    assert "looks like a PostgreSQL keyword DSN" in printed.err
    assert "u:***@127.0.0.1" in printed.err
    # a keyword DSN is PostgreSQL, never a DuckDB file of that name
    assert main(["ingest", str(STORY[0]), "--db", make_conninfo(pg_dsn, password=PASSWORD)]) == 0
    data = tmp_path / "data"
    generate(data, scale=0.002, seed=2, months=2, progress=False, events=False, documents=False)
    empty = fresh_postgres_database(pg_server_dsn)  # load needs an empty database
    try:
        assert main(["load", str(data), "--db", _planted(empty)]) == 0
    finally:
        drop_postgres_database(pg_server_dsn, dsn_database(empty))
    printed = capsys.readouterr()
    assert "rows loaded" in printed.out
    assert ":***@" in printed.out
    assert PASSWORD not in printed.out + printed.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no stray DuckDB file
    assert scan_files(tmp_path, PASSWORD) == []


def test_notebooks_get_the_password_through_the_environment(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = tmp_path / "01_probe.py"
    nb.write_text(
        '# %% tags=["parameters"]\npg_dsn = ""\nout_dir = ""\n\n'
        "# %%\nimport os\nimport psycopg\n"
        'assert os.environ.get("PGPASSWORD"), "no password in the environment"\n'
        "with psycopg.connect(pg_dsn) as conn:\n"
        '    assert conn.execute("SELECT 1").fetchone() == (1,)\n'
        "print(pg_dsn)\n"
    )
    out = tmp_path / "out"
    saved = os.environ.get("PGPASSWORD")
    assert main(["notebooks", "--out", str(out), "-p", f"pg_dsn={_planted(pg_dsn)}", str(nb)]) == 0
    printed = capsys.readouterr()
    assert os.environ.get("PGPASSWORD") == saved  # restored after the run
    executed = (out / "01_probe.ipynb").read_text()
    assert make_url(pg_dsn).database in executed  # the parameter is there, without password
    assert PASSWORD not in printed.out + printed.err
    assert scan_files(tmp_path, PASSWORD) == []
    assert not list(out.glob("kernel*"))  # sockets live in a private folder, gone after


def test_kernel_sockets_are_private_and_unique_per_run(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ip_a = _local_kernel_manager(a)().ip
    ip_b = _local_kernel_manager(b)().ip
    assert ip_a != ip_b
    assert Path(ip_a).parent == a
    assert Path(ip_b).is_absolute()


def test_control_characters_are_escaped_in_what_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evil.jsonl"
    path.write_text('{"object": "\\u001b[2J\\rread 9: applied 9", "id": "x_1"}\n')
    assert main(["ingest", str(path), "--db", str(tmp_path / "x.duckdb")]) == 3
    assert (
        main(["ingest", str(tmp_path / "no\x1b[2Jsuch"), "--db", str(tmp_path / "x.duckdb")]) == 2
    )
    printed = capsys.readouterr()
    assert "\x1b" not in printed.out + printed.err
    assert "\r" not in printed.out
    assert "\\x1b[2J\\rread 9" in printed.out
    assert "no\\x1b[2Jsuch" in printed.err


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "paymodel", "ingest", *map(str, STORY), "--db",
         str(tmp_path / "x.duckdb")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT,
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before anything is written, as with `| head`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


# --- what is read --------------------------------------------------------------------


def test_a_device_or_a_fifo_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "x.duckdb"
    started = time.perf_counter()
    assert main_ingest(["/dev/zero"], str(target)) == 2
    assert main_ingest([str(STORY[0]), str(fifo)], str(target)) == 2
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert "/dev/zero: a device, not a regular file" in err
    assert "a FIFO, not a regular file" in err
    assert not target.exists()  # refused before anything was written


def test_a_file_failing_midway_prints_the_counts_of_the_files_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_customer()) + "\n")
    opened: list[str] = []
    real_open = ingest_guard.open_regular

    def failing_open(path: Any) -> Any:
        opened.append(os.fspath(path))
        if os.fspath(path) == str(bad) and opened.count(str(bad)) > 1:  # after the check
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path)

    monkeypatch.setattr(ingest_guard, "open_regular", failing_open)
    target = tmp_path / "x.duckdb"
    assert main_ingest([str(STORY[0]), str(bad), str(STORY[1])], str(target)) == 2
    printed = capsys.readouterr()
    assert "read 2: applied 2" in printed.out  # catalog.json, committed
    assert f"{bad}: Input/output error" in printed.err
    assert "the 1 file(s) before it are committed" in printed.err
    engine = duckdb_engine(target)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM products")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 0
    engine.dispose()


def test_a_foreign_table_is_named_with_its_missing_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "other.duckdb"
    engine = duckdb_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE products (id TEXT PRIMARY KEY, title TEXT)"))
    engine.dispose()
    assert main_ingest([str(STORY[0])], str(target)) == 2
    assert main(["load", str(tmp_path), "--db", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("table products has no column name, description, active") == 2
    assert "Traceback" not in err
    assert "BinderException" not in err


# --- what is written -----------------------------------------------------------------


def test_generate_never_writes_through_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    out = tmp_path / "out"
    for planted in ("events.jsonl", "documents/feedback.jsonl", "customers"):
        victim.write_text("precious\n")
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        (out / planted).parent.mkdir(parents=True, exist_ok=True)
        (out / planted).symlink_to(victim)
        code = main(["generate", "--scale", "0.002", "--months", "1", "--out", str(out),
                     "--no-progress"])  # fmt: skip
        assert code == 2, planted
        assert victim.read_text() == "precious\n", planted
        assert f"{out / planted}: a symbolic link" in capsys.readouterr().err


def test_a_symlinked_wal_beside_a_duckdb_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = tmp_path / "x.duckdb"
    (tmp_path / "x.duckdb.wal").symlink_to(victim)
    assert main_ingest([str(STORY[0])], str(target)) == 2
    assert "x.duckdb.wal: a symbolic link beside the DuckDB file" in capsys.readouterr().err
    assert victim.read_text() == "precious\n"
    assert not target.exists()


def test_the_readme_security_section_names_the_rules_and_limits() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    for rule in ("card_data", "invalid_id", "metadata_limits", "future_version", "too_large",
                 "repeated_key", "nested_too_deeply"):  # fmt: skip
        assert f"`{rule}`" in section, rule
    for limit in ("50", "40", "500", "1 MiB", "updated", "created"):
        assert limit in section, limit
