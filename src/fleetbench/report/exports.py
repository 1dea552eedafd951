"""Files derived from the store: per-run ``summary.json``/``results.jsonl``/
``samples.csv``/``emissions.json``/task files and the master CSV.

They are regenerated from the store after every run and every batch, so they are
always consistent with it, and written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fleetbench import __version__, jsontext
from fleetbench.fsutil import atomic_write_text, overwrite_text
from fleetbench.report.aggregate import summarize_run
from fleetbench.report.load import mark_knees
from fleetbench.report.master import run_dir, write_master_csv
from fleetbench.report.samplefiles import (
    FILES_FORMAT,
    STAMP_FILE,
    FolderJob,
    FolderWorkers,
    read_stamp,
    update_sample_files,
)
from fleetbench.report.stars import ReferenceRow, assign_stars, rate_runs
from fleetbench.store.rows import SAMPLE_FIELDS
from fleetbench.store.sqlite import RUNNING, Store

SUMMARY_FILE = "summary.json"
EMISSIONS_FILE = "emissions.json"
# The run's summary as ``summarize_run`` made it, with what it was made from
# (``ResultsExporter``): the next process reuses it while neither changed.
SUMMARY_CACHE = ".summary-cache.json"

# The energy breakdown of ``emissions.json``, from the run's summary (empty: unknown).
EMISSIONS_KEYS = (
    "energy_scope", "energy_method", "energy_unmeasured_reason", "energy_wh",
    "gpu_energy_wh", "cpu_energy_wh", "gpu_energy_gross_wh", "cpu_energy_gross_wh",
    "gpu_idle_w", "cpu_idle_w", "idle_baseline_s", "reasoning_energy_wh",
    "answer_energy_wh", "avg_energy_per_prompt_wh", "wh_per_1000_queries",
    "tokens_per_joule", "co2_emissions_g", "carbon_region", "carbon_intensity_g_per_kwh",
    "carbon_intensity_source", "shared_device", "gpu_names",
)  # fmt: skip


def write_run_files(
    store: Store,
    run: sqlite3.Row | dict[str, Any],
    summary: dict[str, Any],
    folder: Path,
    stamp: dict[str, Any] | None = None,
    sample_files: dict[str, int] | None = None,
) -> None:
    """Write the run's files into ``folder``; each only when its content changed.

    The sample files (``results.jsonl``, ``samples.csv``, the task's files) hold every
    stored sample, so rewriting them for every run at every report made a report over
    a long schedule cost the whole store each time. They are rewritten only when the
    run's samples changed since they were written, which ``STAMP_FILE`` records (see
    ``samples_stamp``), or when one of them is missing or no longer the size written.
    ``summary.json`` and ``emissions.json`` are rebuilt when the run's row or its
    summary changed (a hash of both in ``STAMP_FILE``) or a file is not the size
    written, and written when their text differs from the file's. ``stamp`` is the
    run's ``samples_stamp`` when the caller has it; ``sample_files`` the names and
    sizes of sample files another process has just written from that stamp.
    """
    stamp = samples_stamp(store, run) if stamp is None else stamp
    written = read_stamp(folder)
    files = dict(written.get("files") or {})
    if sample_files is None and not _fresh(folder, stamp, written):
        sample_files = update_sample_files(
            store.conn, run["run_id"], int(run["planned_samples"]), run["task"], folder, written
        )
    if sample_files is not None:
        files = {n: size for n, size in files.items() if n in (SUMMARY_FILE, EMISSIONS_FILE)}
        files |= sample_files
    # summary.json and emissions.json are made from the run's row (its attempts change
    # it), the summary (stars and knees included) and the attempts: unchanged row and
    # summary, unchanged files, so reading 100 rounds' attempts again is not needed.
    document = hashlib.sha256(
        jsontext.dumps([[run[k] for k in run.keys()], summary], sort_keys=True).encode()  # noqa: SIM118
    ).hexdigest()
    documents = (SUMMARY_FILE, EMISSIONS_FILE)
    if written.get("document") != document or not _sizes_match(folder, written, documents):
        _write_documents(store, run, summary, folder)
        files |= {name: (folder / name).stat().st_size for name in documents}
    new = {**stamp, "document": document, "files": files}
    if new != written:
        overwrite_text(folder / STAMP_FILE, json.dumps(new) + "\n")


def _write_documents(
    store: Store, run: sqlite3.Row | dict[str, Any], summary: dict[str, Any], folder: Path
) -> None:
    """``summary.json`` and ``emissions.json``, each written when its text changed."""
    attempts = [
        {
            k: a[k]
            for k in a.keys()  # noqa: SIM118 (sqlite3.Row iterates values)
            if k not in ("host_json", "details_json", "energy_json")
        }
        | {
            "host": _loads(a["host_json"]),
            "load": _loads(a["details_json"]),
            "energy": _loads(a["energy_json"]),
        }
        for a in store.attempts(run["run_id"])
    ]
    document = {
        "summary": summary,
        "config": json.loads(run["config_json"]),
        "attempts": attempts,
    }
    _write_if_changed(folder / SUMMARY_FILE, jsontext.pretty(document) + "\n")
    emissions = {
        "run_id": run["run_id"],
        **{k: summary.get(k) for k in EMISSIONS_KEYS},
        "attempts": [{"attempt": a["attempt"], **(a["energy"] or {})} for a in attempts],
    }
    _write_if_changed(folder / EMISSIONS_FILE, jsontext.pretty(emissions) + "\n")


def samples_stamp(store: Store, run: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """What the run's sample files are made of: its stored samples below the plan's
    count (how many, the highest rowid and the latest ``created_at``: samples are only
    ever inserted or deleted, and a re-inserted one is newer), the task (its files),
    the format (the sample columns, ``FILES_FORMAT``) and this fleetbench's version (the
    task's files, the summary). Two index-only scans (counts on the primary key,
    ``created_at`` of all the run's samples on ``samples_figures``): reading every
    sample row for its ``created_at`` cost 0.4 ms a run of 1,000 samples, a fifth of a
    report over an unchanged store.
    """
    count, rowid, last_round, created = store.conn.execute(
        "SELECT COUNT(*), MAX(rowid), MAX(round), "
        "(SELECT MAX(created_at) FROM samples WHERE run_id = ?1) FROM samples "
        "WHERE run_id = ?1 AND sample_index < ?2",
        (run["run_id"], int(run["planned_samples"])),
    ).fetchone()
    return {
        "run_id": run["run_id"],
        "task": run["task"],
        "planned_samples": int(run["planned_samples"]),
        "samples": count,
        "max_rowid": rowid,
        "max_created_at": created,
        "last_round": last_round,
        "fields": list(SAMPLE_FIELDS),
        "format": FILES_FORMAT,
        "version": __version__,
    }


def _made_of(written: dict[str, Any]) -> dict[str, Any]:
    """The ``samples_stamp`` a folder's files were written from (its ``STAMP_FILE``)."""
    return {k: v for k, v in written.items() if k not in ("files", "document")}


