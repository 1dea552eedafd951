"""Sample files written by worker processes are the files one process writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_exports import _count_summaries, record_calls
from test_store import RUN, sample

from fleetbench import csvtext
from fleetbench.report import exports, samplefiles
from fleetbench.report.exports import STAMP_FILE, export_results
from fleetbench.report.master import run_dir
from fleetbench.report.samplefiles import FolderJob, FolderWorkers, write_sample_files
from fleetbench.store import COMPLETED, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    for i in range(4):
        run_id = f"r{i}"
        s.upsert_run(RUN | {"run_id": run_id, "config": {"energy": {}}}, "b1", 3)
        for k in (1, 2):
            a = s.start_attempt(run_id, "b1", {}, [k])
            for j in range(3):
                s.add_sample(sample(j, a, run_id=run_id, round=k, latency_s=0.1 * (i + j + 1)))
            s.finish_attempt(run_id, a, COMPLETED, None)
    return s


def _run_id(_: object, run_id: str, *rest: object) -> str:
    """The run a sample-files writer was called for (its second argument)."""
    return run_id


def _files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted((out / "runs").rglob("*"))
        if p.is_file() and p.name != STAMP_FILE
    }


def test_a_report_through_workers_writes_the_same_files(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = export_results(store, tmp_path / "one", [])
    started: list[int] = []
    real_enter = FolderWorkers.__enter__

    def entering(self: FolderWorkers) -> FolderWorkers:
        entered = real_enter(self)
        started.append(self.started)
        return entered

    monkeypatch.setattr(samplefiles, "PARALLEL_MIN_SAMPLES", 0)
    monkeypatch.setattr(FolderWorkers, "__enter__", entering)
    here = _count_summaries(monkeypatch, exports)  # runs summarised in this process
    documents: list[str] = []  # runs whose summary.json this process wrote
    real_documents = exports._write_documents

    def writing(store: Store, run: Any, *args: Any) -> None:
        documents.append(run["run_id"])
        real_documents(store, run, *args)

    monkeypatch.setattr(exports, "_write_documents", writing)
    pages: list[int] = []
    seen: list[tuple[int, int]] = []  # the progress: runs done, of how many
    many = export_results(
        store, tmp_path / "many", [], None, lambda s: pages.append(len(s)),
        lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert pages == [4]  # the page is made once, from every run's summary
    if not _one_cpu():  # two workers wrote the files, the summaries and the documents
        assert started == [2] and here == [] and documents == []
        assert seen[-1] == (4, 4) and seen == sorted(seen)
    assert many == one
    assert _files(tmp_path / "many") == _files(tmp_path / "one")
    # The stamps record what was written: the next report writes nothing again.
    started.clear()
    export_results(store, tmp_path / "many", [])
    assert started == [0]


def _one_cpu() -> bool:
    return len(os.sched_getaffinity(0)) < 2


def test_a_run_a_worker_cannot_write_is_left_to_the_caller(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = {row["run_id"]: row for row in store.runs()}
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the run's folder should be")
    jobs = [
        FolderJob(rows["r0"], run_dir(tmp_path, "r0"), True, False, 6),
        FolderJob(rows["r1"], blocked, True, False, 6),
    ]
    with FolderWorkers(store, jobs, workers=2) as writers:
        assert writers.files("r0") is None  # 12 samples: not worth the processes
    monkeypatch.setattr(samplefiles, "PARALLEL_MIN_SAMPLES", 0)
    with FolderWorkers(store, jobs, workers=2) as writers:
        written = writers.files("r0")
        assert writers.files("r1") is None  # its error is the caller's to meet
    assert written is not None
    folder = run_dir(tmp_path, "r0")
    assert written == {name: (folder / name).stat().st_size for name in written}
    assert len((folder / "results.jsonl").read_text().splitlines()) == 6  # both rounds


def test_samples_csv_keeps_times_of_day_in_full(tmp_path: Path) -> None:
    import csv

    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN | {"run_id": "r1", "config": {"energy": {}}}, "b1", 1)
    a = store.start_attempt("r1", "b1", {})
    times = {"sent_at": 1796006633.4447193, "received_at": 1796006633.911862}
    store.add_sample(sample(0, a, latency_s=0.46714, **times))
    write_sample_files(store.conn, "r1", 1, RUN["task"], tmp_path)
    with (tmp_path / "samples.csv").open(newline="") as f:
        (cells,) = csv.DictReader(f)
    assert cells["sent_at"] == "1796006633.4447193" and cells["received_at"] == "1796006633.911862"
    assert cells["latency_s"] == "0.46714" and cells["cost_usd"] == ""  # unknown: empty, not 0


def _add_round(store: Store, run_id: str, k: int, indices: range = range(3)) -> None:
    a = store.start_attempt(run_id, "b1", {}, [k])
    for j in indices:
        store.add_sample(sample(j, a, run_id=run_id, round=k, latency_s=0.5 + j))
    store.finish_attempt(run_id, a, COMPLETED, None)


def test_a_new_round_is_appended_and_anything_else_rewritten(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    export_results(store, out, [])
    rewritten = record_calls(monkeypatch, samplefiles, "write_sample_files", _run_id)
    _add_round(store, "r0", 3)  # a schedule's tick: appended
    store.conn.execute("DELETE FROM samples WHERE run_id = 'r1' AND round = 1 AND sample_index = 0")
    _add_round(store, "r1", 1, range(1))  # re-measured: rewritten
    _add_round(store, "r1", 3)
    _add_round(store, "r2", 3, range(2))  # a round under way, then finished: rewritten
    export_results(store, out, [])
    _add_round(store, "r2", 3, range(2, 3))
    export_results(store, out, [])
    assert rewritten == ["r1", "r2"]  # r0's new round and r2's start were appended
    assert _files(out) == _files(_fresh_export(store, tmp_path / "fresh"))
    assert len((out / "runs/r0/results.jsonl").read_text().splitlines()) == 9


def _fresh_export(store: Store, out: Path) -> Path:
    export_results(store, out, [])
    return out


def test_lines_and_cells_are_the_stored_samples_decoded(tmp_path: Path) -> None:
    """The stored JSON is embedded, not parsed (``_jsonl``), and taken out by SQLite for
    the spreadsheet: each line still reads back as ``_record`` of its row, and each cell
    as that record's value (nested values as JSON)."""
    import csv
    import json

    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN | {"run_id": "r1", "config": {"energy": {}}}, "b1", 3)
    a = store.start_attempt("r1", "b1", {})
    messages = [{"role": "user", "content": 'Grüße, "quoted",\nnew line'}]
    inputs = [
        {"prompt": "plain, with a comma", "category": "retail"},
        {"messages": messages},
        {"prompt": "ensemble's", "ensemble": ["m1", {"member": "m2", "votes": 2}]},
    ]
    scores = [json.dumps({"correct": 1, "f1": 0.3333333333333333}), "", '{"ok": true}']
    for i in range(3):
        store.add_sample(sample(
            i, a, input_json=json.dumps(inputs[i]), scores_json=scores[i],
            latency_s=0.1 + 0.2, cost_usd=None if i else 1.5e-05, sent_at=1796006633.4447193,
            error="HTTP 503" if i == 1 else None,
        ))  # fmt: skip
    write_sample_files(store.conn, "r1", 3, RUN["task"], tmp_path)
    cursor = store.conn.cursor()
    cursor.row_factory = None
    stored = cursor.execute(
        f"SELECT {', '.join(samplefiles.SAMPLE_FIELDS)} FROM samples ORDER BY sample_index"
    ).fetchall()
    records = [samplefiles._record(row) for row in stored]
    lines = (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records
    assert records[1]["messages"] == messages and records[2]["ensemble"][1]["votes"] == 2
    with (tmp_path / "samples.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [*samplefiles.RECORD_KEYS, "ensemble"]
    for record, row in zip(records, rows, strict=True):
        for key, cell in row.items():
            value = record.get(key)
            if isinstance(value, (dict, list)):
                assert json.loads(cell) == value, key
            elif isinstance(value, float) and key != "sent_at":
                assert cell == f"{value:.6g}", key
            else:
                assert cell == ("" if value is None else str(value)), key
    assert rows[0]["prompt"] == "plain, with a comma" and rows[2]["ensemble"].startswith("[")
    assert rows[0]["latency_s"] == "0.3" and rows[0]["cost_usd"] == "1.5e-05"


def test_workers_keep_their_heap_unless_the_user_tuned_malloc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    monkeypatch.setenv("FLEETBENCH_PROBE", "kept")
    env = samplefiles.worker_env()
    assert env["MALLOC_TOP_PAD_"] == str(64 << 20) and env["FLEETBENCH_PROBE"] == "kept"
    monkeypatch.setenv("MALLOC_TOP_PAD_", "4096")
    assert samplefiles.worker_env()["MALLOC_TOP_PAD_"] == "4096"


def test_documents_a_worker_cannot_write_are_left_to_the_caller(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(samplefiles, "PARALLEL_MIN_SAMPLES", 0)
    rows = {row["run_id"]: row for row in store.runs()}
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the run's folder should be")
    folders = {"r0": run_dir(tmp_path, "r0"), "r1": blocked}
    # r1's first job is none: its worker fails on its documents, not before.
    jobs = [FolderJob(rows[r], folders[r], r == "r0", False, 6) for r in ("r0", "r1")]
    with FolderWorkers(store, jobs, workers=2) as workers:
        if workers.started < 2:
            pytest.skip("needs two CPUs")
        summaries = {r: exports.summarize_run(store, rows[r]) for r in folders}
        handed = workers.documents(
            [
                {"run": dict(zip(rows[r].keys(), rows[r], strict=True)), "summary": summaries[r],
                 "folder": str(folders[r]), "stamp": exports.samples_stamp(store, rows[r]),
                 "files": workers.files(r)}
                for r in ("r0", "r1")
            ]
        )  # fmt: skip
        assert handed and workers.finish() == {"r0"}  # r1's worker met an error: not done
    summary = json.loads((folders["r0"] / exports.SUMMARY_FILE).read_text())
    assert summary["summary"]["run_id"] == "r0"
    assert exports.read_stamp(folders["r0"])["document"]  # its stamp records it


def _reference_csv(rows: list[tuple[object, ...]], columns: list[str], header: bool = True) -> str:
    """``samples.csv`` as ``csv.writer`` writes it, a row at a time (the former ``_csv``)."""
    import csv
    import io

    n, prompt = samplefiles._N, samplefiles._PROMPT
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        cells = [*row[:prompt], row[n + 1], *row[prompt + 1 : n]]
        for i in samplefiles._FLOATS:
            if cells[i].__class__ is float:
                cells[i] = f"{cells[i]:.6g}"
        writer.writerow([*cells, row[n + 2]] if len(columns) > n else cells)
    return buf.getvalue()


def _awkward_rows(count: int, seed: int) -> list[tuple[object, ...]]:
    """``_SELECT``-shaped rows whose every column mixes awkward values: floats of all
    magnitudes (ints stored as floats, halfway points, -0.0, inf, nan), ints, None,
    bytes, text with the characters ``csv`` quotes for (or ``\\r``, NUL, spaces)."""
    import random

    rng = random.Random(seed)
    texts = ["", " lead", "trail ", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "nul\x00,",
             "Grüße", "\u2028", '{"correct": 1}', "plain"]  # fmt: skip
    floats = [0.0, -0.0, 3.0, -7.0, 1e16, 123456.5, 1234565.0, 10000.25, 0.1 + 0.2, 1.5e-05,
              9.9999995, 999999.5, 1e-320, 1.7976931348623157e308, float("inf"),
              float("-inf"), float("nan"), 1796006633.4447193]  # fmt: skip

    def value() -> object:
        pick = rng.random()
        if pick < 0.1:
            return rng.choice(floats)
        if pick < 0.4:
            return rng.uniform(-1, 1) * 10 ** rng.randint(-12, 12)
        if pick < 0.55:
            return rng.choice([0, 1, -5, 2**63 - 1, 10**20])
        if pick < 0.9:
            return rng.choice(texts)
        return None if pick < 0.98 else b"by,tes"

    width = samplefiles._N + 3
    return [tuple(value() for _ in range(width)) for _ in range(count)]


@pytest.mark.parametrize("quoting_left_to_csv", [False, True])
def test_samples_csv_is_what_csv_writer_writes(
    monkeypatch: pytest.MonkeyPatch, quoting_left_to_csv: bool
) -> None:
    """Built a column at a time, the spreadsheet is byte for byte what ``csv.writer``
    writes a row at a time, whatever types and values the columns hold."""
    if quoting_left_to_csv:  # a Python whose ``csv`` quotes by rules ``_csv`` does not know
        monkeypatch.setattr(csvtext, "_QUOTE", None)
    keys = list(samplefiles.RECORD_KEYS)
    for seed in range(40):
        rows = _awkward_rows(1 + seed % 7, seed)
        for columns in (keys, [*keys, "ensemble"]):
            assert samplefiles._csv(rows, columns) == _reference_csv(rows, columns)
            assert samplefiles._csv(rows, columns, header=False) == _reference_csv(
                rows, columns, header=False
            )
    # Columns of one type each, as stored (the fast paths), and None among them.
    typed = [
        tuple(v if (k + j) % 5 else None for j, v in enumerate(row))
        for k, row in enumerate(_awkward_rows(30, 99))
    ]
    stored = (_stored_like(200), _stored_like(50, "\x00"))
    for rows in (typed, [tuple(None for _ in typed[0])] * 3, *stored):
        assert samplefiles._csv(rows) == _reference_csv(rows, samplefiles._columns(rows))
    assert samplefiles._csv([]) == _reference_csv([], samplefiles._columns([]))


def _stored_like(count: int, odd: str = "") -> list[tuple[object, ...]]:
    """Rows as a store gives them: each column of one type, the JSON ones all quoted
    (one with ``odd`` in it)."""
    import json
    import random

    rng = random.Random(7)
    kinds = {"str": "text", "int": 0, "float": 0.0}
    rows = []
    for i in range(count):
        row: list[object] = []
        for key in (*samplefiles.RECORD_KEYS, "ensemble", "prompt", "ensemble"):
            kind = samplefiles._FIELD_TYPES.get(key, "str").split(" ")[0]
            sample = kinds.get(kind, "text")
            if key in ("messages", "scores", "server_timing_json"):
                row.append(json.dumps({"k": rng.choice(["a,b", 'q"', "x\ny"])}) + odd * (i == 3))
            elif isinstance(sample, str):
                row.append(rng.choice(["a,b", "plain", 'q"uote', f"id{i}"]))
            elif isinstance(sample, int):
                row.append(rng.randrange(-3, 10**6))
            else:
                row.append(rng.uniform(0, 2) * 10 ** rng.randint(-8, 10))
        rows.append(tuple(row))
    return rows


def _format_store(tmp_path: Path) -> Store:
    """A run of two rounds whose samples hold what the files must write: unicode,
    quotes, commas and newlines, messages, scores, unknown values, times of day."""
    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN | {"run_id": "r1", "config": {"energy": {}}}, "b1", 2)
    for k in (1, 2):
        a = store.start_attempt("r1", "b1", {}, [k])
        for j in range(2):
            prompt = {"prompt": f'Say "ï,{j}"\nthen stop', "category": "retail"}
            if j:
                prompt["messages"] = [{"role": "user", "content": "¿qué?"}]
            store.add_sample(sample(
                j, a, round=k, input_json=json.dumps(prompt), latency_s=0.30000000000000004 * k,
                ttft_s=None if j else 0.125, sent_at=1796006633.4447193 + k,
                scores_json=json.dumps({"correct": j}), error="HTTP 503, again" if j else None,
            ))  # fmt: skip
        store.finish_attempt("r1", a, COMPLETED, None)
    return store


# sha256 of results.jsonl and samples.csv as ``_format_store``'s run writes them, for
# each ``FILES_FORMAT``. A change here is a change of layout: raise FILES_FORMAT (files
# of the old one are then written afresh, not appended to) and add its hash.
_FORMAT_HASHES = {1: "5eb31aa49f97816d532709dc000782fc3ecebd0ba7eb9ed37c1b67eb423e5e1a"}


def test_the_files_layout_is_the_one_of_its_number(tmp_path: Path) -> None:
    import hashlib

    store = _format_store(tmp_path)
    write_sample_files(store.conn, "r1", 2, RUN["task"], tmp_path)
    digest = hashlib.sha256()
    for name in (samplefiles.RESULTS_FILE, samplefiles.SAMPLES_CSV):
        digest.update((tmp_path / name).read_bytes())
    assert digest.hexdigest() == _FORMAT_HASHES.get(samplefiles.FILES_FORMAT), (
        "the sample files' layout changed: raise samplefiles.FILES_FORMAT and add the hash"
    )


def test_a_new_version_rewrites_the_task_files_only(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an upgrade the same samples are not written again (1.1 GB at a million
    samples), only the task's files (one round) and the stamp; a new layout
    (``FILES_FORMAT``) writes them afresh."""
    out = tmp_path / "out"
    export_results(store, out, [])
    lines = {p: p.stat().st_ino for p in out.glob("runs/*/results.jsonl")}
    rewritten = record_calls(monkeypatch, samplefiles, "write_sample_files", _run_id)
    task_files = record_calls(monkeypatch, samplefiles, "_write_task_files", _run_id)
    for stamp in out.glob(f"runs/*/{STAMP_FILE}"):  # as an older fleetbench wrote them
        stamp.write_text(json.dumps(json.loads(stamp.read_text()) | {"version": "0.0.1"}))
    export_results(store, out, [])
    assert rewritten == [] and sorted(task_files) == ["r0", "r1", "r2", "r3"]
    assert {p: p.stat().st_ino for p in lines} == lines
    stamp = json.loads((out / "runs/r0" / STAMP_FILE).read_text())
    assert stamp["version"] == exports.__version__ != "0.0.1"
    task_files.clear()
    export_results(store, out, [])  # the stamps are this version's now: nothing to do
    assert rewritten == [] and task_files == []

    monkeypatch.setattr(samplefiles, "FILES_FORMAT", 2)
    monkeypatch.setattr(exports, "FILES_FORMAT", 2)
    export_results(store, out, [])
    assert sorted(rewritten) == ["r0", "r1", "r2", "r3"]
    assert _files(out) == _files(_fresh_export(store, tmp_path / "fresh"))
