"""A run's sample files (``results.jsonl``, ``samples.csv``, the task's files), and
writing many runs' of them in worker processes.

A report over a store that no batch wrote (a store from another machine, a new
fleetbench version) writes every stored sample once: about 45 µs of Python each, so a
million samples took over a minute in one process. The runs are independent, so
``FolderWorkers`` spreads them over worker processes, each reading the store through
its own read-only connection, and summarising the runs whose summaries must be made
again too (``exports.write_summary_cache``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from fleetbench import __version__
from fleetbench.fsutil import atomic_append_text, atomic_write_text, read_json_object
from fleetbench.report.master import format_cell
from fleetbench.store.rows import SAMPLE_FIELDS
from fleetbench.store.sqlite import Store
from fleetbench.tasks import run_files

RESULTS_FILE = "results.jsonl"
SAMPLES_CSV = "samples.csv"
# What the sample files of a run folder were written from (``exports.write_run_files``).
STAMP_FILE = ".samples-stamp.json"

# Below this many samples to write, starting worker processes (about 0.3 s each, an
# interpreter and fleetbench's imports) costs more than it saves.
PARALLEL_MIN_SAMPLES = 20_000

_INPUT = SAMPLE_FIELDS.index("input_json")
_SCORES = SAMPLE_FIELDS.index("scores_json")
# A record's keys: ``SAMPLE_FIELDS`` with the stored input unpacked and scores decoded.
RECORD_KEYS: tuple[str, ...] = (
    *SAMPLE_FIELDS[:_INPUT], "prompt", "messages",
    *SAMPLE_FIELDS[_INPUT + 1 : _SCORES], "scores", *SAMPLE_FIELDS[_SCORES + 1 :],
)  # fmt: skip


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    """One line of ``results.jsonl`` from a row of ``SAMPLE_FIELDS`` values, in order:
    every stored column, with the stored input unpacked (``prompt``, ``messages``) and
    the scores decoded."""
    inputs = json.loads(row[_INPUT])
    scores = row[_SCORES]
    record = dict(
        zip(
            RECORD_KEYS,
            (*row[:_INPUT], inputs.get("prompt"), inputs.get("messages"),
             *row[_INPUT + 1 : _SCORES], json.loads(scores) if scores else None,
             *row[_SCORES + 1 :]),
            strict=True,
        )
    )  # fmt: skip
    if "ensemble" in inputs:  # which member(s) supplied the answer (runner/ensemble.py)
        record["ensemble"] = inputs["ensemble"]
    return record


def read_stamp(folder: Path) -> dict[str, Any]:
    """What ``STAMP_FILE`` says the folder's files were written from ({} if unknown)."""
    return read_json_object(folder / STAMP_FILE)


def update_sample_files(
    conn: sqlite3.Connection, run_id: str, planned: int, task: str, folder: Path,
    written: dict[str, Any],
) -> dict[str, int]:  # fmt: skip
    """The run's sample files brought up to date from ``written`` (their stamp,
    ``read_stamp``): new rounds appended when that is all that changed since they were
    written (``append_rounds``), else written afresh."""
    appended = append_rounds(conn, run_id, planned, task, folder, written)
    return appended or write_sample_files(conn, run_id, planned, task, folder)