def _fresh(folder: Path, stamp: dict[str, Any], written: dict[str, Any]) -> bool:
    """Whether the sample files in ``folder`` were written from these samples and are
    all still there, at the size written."""
    made_from = _made_of(written)
    names = [n for n in (written.get("files") or {}) if n not in (SUMMARY_FILE, EMISSIONS_FILE)]
    return made_from == stamp and bool(names) and _sizes_match(folder, written, names)


def _to_write(stamp: dict[str, Any], written: dict[str, Any]) -> int:
    """About how many samples bringing the files from ``written`` to ``stamp`` writes:
    the new ones when only rounds were added (``append_rounds``), else all."""
    added = int(stamp["samples"]) - int(written.get("samples") or 0)
    rounds = stamp.get("last_round"), written.get("last_round")
    if isinstance(rounds[1], int) and isinstance(rounds[0], int) and rounds[0] > rounds[1]:
        return max(added, 0)
    return int(stamp["samples"])


def _sizes_match(folder: Path, written: dict[str, Any], names: Iterable[str]) -> bool:
    files = written.get("files")
    try:
        return isinstance(files, dict) and all(
            (folder / name).stat().st_size == files.get(name) for name in names
        )
    except OSError:
        return False


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def _loads(text: str | None) -> Any:
    return jsontext.loads(text) if text else None


