"""A run's sample files (``results.jsonl``, ``samples.csv``, the task's files), and
bringing many runs' folders up to date in worker processes.

A report over a store that no batch wrote (a store from another machine, a new
fleetbench version) writes every stored sample once. A thousand samples of the
1M-sample store (``benchmarks/sample_files.py``): 4.5 ms to read (one SELECT for both
files, no stored JSON parsed), 3.8 ms of lines (orjson), 4.3 ms of spreadsheet (made a
column at a time; 6.2 ms through ``csv.writer`` a row at a time), plus ~3 µs of kernel
time a sample's kilobyte of text on these disks. The runs are independent, so
``FolderWorkers`` spreads them over worker processes, each reading the store through
its own read-only connection, summarising the runs whose summaries must be made again
(``exports.write_summary_cache``) and then writing every run's documents.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import select
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from fleetbench import csvtext, jsontext
from fleetbench.fsutil import append_text, atomic_write_text, read_json_object
from fleetbench.store.aggregates import tuple_cursor
from fleetbench.store.rows import SAMPLE_FIELDS, SampleRow
from fleetbench.store.sqlite import Store
from fleetbench.tasks import run_files

RESULTS_FILE = "results.jsonl"
SAMPLES_CSV = "samples.csv"
# What the sample files of a run folder were written from (``exports.write_run_files``).
STAMP_FILE = ".samples-stamp.json"
# The layout of ``results.jsonl`` and ``samples.csv``: raise it with any change to what
# they hold or how it is written (``test_samplefiles`` holds the files of its number).
# Files of another layout are written afresh; a new fleetbench version alone rewrites
# only the task's files (one round): a report after an upgrade rewrote every sample of
# the store (1.1 GB at a million samples).
FILES_FORMAT = 1

# Below this many samples to write, starting worker processes (about 0.3 s each, an
# interpreter and fleetbench's imports) costs more than it saves.
PARALLEL_MIN_SAMPLES = 20_000

# glibc gives the top of its heap back to the kernel whenever more than 128 KB is free
# there, so a worker that builds and drops a run's megabyte of lines at every run
# faults the same pages in again each time: ~2,400 page faults a run, 4.4 µs each on
# these VMs, a third of a first report's CPU. Keeping 64 MB at the top (untouched
# pages cost nothing) takes them to ~50. Only where the user set no malloc tuning.
WORKER_ENV = {"MALLOC_TOP_PAD_": str(64 << 20)}

_INPUT = SAMPLE_FIELDS.index("input_json")
_SCORES = SAMPLE_FIELDS.index("scores_json")
# A record's keys: ``SAMPLE_FIELDS`` with the stored input unpacked and scores decoded.
RECORD_KEYS: tuple[str, ...] = (
    *SAMPLE_FIELDS[:_INPUT], "prompt", "messages",
    *SAMPLE_FIELDS[_INPUT + 1 : _SCORES], "scores", *SAMPLE_FIELDS[_SCORES + 1 :],
)  # fmt: skip

# Each stored column's declared type (``"float | None"``...): which cells are floats.
_FIELD_TYPES = {f.name: str(f.type) for f in fields(SampleRow)}


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
    after each made a round cost the whole store (a minute at a million samples). The
    lines are appended in place (``append_text``): an append cut short leaves sizes
    that the stamp does not record, so the next report writes the files afresh."""
    files = written.get("files") or {}
    old = (written.get("samples"), written.get("max_created_at"))
    rowid, last_round = written.get("max_rowid"), written.get("last_round")
    same_format = (written.get("run_id"), written.get("task"), written.get("planned_samples"),
                   written.get("fields"), written.get("format")) == (
                   run_id, task, planned, list(SAMPLE_FIELDS), FILES_FORMAT)  # fmt: skip
    if not (same_format and isinstance(rowid, int) and isinstance(last_round, int)):
        return None
    try:
        if any((folder / n).stat().st_size != files.get(n) for n in (RESULTS_FILE, SAMPLES_CSV)):
            return None
        with (folder / SAMPLES_CSV).open(encoding="utf-8", newline="") as f:
            columns = next(csv.reader(f))
    except (OSError, StopIteration, csv.Error, UnicodeDecodeError):
        return None
    kept = conn.execute(  # as ``samples_stamp`` counts: created_at of any index
        "SELECT COUNT(CASE WHEN sample_index < ?2 THEN 1 END), MAX(created_at) FROM samples "
        "WHERE run_id = ?1 AND rowid <= ?3",
        (run_id, planned, rowid),
    ).fetchone()
    if tuple(kept) != old:
        return None
    rows = _rows(conn, run_id, planned, "AND rowid > ?", (rowid,))
    if not rows:  # the same samples (another fleetbench version): the task's files only
        return _write_task_files(conn, run_id, planned, task, last_round, folder)
    # The new rows' columns must be the header's (an ensemble's provenance adds one).
    if rows[0][_ROUND] <= last_round or _columns(rows, columns) != columns:
        return None
    append_text(folder / RESULTS_FILE, _jsonl(rows))
    append_text(folder / SAMPLES_CSV, _csv(rows, columns, header=False))
    return _write_task_files(conn, run_id, planned, task, rows[-1][_ROUND], folder)