def append_rounds(
    conn: sqlite3.Connection, run_id: str, planned: int, task: str, folder: Path,
    written: dict[str, Any],
) -> dict[str, int] | None:  # fmt: skip
    """Append the samples stored since the files were written (``written``: their
    stamp) to ``results.jsonl`` and ``samples.csv``, and write the task's files from the
    latest round; their names and sizes. None, writing nothing, unless those samples
    all belong to rounds after the last one written, the samples written are all still
    stored (same count and latest ``created_at`` up to the highest rowid written:
    samples are only inserted or deleted, and a re-inserted one is newer) and the files
    are the ones written (same format, same sizes).

    A schedule adds one round per tick: rewriting every round's samples of every run
    after each made a round cost the whole store (a minute at a million samples)."""
    files = written.get("files") or {}
    old = (written.get("samples"), written.get("max_created_at"))
    rowid, last_round = written.get("max_rowid"), written.get("last_round")
    same_format = (written.get("run_id"), written.get("task"), written.get("planned_samples"),
                   written.get("fields"), written.get("version")) == (
                   run_id, task, planned, list(SAMPLE_FIELDS), __version__)  # fmt: skip
    if not (same_format and isinstance(rowid, int) and isinstance(last_round, int)):
        return None
    try:
        if any((folder / n).stat().st_size != files.get(n) for n in (RESULTS_FILE, SAMPLES_CSV)):
            return None
        with (folder / SAMPLES_CSV).open(encoding="utf-8", newline="") as f:
            columns = next(csv.reader(f))
    except (OSError, StopIteration, csv.Error, UnicodeDecodeError):
        return None
    kept = conn.execute(
        "SELECT COUNT(*), MAX(created_at) FROM samples "
        "WHERE run_id = ? AND sample_index < ? AND rowid <= ?",
        (run_id, planned, rowid),
    ).fetchone()
    if tuple(kept) != old:
        return None
    records = _records(conn, run_id, planned, "AND rowid > ?", (rowid,))
    known = set(columns)
    if not records or records[0]["round"] <= last_round or any(r.keys() - known for r in records):
        return None
    atomic_append_text(folder / RESULTS_FILE, _jsonl(records))
    atomic_append_text(folder / SAMPLES_CSV, samples_csv(records, columns, header=False))
    return _write_task_files(task, records, folder, [RESULTS_FILE, SAMPLES_CSV])