class ResultsExporter:
    """Exports for one batch (or one report): keeps every run's summary between calls.

    Summarising a run reads all its samples, so a batch that exported after each run
    would re-read the whole store every time. Instead a run is re-summarised only when
    its store row changed since it was summarised (status, error, settings, planned
    samples and ``updated_at`` change whenever its samples may have: an attempt starts
    or ends, ``--fresh``), while it is running, or when named. Stars are re-rated
    across all summaries every time, since a new run can move its group's range.
    """

    def __init__(
        self, store: Store, output: Path, stars_reference: list[ReferenceRow] | None = None
    ) -> None:
        self.store, self.output, self.stars_reference = store, output, stars_reference
        self._cache: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._stamps: dict[str, dict[str, Any]] = {}

    def export(
        self,
        run_ids: list[str],
        meanwhile: Callable[[list[dict[str, Any]]], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Rewrite the given runs' files (all runs if empty) and the master CSV; returns
        every run's summary. Stars use the exporter's ``stars_reference`` when given,
        else the reference named by the latest plan. ``meanwhile`` (the report page) is
        called with the summaries once the master CSV is written, while worker
        processes, if any, write the runs' documents. ``progress`` is told how many
        runs' folders worker processes have brought up to date, of how many (a first
        report over a million samples takes a while)."""
        rows = self.store.runs()
        self._stamps = {}
        jobs = [job for row in rows if (job := self._job(row, run_ids)) is not None]
        # Sample files to write and summaries to make go to worker processes, if many
        # (see ``FolderWorkers``); then the summaries are read from their caches.
        with FolderWorkers(self.store, jobs) as workers:
            workers.wait(progress)
            summaries = [self._summary(row, force=row["run_id"] in run_ids) for row in rows]
            if self.stars_reference is not None:
                assign_stars(summaries, self.stars_reference)
            else:
                rate_runs(summaries, rows)
            mark_knees(summaries)
            todo = [
                (row, summary)
                for row, summary in zip(rows, summaries, strict=True)
                if not run_ids or row["run_id"] in run_ids
            ]
            handed = workers.documents([self._document_job(r, s, workers) for r, s in todo])
            if not handed:
                self._write_here(todo, workers, set())
            write_master_csv(self.output, summaries)
            if meanwhile is not None:
                meanwhile(summaries)
            if handed:  # what a worker did not write (it failed) is written here
                self._write_here(todo, workers, workers.finish())
        return summaries

    def _document_job(
        self, row: sqlite3.Row, summary: dict[str, Any], workers: FolderWorkers
    ) -> dict[str, Any]:
        """``write_run_files``'s arguments for a worker (``FolderWorkers.documents``)."""
        return {
            "run": dict(zip(row.keys(), row, strict=True)),
            "summary": summary,
            "folder": str(run_dir(self.output, row["run_id"])),
            "stamp": self._stamp(row),
            "files": workers.files(row["run_id"]),
        }

    def _write_here(
        self,
        todo: list[tuple[sqlite3.Row, dict[str, Any]]],
        workers: FolderWorkers,
        done: set[str],
    ) -> None:
        """``write_run_files`` here for the runs not in ``done``."""
        for row, summary in todo:
            if row["run_id"] not in done:
                write_run_files(
                    self.store, row, summary, run_dir(self.output, row["run_id"]),
                    self._stamp(row), workers.files(row["run_id"]),
                )  # fmt: skip

    def _job(self, row: sqlite3.Row, run_ids: list[str]) -> FolderJob | None:
        """What a worker could do for the run: write its sample files when they are
        stale, summarise it when neither this exporter's nor its folder's cached
        summary is of the run as stored (the latter is then kept); None: nothing."""
        run_id = row["run_id"]
        cached = self._cache.get(run_id)
        check = (  # whether the folder's cached summary may do
            row["status"] != RUNNING
            and run_id not in run_ids
            and (cached is None or cached[0] != tuple(row))
        )
        named = not run_ids or run_id in run_ids
        if not (named or check):
            # A batch exports after each run: a run neither named nor changed since
            # this exporter summarised it costs nothing, not its samples' stamp (0.3 ms
            # each, 0.3 s an export of a 1,000-run fleet, every run).
            return None
        folder, stamp = run_dir(self.output, run_id), self._stamp(row)
        written = read_stamp(folder) if named else None
        files = written is not None and not _fresh(folder, stamp, written)
        # Files written from other samples than the stored ones: the summary cached
        # beside them is of those too (both are written as a run is), so reading it
        # (17 KB a run of 100 rounds) is skipped; at worst the run is summarised again.
        moved = written is not None and bool(written) and _made_of(written) != stamp
        summary = False
        if check:
            made_from = _made_from(self.store, row, stamp)
            if not moved and (kept := _read_cache(folder / SUMMARY_CACHE, made_from)) is not None:
                self._cache[run_id] = (tuple(row), kept)
            else:
                summary = True
        if not (files or summary):
            return None
        work = (_to_write(stamp, written) if written is not None and files else 0) + (
            int(stamp["samples"]) // 3 if summary else 0
        )
        return FolderJob(row, folder, files, summary, work)

    def _stamp(self, row: sqlite3.Row) -> dict[str, Any]:
        """The run's ``samples_stamp``, once per export."""
        if (stamp := self._stamps.get(row["run_id"])) is None:
            stamp = self._stamps[row["run_id"]] = samples_stamp(self.store, row)
        return stamp

    def _summary(self, row: sqlite3.Row, force: bool) -> dict[str, Any]:
        key = tuple(row)
        cached = self._cache.get(row["run_id"])
        # A running run stores samples without touching its row: always fresh.
        if force or cached is None or cached[0] != key or row["status"] == RUNNING:
            cached = (key, self._stored_summary(row, force or row["status"] == RUNNING))
            self._cache[row["run_id"]] = cached
        return cached[1]

    def _stored_summary(self, row: sqlite3.Row, fresh: bool) -> dict[str, Any]:
        """The run's summary: the one cached in its folder when it was made from the
        same store row, samples (``samples_stamp``) and fleetbench version, else a
        new one (then cached). Summarising reads every sample of the run, so a report
        over a long schedule's store recomputed the whole store at every call; the
        cache makes a report after a batch (which summarised the runs it changed)
        read only the runs' rows. Stars and knees are not cached: they compare runs."""
        path = run_dir(self.output, row["run_id"]) / SUMMARY_CACHE
        made_from = _made_from(self.store, row, self._stamp(row))
        if not fresh and (cached := _read_cache(path, made_from)) is not None:
            return cached
        return write_summary_cache(self.store, row, path.parent, made_from)


def write_summary_cache(
    store: Store, row: sqlite3.Row, folder: Path, made_from: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run summarised, and cached in its folder with what it was made from (not
    while it runs: its samples change without its row); returns the summary as read
    back from that JSON, so a cached summary and a fresh one are the same values."""
    if made_from is None:
        made_from = _made_from(store, row)
    summary = summarize_run(store, row)
    text = jsontext.dumps({"made_from": made_from, "summary": summary})
    if row["status"] != RUNNING:
        with contextlib.suppress(OSError):  # a cache that cannot be written costs time
            overwrite_text(folder / SUMMARY_CACHE, text + "\n")
    return dict(jsontext.loads(text)["summary"])


def cached_summary(store: Store, output: Path, row: sqlite3.Row) -> dict[str, Any] | None:
    """The run's summary cached in its folder, if it was made from the run as stored
    now (read only: the dashboard's comparison)."""
    if row["status"] == RUNNING:
        return None
    return _read_cache(run_dir(output, row["run_id"]) / SUMMARY_CACHE, _made_from(store, row))


def _made_from(
    store: Store, row: sqlite3.Row, stamp: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a run's cached summary is made from: its row and its ``samples_stamp``
    (``stamp`` when the caller has it)."""
    return {"row": list(row), "samples": samples_stamp(store, row) if stamp is None else stamp}


def _read_cache(path: Path, made_from: dict[str, Any]) -> dict[str, Any] | None:
    try:
        cached = jsontext.loads(path.read_bytes())
        if cached.get("made_from") == made_from:
            return dict(cached["summary"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # missing, torn or foreign: summarise again
    return None


def export_results(
    store: Store,
    output: Path,
    run_ids: list[str],
    stars_reference: list[ReferenceRow] | None = None,
    meanwhile: Callable[[list[dict[str, Any]]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """One export from scratch (``fleetbench report``, an ensemble): see ``ResultsExporter``."""
    return ResultsExporter(store, output, stars_reference).export(run_ids, meanwhile, progress)