# One SELECT for both files, its first columns in ``RECORD_KEYS``'s order: the stored
# columns as they are, the stored input's prompt and messages as JSON text (SQLite's
# JSON functions take them out, in C) and the scores as stored; then the ensemble's
# provenance as JSON, and the prompt and provenance as text for the spreadsheet.
_N = len(RECORD_KEYS)
_SELECT = ", ".join(
    [*SAMPLE_FIELDS[:_INPUT], "input_json -> '$.prompt'", "input_json -> '$.messages'",
     *SAMPLE_FIELDS[_INPUT + 1 :], "input_json -> '$.ensemble'", "input_json ->> '$.prompt'",
     "input_json ->> '$.ensemble'"]
)  # fmt: skip
_STORED = ", ".join(SAMPLE_FIELDS)
_ROUND = RECORD_KEYS.index("round")
_PROMPT = RECORD_KEYS.index("prompt")
# Cells that are JSON text already: embedded in a line as they are, never parsed.
_JSON_CELLS = (_PROMPT, RECORD_KEYS.index("messages"), RECORD_KEYS.index("scores"))
_TIMES = frozenset({"sent_at", "received_at", "intended_send_at", "actual_send_at"})
# The float cells the spreadsheet writes to 6 significant digits (``format_cell``); the
# times of day stay floats, which ``csv`` writes in full (``repr``).
_FLOATS = tuple(
    i for i, name in enumerate(RECORD_KEYS)
    if name not in _TIMES and _FIELD_TYPES.get(name, "").startswith("float")
)  # fmt: skip


def _fetch(
    conn: sqlite3.Connection, columns: str, run_id: str, planned: int, where: str,
    args: tuple[Any, ...],
) -> list[tuple[Any, ...]]:  # fmt: skip
    """``columns`` of the run's stored samples below ``planned`` (and ``where``), in
    order of round and index, as plain tuples."""
    return (
        tuple_cursor(conn)
        .execute(
            f"SELECT {columns} FROM samples WHERE run_id = ? AND sample_index < ? {where} "
            "ORDER BY round, sample_index",
            (run_id, planned, *args),
        )
        .fetchall()
    )


