"""The input guard of ingestion, alone: reading files within bounds, checks over one
record, redaction of raw copies, escaping of printed text."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paymodel.oltp import ingest_guard as guard
from paymodel.oltp.ingest_guard import Limits, Record, check_record, read_file

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PAN = "4242424242424242"


def records(path: Path, **limits: int) -> list[Record]:
    return list(read_file(path, Limits(**limits)))


def customer(**changes: object) -> dict:
    return {"object": "customer", "id": "cus_G1", "created": 1748854800, "metadata": {},
            **changes}  # fmt: skip


# --- reading: regular files only, bounded records -----------------------------------------


def test_a_device_a_fifo_and_a_folder_are_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((Path("/dev/zero"), "a device"), (fifo, "a FIFO"), (tmp_path, "directory")):
        refused: list[BaseException] = []
        reader = threading.Thread(target=_read_into, args=(path, refused))
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), f"{path}: the read blocked"
        assert isinstance(refused[0], guard.NotARegularFile)
        assert kind in str(refused[0]), refused[0]


def _read_into(path: Path, refused: list[BaseException]) -> None:
    try:
        records(path)
    except OSError as e:
        refused.append(e)


def test_a_record_over_the_limit_is_refused_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    good = json.dumps(customer())
    with path.open("w") as f:
        f.write(good + "\n")
        f.write('{"object": "customer", "name": "' + "x" * (40 << 20) + '"}\n')  # 40 MiB
        f.write(good + "\n")
    tracemalloc.start()
    got = records(path, max_record_bytes=1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak:,} bytes: the long record was held in memory"
    assert [(r.line, r.rule if r.error else None) for r in got] == [
        (1, None), (2, "too_large"), (3, None)
    ]  # fmt: skip
    assert "41,943,0" in got[1].error
    assert "over the limit of 1,048,576 bytes" in got[1].error
    assert len(got[1].raw) < 300
    assert got[1].raw.endswith("bytes, not kept]")


def test_the_limit_is_configurable_and_applies_to_document_items(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    items = [customer(id="cus_A"), customer(id="cus_B", name="y" * 5000)]
    path.write_text(json.dumps({"object": "list", "data": items}, indent=2))
    got = records(path, max_record_bytes=1000)
    assert [r.rule if r.error else r.value["id"] for r in got] == ["cus_A", "too_large"]
    with pytest.raises(ValueError, match="positive"):
        Limits(max_record_bytes=0)


def test_a_deep_document_is_one_rejection_not_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    depth = 10_000
    path.write_text("".join("  " * i + "[\n" for i in range(depth)) + "".join(
        "  " * i + "]\n" for i in reversed(range(depth))))  # fmt: skip
    got = records(path)
    assert len(got) == 1
    assert got[0].rule == "nested_too_deeply"
    assert "one JSON document nested too deeply" in got[0].error


def test_repeated_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text(
        '{"object": "customer", "id": "cus_1", "created": 1, "email": "a@x.io"}\n'
        '{"object": "customer", "id": "cus_1", "email": "a@x.io", "email": "evil@x.io"}\n'
        '{"object": "customer", "id": "cus_1", "metadata": {"k": "1", "k": "2"}}\n'
    )
    got = records(path)
    assert [r.rule if r.error else None for r in got] == [None, "repeated_key", "repeated_key"]
    assert "repeated key 'email'" in got[1].error


def test_json_lines_pretty_documents_and_cut_lines_keep_their_formats(tmp_path: Path) -> None:
    lines = tmp_path / "a.jsonl"
    lines.write_text('{"object": "customer", "id": "cus_1", \n' + json.dumps(customer()) + "\n")
    got = records(lines)
    assert [r.rule if r.error else "ok" for r in got] == ["malformed_json", "ok"]
    doc = tmp_path / "b.json"
    doc.write_text(json.dumps([customer(), customer(id="cus_2")], indent=2))
    assert [r.value["id"] for r in records(doc)] == ["cus_G1", "cus_2"]


# --- checks over one record ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("oid", "ok"),
    [("cus_NffrFeUfNV2Hib", True), ("il_tmp_1Nz4", True), ("in_1MtHbELkdIwHu7ixl4OzzPMv", True),
     (" ", False), ("", False), ("cus_" + "a" * 100_000, False), ("cus_\u200b1", False),
     ("cus_\u202e1", False), ("cus 1", False), ("CUS_1", False), ("cus_", False)],
)  # fmt: skip
def test_ids_have_stripe_s_shape(oid: str, ok: bool) -> None:
    refused = check_record(customer(id=oid), NOW)
    assert (refused is None) == ok, refused
    if not ok:
        assert refused[0] == "invalid_id"


def test_ids_an_account_chooses_and_references() -> None:
    assert check_record({"object": "coupon", "id": "25OFF", "created": 1}, NOW) is None
    refused = check_record({"object": "charge", "id": "ch_1", "customer": "cus_1\u202e"}, NOW)
    assert refused[0] == "invalid_id"
    assert "customer" in refused[1]


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [({f"k{i}": "v" for i in range(50)}, True), ({f"k{i}": "v" for i in range(51)}, False),
     ({f"k{i}": "v" for i in range(10_000)}, False), ({"k" * 40: "v"}, True),
     ({"k" * 41: "v"}, False), ({"a[b]": "v"}, False), ({"k": "v" * 500}, True),
     ({"k": "v" * 501}, False), ({"k": 1}, False)],
)  # fmt: skip
def test_metadata_within_stripe_s_limits(metadata: dict, ok: bool) -> None:
    refused = check_record(customer(metadata=metadata), NOW)
    assert (refused is None) == ok, refused
    if not ok:
        assert refused[0] == "metadata_limits"


def test_a_version_from_the_future_is_refused() -> None:
    soon = int((NOW + timedelta(minutes=4)).timestamp())
    later = int((NOW + timedelta(minutes=6)).timestamp())
    assert check_record(customer(updated=soon), NOW) is None
    rule, error = check_record(customer(updated=253402300799), NOW)
    assert rule == "future_version"
    assert "updated 253402300799 (9999-12-31" in error
    assert check_record(customer(created=later), NOW)[0] == "future_version"
    event = {"object": "event", "id": "evt_1", "created": later, "data": {"object": customer()}}
    assert check_record(event, NOW)[0] == "future_version"
    assert (
        check_record(customer(updated=later), NOW, Limits(future_tolerance=timedelta(hours=1)))
        is None
    )
    assert guard.plain_version_field(customer(updated=5)) == "updated"
    assert guard.plain_version_field(customer()) == "created"


CARD_POSITIONS = [
    ({"object": "payment_method", "id": "pm_1", "card": {"number": PAN}}, "card.number"),
    ({"object": "payment_method", "id": "pm_1", "card": {"cvc": "123"}}, "card.cvc"),
    ({"object": "charge", "id": "ch_1",
      "payment_method_details": {"card": {"number": int(PAN), "last4": "4242"}}},
     "payment_method_details.card.number"),
    ({"object": "event", "id": "evt_1", "created": 1,
      "data": {"object": {"object": "payment_method", "id": "pm_1", "card": {"cvv": "1"}}}},
     "data.object.card.cvv"),
    (customer(metadata={"note": "card 4000 0566 5566 5556 exp 12/30"}), "metadata.note"),
    (customer(description=f"paid with {PAN}"), "description"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "path"), CARD_POSITIONS)
def test_card_data_is_found_and_redacted_in_every_position(value: dict, path: str) -> None:
    rule, error = check_record(value, NOW)
    assert rule == "card_data"
    assert path in error
    assert PAN not in error
    assert "5556" not in error
    stored = guard.stored_raw(Record("x", 1, json.dumps(value), value))
    assert PAN not in stored
    assert "4000 0566" not in stored
    assert '"123"' not in stored
    assert "[redacted]" in stored


def test_what_is_not_card_data() -> None:
    plain = {"object": "payment_method", "id": "pm_1", "card": {"brand": "visa", "last4": "4242",
             "exp_month": 12, "exp_year": 2030, "fingerprint": "Xt5EWLLDS7FJjR1c"},
             "billing_details": {"phone": "+4915112345678"}}  # fmt: skip
    invoice = {"object": "invoice", "id": "in_1", "number": "ABCD-1234-0001", "created": 1,
               "amount_due": 4242424242424241}  # not Luhn-valid  # fmt: skip
    assert check_record(plain, NOW) is None
    assert check_record(invoice, NOW) is None
    numbered = {**invoice, "number": "123456789012"}  # 12 digits: not a card, kept as sent
    raw = json.dumps(numbered, indent=1)
    assert guard.stored_raw(Record("x", 1, raw, numbered)) == raw


def test_raw_text_that_does_not_parse_is_redacted() -> None:
    text = '{"object": "payment_method", "card": {"number": "4242 4242 4242 4242", "cvc": 123'
    stored = guard.stored_raw(Record("x", 1, text, None, "not JSON", "malformed_json"))
    assert "4242 4242" not in stored
    assert "123" not in stored
    assert stored.count("[redacted]") == 2


# --- output ---------------------------------------------------------------------------


def test_printable_escapes_controls_and_bidi_overrides() -> None:
    assert guard.printable("ok\x1b[31mred\rline\u202e\x7f") == "ok\\x1b[31mred\\rline\\u202e\\x7f"
    assert guard.printable("two\nlines\t", keep="\n\t") == "two\nlines\t"
    assert (
        guard.printable("caf\u00e9 \U0001f469\u200d\U0001f4bb")
        == "caf\u00e9 \U0001f469\u200d\U0001f4bb"
    )
    assert guard.printable("bad \udcff byte") == "bad \\udcff byte"


def test_records_in_memory_with_lone_surrogates_are_sized() -> None:
    record = guard.record_in_memory("<records>", 1, ["\ud800", "\udcff"])
    assert record.error is None
    big = guard.record_in_memory("<records>", 2, {"name": "\ud800" * 400_000})
    assert big.rule == "too_large"


# --- the guard decided on the record's text -----------------------------------------------


def _both_ways(value: dict, text: str) -> tuple[str, str] | None:
    """check_record without and with the text: they must agree."""
    walked = check_record(value, NOW)
    assert check_record(value, NOW, raw=text) == walked, text
    return walked


TEXT_CASES = [
    *(value for value, _ in CARD_POSITIONS),
    customer(id="cus 1"), customer(id="cus_" + "a" * 300), customer(id="CUS_1"),
    {"object": "coupon", "id": "25OFF", "created": 1},
    {"object": "charge", "id": "ch_1", "customer": "cus_1\u202e"},
    {"object": "charge", "id": "ch_1", "customer": "cus 1", "metadata": {}},
    customer(metadata={f"k{i}": "v" for i in range(51)}), customer(metadata={"a[b]": "v"}),
    customer(metadata={"k": "v" * 501}), customer(metadata={"k": 1}),
    customer(metadata={"k": {"nested": "v"}}), customer(metadata={"k": "a}b", "j": "x" * 600}),
    customer(metadata={"k" * 41: "v"}), customer(metadata={"a": "b"}, updated=253402300799),
    customer(metadata={"id": "not an id"}), customer(phone="+1 555 7353306"),
    customer(name="Zo\u00eb"), customer(note="4242\n4242424242424242"),
    {"object": "payment_method", "id": "pm_1", "card": {"pin": "1234"}},
    {"object": "payment_method", "id": "pm_1", "card_present": {"track1": "x"}},
    {"object": "source", "id": "src_1", "data": [{"object": "card", "number": "x"}]},
    {"object": "charge", "id": "ch_1", "amounts": [4242424242424242]},
    {"object": "event", "id": "evt_1", "created": 1, "data": {"object": customer(
        metadata={"ok": "yes"}, invoice={"id": "in_1 x"})}},
]  # fmt: skip


@pytest.mark.parametrize("value", TEXT_CASES)
@pytest.mark.parametrize("indent", [None, 2])
def test_the_text_decides_as_the_walk_does(value: dict, indent: int | None) -> None:
    """Compact, pretty-printed and \\u-escaped text: the same answer as the walk."""
    for ascii_only in (True, False):
        text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
        _both_ways(guard.parse(text), text)
    # digits written as escapes inside strings: the text alone must not be trusted
    def literal(v: object) -> str:
        text = json.dumps(v)
        return text.replace("4", "\\u0034") if isinstance(v, str) else text

    text = "{" + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in value.items()) + "}"
    assert guard.parse(text) == value
    _both_ways(value, text)


def test_clean_records_are_decided_on_their_text() -> None:
    """The fast path is taken for ordinary records (else it would save nothing)."""
    clean = [customer(), customer(metadata={"signup_channel": "organic"}),
             {"object": "invoice", "id": "in_1", "number": "ABCD-0001", "customer": "cus_1"},
             {"object": "charge", "id": "ch_1", "payment_method_details": {
                 "card": {"brand": "visa", "last4": "4242"}}}]  # fmt: skip
    for value in clean:
        for text in (json.dumps(value), json.dumps(value, indent=2)):
            assert guard._clean_text(text), text
            assert _both_ways(value, text) is None
    doubtful = [customer(metadata={"k": "v" * 501}), customer(id="cus 1"),
                customer(note=PAN), customer(name="Zo\u00eb"), customer(note='a "q"'),
                {"object": "card", "id": "card_1", "number": "x"}]  # fmt: skip
    for value in doubtful:
        assert not guard._clean_text(json.dumps(value, ensure_ascii=False)), value


_KEYS = st.sampled_from(["id", "object", "customer", "charge", "metadata", "cvc", "number",
                         "card", "note", "source", "k"])  # fmt: skip
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([PAN, "4242 4242 4242 4242", "cus_1", "cus 1", "card", "25OFF", "x" * 501,
                     "+1 555 7353306", "4000-0566-5566-5556", "ch_" + "a" * 260]),
    st.text(alphabet="ab_1 {}[]\":,", max_size=12),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.booleans(), st.sampled_from([None, 1]))
def test_the_text_never_decides_otherwise_than_the_walk(value: dict, ascii_only: bool,
                                                       indent: int | None) -> None:  # fmt: skip
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    _both_ways(guard.parse(text), text)
