"""The TinyDB storage: atomic under SIGKILL, stable files, batched writes, one writer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from tinydb import TinyDB

from paymodel.documents import StoreLockedError, open_store
from paymodel.documents.storage import AtomicJSONStorage
from paymodel.paths import PACKAGE_DIR

STORAGE_PY = PACKAGE_DIR / "documents" / "storage.py"

# A writer that runs until killed: step i, one batched write, inserts the 40 documents of
# step i and removes those of step i - 8, then prints i. The storage module is loaded alone
# (fast start).
WRITER = textwrap.dedent(
    """
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("storage", sys.argv[1])
    storage = importlib.util.module_from_spec(spec); spec.loader.exec_module(storage)
    from tinydb import TinyDB, Query
    db = TinyDB(sys.argv[2], storage=storage.AtomicJSONStorage)
    t = db.table("t")
    steps = {d["step"] for d in t.all()}
    i = max(steps) + 1 if steps else 0
    print("ready", i, flush=True)
    while True:
        with db.storage.batch():
            t.insert_multiple([{"step": i, "n": n, "pad": "x" * 1500} for n in range(40)])
            t.remove(Query().step == i - 8)
        print(i, flush=True)
        i += 1
    """
)


def _steps(path: Path) -> dict[int, int]:
    data = orjson.loads(path.read_bytes())  # raises if the file is not whole JSON
    counts: dict[int, int] = {}
    for doc in data["t"].values():
        counts[doc["step"]] = counts.get(doc["step"], 0) + 1
    return counts


def _state_after(k: int) -> dict[int, int]:
    """The file's content after k complete steps."""
    return dict.fromkeys(range(max(0, k - 8), k), 40)


@pytest.mark.slow
def test_sigkill_at_30_random_points_leaves_the_state_before_or_after_the_write(tmp_path):
    path = tmp_path / "db.json"
    rng = random.Random(20261201)
    outcomes = []
    interrupted = 0  # kills that landed inside a write (its temp file was left behind)
    for _ in range(30):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(STORAGE_PY), str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = child.stdout.readline().split()
        assert ready[0] == "ready", ready
        started = int(ready[1])
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        acked = [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        child.wait()
        assert child.returncode == -signal.SIGKILL
        done = (acked[-1] + 1) if acked else started
        if not path.exists():
            assert done == 0
            continue
        state = _steps(path)
        # Each step is two writes (insert, remove): between them the file holds 9 steps.
        candidates = [_state_after(done), _state_after(done + 1)]
        mid = dict(_state_after(done)) | {done: 40}
        assert state in [*candidates, mid], (
            f"after {done} acknowledged steps the file holds {state}"
        )
        outcomes.append(done)
        leftovers = sorted(p.name for p in tmp_path.glob(".db.json.*.tmp"))
        assert len(leftovers) <= 1, leftovers  # at most the one the killed writer was writing
        interrupted += len(leftovers)
    assert outcomes[-1] > outcomes[0], "writers made progress across the kills"
    assert interrupted > 0, "no kill landed inside a write: the test proved nothing"


def test_files_are_sorted_and_identical_for_the_same_writes(tmp_path):
    docs = [{"b": 2, "a": {"z": 1, "y": 2}}, {"c": 3}]
    for name in ("one.json", "two.json"):
        db = TinyDB(tmp_path / name, storage=AtomicJSONStorage)
        db.insert_multiple(docs)
        db.close()
    text = (tmp_path / "one.json").read_bytes()
    assert text == (tmp_path / "two.json").read_bytes()
    assert text.index(b'"a"') < text.index(b'"b"')
    assert text.index(b'"y"') < text.index(b'"z"')
    assert text.endswith(b"}\n")


def test_a_batch_writes_the_file_once_at_the_end(tmp_path):
    with open_store(tmp_path) as store:
        fb = store.collection("events")
        fb.insert([{"id": "evt_0", "object": "event", "type": "a.b", "created": 0, "api_version": None,
                    "livemode": False, "pending_webhooks": 0, "request": None,
                    "data": {"object": {"id": "x", "object": "y"}}}])  # fmt: skip
        path = tmp_path / "events.json"
        before = path.stat().st_ino
        with store.batch():
            for n in range(1, 5):
                doc = orjson.loads(path.read_bytes())["events"]["1"] | {"id": f"evt_{n}"}
                fb.insert([doc])
                assert path.stat().st_ino == before, "nothing reaches the disk inside a batch"
        assert path.stat().st_ino != before
        assert len(orjson.loads(path.read_bytes())["events"]) == 5


def test_a_second_writer_is_refused_in_this_process_and_in_another(tmp_path):
    with open_store(tmp_path) as store:
        store.collection("feedback").count()
        with pytest.raises(
            StoreLockedError, match=r"feedback\.json is open for writing by another writer"
        ):
            open_store(tmp_path).collection("feedback")
        code = f"from paymodel.documents import open_store; open_store({str(tmp_path)!r}).collection('feedback')"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert other.returncode == 1
        assert "StoreLockedError" in other.stderr
        assert "feedback.json" in other.stderr
        # A reader takes no lock and never sees a half-written file.
        with open_store(tmp_path, read_only=True) as reader:
            assert reader.collection("feedback").count() == 0
            with pytest.raises(PermissionError, match="read-only"):
                reader.collection("feedback").clear()
    with open_store(tmp_path) as again:  # the lock went with close()
        assert again.collection("feedback").count() == 0


def test_a_reader_follows_the_writer(tmp_path):
    with open_store(tmp_path) as writer, open_store(tmp_path, read_only=True) as reader:
        doc = {"bucket_id": "cus_a:2024-01-01", "customer_id": "cus_a", "day": "2024-01-01", "n_events": 1,
               "n_sessions": 1, "pages": {"/": 1}, "funnel": {"page_view": 1, "billing_viewed": 0,
               "upgrade_clicked": 0}, "cancel_flow_started": 0,
               "events": [{"event_id": "bev_1", "t": "2024-01-01T00:00:00Z", "event": "page_view",
                           "page": "/", "session_id": "sess_1", "device": "desktop", "duration_ms": 1}]}  # fmt: skip
        writer.collection("behaviour").insert([doc])
        assert reader.collection("behaviour").get("cus_a:2024-01-01") == doc
        writer.collection("behaviour").insert([doc | {"n_events": 2}])
        time.sleep(0.01)  # a new mtime even on coarse clocks
        os.utime(tmp_path / "behaviour.json")
        assert reader.collection("behaviour").get("cus_a:2024-01-01")["n_events"] == 2