def _rows(
    conn: sqlite3.Connection, run_id: str, planned: int, where: str = "", args: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """The run's samples (``_fetch``) as ``_SELECT``'s tuples: both files' rows."""
    return _fetch(conn, _SELECT, run_id, planned, where, args)


def _records(
    conn: sqlite3.Connection, run_id: str, planned: int, where: str, args: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """The run's samples (``_fetch``) as records (``_record``)."""
    return [_record(row) for row in _fetch(conn, _STORED, run_id, planned, where, args)]


def _write_task_files(
    conn: sqlite3.Connection, run_id: str, planned: int, task: str, last: int | None,
    folder: Path,
) -> dict[str, int]:  # fmt: skip
    """The task's files from the run's round ``last``, its latest (one answer per
    question, as records; None: no sample stored); the names and sizes of those and of
    the two sample files."""
    names = [RESULTS_FILE, SAMPLES_CSV]
    latest = _records(conn, run_id, planned, "AND round = ?", (last,)) if last else []
    for name, text in run_files(task, latest).items():
        atomic_write_text(folder / name, text)
        names.append(name)
    return {name: (folder / name).stat().st_size for name in names}


def write_sample_files(
    conn: sqlite3.Connection, run_id: str, planned: int, task: str, folder: Path
) -> dict[str, int]:
    """``results.jsonl``, ``samples.csv`` and the task's files; their names and sizes.

    A report over a store that no batch wrote (or after an upgrade) writes every stored
    sample once, so this is the per-sample cost of such a report: one SELECT gives both
    files' rows as plain tuples, the stored JSON is never parsed (SQLite takes the
    prompt out; orjson embeds the JSON text as it is), and the spreadsheet is made a
    column at a time (``_csv``)."""
    rows = _rows(conn, run_id, planned)
    atomic_write_text(folder / RESULTS_FILE, _jsonl(rows))
    atomic_write_text(folder / SAMPLES_CSV, _csv(rows))
    return _write_task_files(
        conn, run_id, planned, task, rows[-1][_ROUND] if rows else None, folder
    )


def _jsonl(rows: list[tuple[Any, ...]]) -> bytes:
    """``results.jsonl``'s lines for ``_SELECT``'s ``rows``: one JSON object each, the
    record of ``_record`` (stored JSON embedded as it is, not parsed and written again)."""
    dumps, fragment, keys = orjson.dumps, orjson.Fragment, RECORD_KEYS
    lines = []
    for row in rows:
        values = list(row[:_N])
        for i in _JSON_CELLS:  # empty stored scores read as none, as ``_record`` has it
            values[i] = fragment(values[i]) if values[i] else None
        record = dict(zip(keys, values))  # noqa: B905 (the row is longer on purpose)
        if row[_N] is not None:  # which member(s) supplied the answer (runner/ensemble.py)
            record["ensemble"] = fragment(row[_N])
        lines.append(dumps(record))
    return b"\n".join(lines) + b"\n" if lines else b""


def _columns(rows: list[tuple[Any, ...]], columns: list[str] | None = None) -> list[str]:
    """The spreadsheet's columns for ``rows``: ``RECORD_KEYS``, and ``ensemble`` when
    an ensemble's row (or ``columns``, the header written) has it."""
    ensemble = any(row[_N] is not None for row in rows) or "ensemble" in (columns or ())
    return [*RECORD_KEYS, "ensemble"] if ensemble else list(RECORD_KEYS)


def _csv(rows: list[tuple[Any, ...]], columns: list[str] | None = None, header: bool = True) -> str:
    """``samples.csv`` for ``_SELECT``'s ``rows`` in ``columns`` (``_columns``):
    ``results.jsonl`` as a spreadsheet, one row per sample, the same columns; nested
    values (messages, scores) as JSON text, unknown values empty (never 0), floats to 6
    significant digits (``format_cell``) but the times of day: Unix seconds in full (to
    6 digits, ``1.79601e+09``, they would say only which 20 minutes).

    The text ``csv.writer`` would write, made a column at a time (``csvtext``). Most of
    the time is Python's float formatting (two columns of times in full, 0.85 ms a
    thousand rows; four of figures, 0.55 ms). SQLite's ``printf('%.6g')`` is no way
    out: 0.75 µs a value, and it rounds otherwise (``-0``, ``inf``, halfway points)."""
    columns = _columns(rows) if columns is None else columns
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(columns)
    if not rows:
        return buf.getvalue()
    stored = list(zip(*rows, strict=True))
    order = [*range(_PROMPT), _N + 1, *range(_PROMPT + 1, _N)]  # the prompt as text
    if len(columns) > _N:
        order.append(_N + 2)  # the provenance as text
    cells = [csvtext.cells(stored[i], i in _FLOATS) for i in order]
    return buf.getvalue() + csvtext.rows_text(cells)


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


def worker_env() -> dict[str, str]:
    """The environment of a worker process: this one's, with ``WORKER_ENV`` where
    the user has not set those variables."""
    return WORKER_ENV | dict(os.environ)


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

    Two phases: first each worker writes its share of sample files and summary caches
    (``wait`` returns when all have); then, once the caller has the summaries (stars
    and knees compare runs), ``documents`` hands the runs' ``summary.json``,
    ``emissions.json`` and stamps to the same workers, which write them while the
    caller goes on (the report page), and ``finish`` waits for them. Written in the
    caller, the documents were a serial second or two after a round of 1,000 runs.

    A worker is a plain ``python -m fleetbench.report.fileworker`` (its first jobs in a
    file, the documents' as one JSON line on its stdin, one JSON line per run done on
    its stdout, a byte on a pipe when its first jobs are done), not a
    ``multiprocessing`` child: spawned children import the parent's ``__main__`` again
    (a script without a main guard would run again in each), and forked ones inherit
    the locks of the parent's threads (the import warm-up, a meter) as they were. What a
    worker did not do (it failed, or could not start) is left to the caller, which does
    it in-process and meets the same error, if it is one, where it can report it."""

    def __init__(self, store: Store, jobs: list[FolderJob], workers: int | None = None) -> None:
        """``workers``: how many processes at most (default: the usable CPUs)."""
        self._jobs, self._workers, self._path = jobs, workers, store.path
        self._procs: list[_Worker] = []
        self._files: dict[str, dict[str, int]] | None = None

    def __enter__(self) -> FolderWorkers:
        total = sum(job.work for job in self._jobs)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(len(self._jobs), self._workers or cpus or 1)
        if len(self._jobs) < 2 or total < PARALLEL_MIN_SAMPLES or workers < 2:
            return self
        for share in _lpt(self._jobs, workers):
            # Not started (no pass_fds where there is no fork: Windows): its runs are left
            # to the caller.
            with contextlib.suppress(OSError, ValueError):
                self._procs.append(_Worker.start(self._path, share))
        return self

    @property
    def started(self) -> int:
        """How many workers were started."""
        return len(self._procs)

    def wait(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Until every worker is done with its first jobs (then their summary caches are
        in the folders); ``progress`` is told, a few times a second, how many of the
        jobs are done, and how many there are."""
        if self._files is None:
            if progress is not None and self._procs:
                self._watch(progress)
            self._files = {}
            for worker in self._procs:
                worker.first_jobs_done()
                for done in worker.lines():  # what it did, even if it failed later
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        if done.get("files") is not None:
                            self._files[str(done["run_id"])] = dict(done["files"])

    def _watch(self, progress: Callable[[int, int], None]) -> None:
        """``wait``'s progress: the runs the workers have printed as done, until each
        has signalled (or ended)."""
        while signals := [w.signal for w in self._procs if w.signal is not None]:
            ready, _, _ = select.select(signals, [], [], 0.25)
            for worker in self._procs:
                if worker.signal in ready:
                    worker.first_jobs_done()
            progress(sum(w.done() for w in self._procs), len(self._jobs))

    def files(self, run_id: str) -> dict[str, int] | None:
        """The names and sizes of the sample files written for the run; None: not
        written here."""
        self.wait()
        assert self._files is not None
        return self._files.get(run_id)

    def documents(self, jobs: list[dict[str, Any]]) -> bool:
        """Hand the workers these runs' documents (``exports.write_run_files``'s
        arguments: ``run`` as a dict, ``summary``, ``folder``, ``stamp``, ``files``),
        dealt in turn; they write them while the caller goes on. False: no worker."""
        self.wait()
        if not self._procs:
            return False
        shares: list[list[dict[str, Any]]] = [[] for _ in self._procs]
        for k, job in enumerate(jobs):
            shares[k % len(shares)].append(job)
        for worker, share in zip(self._procs, shares, strict=True):
            worker.hand(share)
        return True

    def finish(self) -> set[str]:
        """Until every worker has ended; the runs whose documents they wrote."""
        done: set[str] = set()
        for worker in self._procs:
            worker.close_jobs()
            worker.proc.wait()
            for line in worker.lines():
                if line.get("documents") and "run_id" in line:
                    done.add(str(line["run_id"]))
        return done

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for worker in self._procs:  # interrupted (or done): never leave a worker behind
            worker.close(kill=kind is not None)


@dataclass
class _Worker:
    """One ``fileworker`` process: its stdin (the documents' jobs), its stdout (a file:
    nothing waits for the other side while the parent goes on, as a full pipe would
    stop the worker) and the read end of the pipe it signals on."""

    proc: subprocess.Popen[bytes]
    out: IO[bytes]
    signal: int | None

    @classmethod
    def start(cls, database: Path, share: list[dict[str, Any]]) -> _Worker:
        out = tempfile.TemporaryFile("w+b")  # noqa: SIM115 (kept: the worker's stdout)
        read, write = os.pipe()
        try:
            with tempfile.TemporaryFile("w+") as jobs:
                jobs.write(json.dumps(share))
                jobs.flush()
                jobs.seek(0)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "fleetbench.report.fileworker", str(database),
                     str(jobs.fileno()), str(write)],
                    stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL,
                    pass_fds=(jobs.fileno(), write), env=worker_env(),
                )  # fmt: skip
        except BaseException:
            out.close()
            os.close(read)
            raise
        finally:
            os.close(write)
        return cls(proc, out, read)

    def first_jobs_done(self) -> None:
        """Until the worker says its first jobs are done, or has ended."""
        if self.signal is not None:
            with contextlib.suppress(OSError):
                os.read(self.signal, 1)  # b"": it ended without saying so
            os.close(self.signal)
            self.signal = None

    def printed(self) -> bytes:
        """What the worker has printed so far. Read at an offset (``pread``): the
        worker shares the file's position, and writes on."""
        fd = self.out.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def lines(self) -> list[dict[str, Any]]:
        """``printed``, a dict a line."""
        out = []
        for line in self.printed().splitlines():
            with contextlib.suppress(ValueError):
                if isinstance(value := json.loads(line), dict):
                    out.append(value)
        return out

    def done(self) -> int:
        """How many lines (jobs done) the worker has printed so far."""
        return self.printed().count(b"\n")

    def hand(self, jobs: list[dict[str, Any]]) -> None:
        """The documents' jobs, as one line (a worker that died takes none)."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.write(jsontext.dumps(jobs).encode() + b"\n")
            self.close_jobs()

    def close_jobs(self) -> None:
        """No (more) jobs: at the end of its stdin, the worker ends."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def close(self, kill: bool) -> None:
        self.close_jobs()
        if kill and self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.first_jobs_done()
        self.out.close()