def _records(
    conn: sqlite3.Connection, run_id: str, planned: int, where: str = "", args: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """The run's stored samples below ``planned`` (and ``where``) as records, in order
    of round and index; rows read as plain tuples, each made its record in one slice."""
    cursor = conn.cursor()
    cursor.row_factory = None
    rows = cursor.execute(
        f"SELECT {', '.join(SAMPLE_FIELDS)} FROM samples WHERE run_id = ? AND sample_index < ? "
        f"{where} ORDER BY round, sample_index",
        (run_id, planned, *args),
    ).fetchall()
    return [_record(row) for row in rows]


def _write_task_files(
    task: str, records: list[dict[str, Any]], folder: Path, names: list[str]
) -> dict[str, int]:
    """The task's files from the latest round of ``records`` (one answer per question);
    the names and sizes of those and of ``names``."""
    last = max((r["round"] for r in records), default=1)
    latest = [r for r in records if r["round"] == last]
    for name, text in run_files(task, latest).items():
        atomic_write_text(folder / name, text)
        names.append(name)
    return {name: (folder / name).stat().st_size for name in names}


def write_sample_files(
    conn: sqlite3.Connection, run_id: str, planned: int, task: str, folder: Path
) -> dict[str, int]:
    """``results.jsonl``, ``samples.csv`` and the task's files; their names and sizes.

    A report over a store that no batch wrote (or after an upgrade) writes every stored
    sample once, so this is the per-sample cost of such a report: rows are read as plain
    tuples, each becomes its record in one slice, and the CSV converts only the cells
    that ``format_cell`` would write differently from ``csv`` itself (floats, JSON)."""
    records = _records(conn, run_id, planned)
    atomic_write_text(folder / RESULTS_FILE, _jsonl(records))
    atomic_write_text(folder / SAMPLES_CSV, samples_csv(records))
    return _write_task_files(task, records, folder, [RESULTS_FILE, SAMPLES_CSV])


def _jsonl(records: list[dict[str, Any]]) -> str:
    """``results.jsonl``'s lines for ``records``: one JSON object each."""
    return "".join([_encode(r) + "\n" for r in records])


def samples_csv(
    records: list[dict[str, Any]], columns: list[str] | None = None, header: bool = True
) -> str:
    """``results.jsonl`` as a spreadsheet: one row per sample, the same columns; nested
    values (messages, scores) as JSON text, unknown values empty (never 0), floats to 6
    significant digits (``format_cell``) but the times of day: Unix seconds in full (to
    6 digits, ``1.79601e+09``, they would say only which 20 minutes)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if columns is None:
        columns = list(dict.fromkeys(k for r in records for k in r)) or list(RECORD_KEYS)
    if header:
        writer.writerow(columns)
    width = len(columns)
    times = [i for i, name in enumerate(columns) if name in _TIMES]
    for record in records:
        # A record with every column has them in the columns' order (``_record``).
        values = list(record.values() if len(record) == width else map(record.get, columns))
        # ``csv`` writes None as "" and str/int/bool as ``str()``, as ``format_cell``
        # does: only the other cells (floats, nested values) go through ``_cell``.
        cells = [v if type(v) in _AS_IS else _cell(v) for v in values]
        for i in times:
            if type(values[i]) is float:
                cells[i] = repr(values[i])
        writer.writerow(cells)
    return buf.getvalue()


_TIMES = frozenset({"sent_at", "received_at", "intended_send_at", "actual_send_at"})


_AS_IS = frozenset({str, int, bool, type(None)})


# One encoder: ``json.dumps`` with an option builds a new one per call (2 µs a cell).
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _cell(value: Any) -> str:
    """``format_cell``, with nested values as JSON."""
    if type(value) is dict or type(value) is list:
        return _encode(value)
    return format_cell(value)


@dataclass(frozen=True)
class FolderJob:
    """What a worker brings up to date for one run: its sample files, its summary
    cache (``exports.write_summary_cache``), or both; ``work``: about how many samples'
    worth (a summary costs a third of writing a sample's lines)."""

    run: sqlite3.Row
    folder: Path
    files: bool
    summary: bool
    work: int


def _lpt(jobs: list[FolderJob], workers: int) -> list[list[dict[str, Any]]]:
    """The jobs dealt to ``workers`` lists, largest first to the least loaded: no
    worker is left with much more to do than the others."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for job in sorted(jobs, key=lambda job: -job.work):
        k = loads.index(min(loads))
        loads[k] += job.work
        shares[k].append(
            {"run_id": job.run["run_id"], "planned": int(job.run["planned_samples"]),
             "task": job.run["task"], "folder": str(job.folder), "files": job.files,
             "summary": job.summary}
        )  # fmt: skip
    return shares


class FolderWorkers:
    """Brings the given runs' folders up to date in worker processes, started on entry,
    when there are at least two runs and ``PARALLEL_MIN_SAMPLES`` samples' worth of work;
    else ``files`` returns None and the caller does it all itself.

    A worker is a plain ``python -m fleetbench.report.fileworker`` (jobs as JSON on its
    stdin, one JSON line per run done on its stdout), not a ``multiprocessing`` child:
    spawned children import the parent's ``__main__`` again (a script without a main
    guard would run again in each), and forked ones inherit the locks of the parent's
    threads (the import warm-up, a meter) as they were. What a worker did not do (it
    failed, or could not start) is left to the caller, which does it in-process and
    meets the same error, if it is one, where it can report it."""

    def __init__(self, store: Store, jobs: list[FolderJob], workers: int | None = None) -> None:
        """``workers``: how many processes at most (default: the usable CPUs)."""
        self._jobs, self._workers, self._path = jobs, workers, store.path
        self._procs: list[tuple[subprocess.Popen[bytes], IO[str]]] = []
        self._files: dict[str, dict[str, int]] | None = None

    def __enter__(self) -> FolderWorkers:
        total = sum(job.work for job in self._jobs)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(len(self._jobs), self._workers or cpus or 1)
        if len(self._jobs) < 2 or total < PARALLEL_MIN_SAMPLES or workers < 2:
            return self
        for share in _lpt(self._jobs, workers):
            # Files, not pipes: nothing waits for the other side while the parent
            # goes on (a full pipe would stop the worker).
            jobs, out = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            jobs.write(json.dumps(share))
            jobs.seek(0)
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "fleetbench.report.fileworker", str(self._path)],
                    stdin=jobs, stdout=out, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            except OSError:
                out.close()
                continue  # its runs are left to the caller
            finally:
                jobs.close()
            self._procs.append((proc, out))
        return self

    @property
    def started(self) -> int:
        """How many workers were started."""
        return len(self._procs)

    def wait(self) -> None:
        """Until every worker is done (then their summary caches are in the folders)."""
        if self._files is None:
            self._files = {}
            for proc, out in self._procs:
                proc.wait()
                out.seek(0)
                for line in out:  # what it did, even if it failed later
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        done = json.loads(line)
                        if done.get("files") is not None:
                            self._files[str(done["run_id"])] = dict(done["files"])

    def files(self, run_id: str) -> dict[str, int] | None:
        """The names and sizes of the sample files written for the run; None: not
        written here."""
        self.wait()
        assert self._files is not None
        return self._files.get(run_id)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc, out in self._procs:  # interrupted (or done): never leave a worker behind
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            out.close()
