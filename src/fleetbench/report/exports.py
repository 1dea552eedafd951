"""Files derived from the store: per-run ``summary.json``/``results.jsonl``/
``samples.csv``/``emissions.json``/task files and the master CSV.

They are regenerated from the store after every run and every batch, so they are
always consistent with it, and written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fleetbench import __version__
from fleetbench.fsutil import atomic_write_text
from fleetbench.report.aggregate import summarize_run
from fleetbench.report.load import mark_knees
from fleetbench.report.master import format_cell, run_dir, write_master_csv
from fleetbench.report.stars import ReferenceRow, assign_stars, rate_runs
from fleetbench.store.rows import SAMPLE_FIELDS, SampleRow
from fleetbench.store.sqlite import RUNNING, Store
from fleetbench.tasks import run_files

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
SAMPLES_CSV = "samples.csv"
EMISSIONS_FILE = "emissions.json"
# What the sample files of a run folder were written from (``write_run_files``).
STAMP_FILE = ".samples-stamp.json"
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


def sample_record(row: SampleRow | sqlite3.Row) -> dict[str, Any]:
    """One line of ``results.jsonl``: every stored column in ``SampleRow`` order, with
    the stored input unpacked (``prompt``, ``messages``) and the scores decoded."""
    get = row.__getitem__ if isinstance(row, sqlite3.Row) else row.__getattribute__
    inputs = json.loads(get("input_json"))
    record: dict[str, Any] = {}
    for name in SAMPLE_FIELDS:
        if name == "input_json":
            record["prompt"] = inputs.get("prompt")
            record["messages"] = inputs.get("messages")
        elif name == "scores_json":
            value = get(name)
            record["scores"] = json.loads(value) if value else None
        else:
            record[name] = get(name)
    if "ensemble" in inputs:  # which member(s) supplied the answer (runner/ensemble.py)
        record["ensemble"] = inputs["ensemble"]
    return record


def write_run_files(store: Store, run: sqlite3.Row, summary: dict[str, Any], folder: Path) -> None:
    """Write the run's files into ``folder``; each only when its content changed.

    The sample files (``results.jsonl``, ``samples.csv``, the task's files) hold every
    stored sample, so rewriting them for every run at every report made a report over
    a long schedule cost the whole store each time. They are rewritten only when the
    run's samples changed since they were written, which ``STAMP_FILE`` records (see
    ``samples_stamp``), or when one of them is missing or no longer the size written.
    ``summary.json`` and ``emissions.json`` are rebuilt when the run's row or its
    summary changed (a hash of both in ``STAMP_FILE``) or a file is not the size
    written, and written when their text differs from the file's.
    """
    stamp = samples_stamp(store, run)
    written = _written(folder)
    files = dict(written.get("files") or {})
    if not _fresh(folder, stamp, written):
        names = _write_sample_files(store, run, folder)
        files = {n: size for n, size in files.items() if n in (SUMMARY_FILE, EMISSIONS_FILE)}
        files |= {name: (folder / name).stat().st_size for name in names}
    # summary.json and emissions.json are made from the run's row (its attempts change
    # it), the summary (stars and knees included) and the attempts: unchanged row and
    # summary, unchanged files, so reading 100 rounds' attempts again is not needed.
    document = hashlib.sha256(
        json.dumps([list(run), summary], default=str, sort_keys=True).encode()
    ).hexdigest()
    documents = (SUMMARY_FILE, EMISSIONS_FILE)
    if written.get("document") != document or not _sizes_match(folder, written, documents):
        _write_documents(store, run, summary, folder)
        files |= {name: (folder / name).stat().st_size for name in documents}
    new = {**stamp, "document": document, "files": files}
    if new != written:
        atomic_write_text(folder / STAMP_FILE, json.dumps(new) + "\n")


def _write_documents(store: Store, run: sqlite3.Row, summary: dict[str, Any], folder: Path) -> None:
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
    _write_if_changed(folder / SUMMARY_FILE, json.dumps(document, indent=2, default=str) + "\n")
    emissions = {
        "run_id": run["run_id"],
        **{k: summary.get(k) for k in EMISSIONS_KEYS},
        "attempts": [{"attempt": a["attempt"], **(a["energy"] or {})} for a in attempts],
    }
    _write_if_changed(folder / EMISSIONS_FILE, json.dumps(emissions, indent=2, default=str) + "\n")


def samples_stamp(store: Store, run: sqlite3.Row) -> dict[str, Any]:
    """What the run's sample files are made of: its stored samples below the plan's
    count (how many, the highest rowid and the latest ``created_at``: samples are only
    ever inserted or deleted, and a re-inserted one is newer), the task (its files),
    and the format (the sample columns and this fleetbench's version)."""
    count, rowid, created = store.conn.execute(
        "SELECT COUNT(*), MAX(rowid), MAX(created_at) FROM samples "
        "WHERE run_id = ? AND sample_index < ?",
        (run["run_id"], int(run["planned_samples"])),
    ).fetchone()
    return {
        "run_id": run["run_id"],
        "task": run["task"],
        "planned_samples": int(run["planned_samples"]),
        "samples": count,
        "max_rowid": rowid,
        "max_created_at": created,
        "fields": list(SAMPLE_FIELDS),
        "version": __version__,
    }


def _written(folder: Path) -> dict[str, Any]:
    """What ``STAMP_FILE`` says the folder's files were written from ({} if unknown)."""
    try:
        written = json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return written if isinstance(written, dict) else {}


def _fresh(folder: Path, stamp: dict[str, Any], written: dict[str, Any]) -> bool:
    """Whether the sample files in ``folder`` were written from these samples and are
    all still there, at the size written."""
    made_from = {k: v for k, v in written.items() if k not in ("files", "document")}
    names = [n for n in (written.get("files") or {}) if n not in (SUMMARY_FILE, EMISSIONS_FILE)]
    return made_from == stamp and bool(names) and _sizes_match(folder, written, names)


def _sizes_match(folder: Path, written: dict[str, Any], names: Iterable[str]) -> bool:
    files = written.get("files")
    try:
        return isinstance(files, dict) and all(
            (folder / name).stat().st_size == files.get(name) for name in names
        )
    except OSError:
        return False


def _write_sample_files(store: Store, run: sqlite3.Row, folder: Path) -> list[str]:
    """``results.jsonl``, ``samples.csv`` and the task's files; the names written."""
    samples = store.samples(run["run_id"], below=int(run["planned_samples"]))
    records = [sample_record(s) for s in samples]  # a million samples: no SampleRow each
    encode = json.JSONEncoder(ensure_ascii=False).encode
    lines = "".join(encode(r) + "\n" for r in records)
    atomic_write_text(folder / RESULTS_FILE, lines)  # every round, each record names its own
    atomic_write_text(folder / SAMPLES_CSV, samples_csv(records))
    last = max((r["round"] for r in records), default=1)
    latest = [r for r in records if r["round"] == last]  # task files: one answer per question
    names = [RESULTS_FILE, SAMPLES_CSV]
    for name, text in run_files(run["task"], latest).items():
        atomic_write_text(folder / name, text)
        names.append(name)
    return names


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def samples_csv(records: list[dict[str, Any]]) -> str:
    """``results.jsonl`` as a spreadsheet: one row per sample, the same columns; nested
    values (messages, scores) as JSON text, unknown values empty (never 0)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    renamed = {"input_json": ["prompt", "messages"], "scores_json": ["scores"]}
    columns = list(dict.fromkeys(k for r in records for k in r)) or [
        c for name in SAMPLE_FIELDS for c in renamed.get(name, [name])
    ]
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return buf.getvalue()


def _cell(value: Any) -> str:
    """``format_cell``, with nested values as JSON; by exact type, the common ones
    first: it runs for every column of every sample."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is float:
        return f"{value:.6g}"
    if kind is dict or kind is list:
        return json.dumps(value, ensure_ascii=False)
    return format_cell(value)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


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

    def export(self, run_ids: list[str]) -> list[dict[str, Any]]:
        """Rewrite the given runs' files (all runs if empty) and the master CSV; returns
        every run's summary. Stars use the exporter's ``stars_reference`` when given,
        else the reference named by the latest plan."""
        rows = self.store.runs()
        summaries = [self._summary(row, force=row["run_id"] in run_ids) for row in rows]
        if self.stars_reference is not None:
            assign_stars(summaries, self.stars_reference)
        else:
            rate_runs(summaries, rows)
        mark_knees(summaries)
        for row, summary in zip(rows, summaries, strict=True):
            if not run_ids or row["run_id"] in run_ids:
                write_run_files(self.store, row, summary, run_dir(self.output, row["run_id"]))
        write_master_csv(self.output, summaries)
        return summaries

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
        made_from = _made_from(self.store, row)
        if not fresh and (cached := _read_cache(path, made_from)) is not None:
            return cached
        summary = summarize_run(self.store, row)
        # Through JSON, so a cached summary and a fresh one are the same values.
        text = json.dumps({"made_from": made_from, "summary": summary}, default=str)
        if row["status"] != RUNNING:
            with contextlib.suppress(OSError):  # a cache that cannot be written costs time
                atomic_write_text(path, text + "\n")
        return dict(json.loads(text)["summary"])


def cached_summary(store: Store, output: Path, row: sqlite3.Row) -> dict[str, Any] | None:
    """The run's summary cached in its folder, if it was made from the run as stored
    now (read only: the dashboard's comparison)."""
    if row["status"] == RUNNING:
        return None
    return _read_cache(run_dir(output, row["run_id"]) / SUMMARY_CACHE, _made_from(store, row))


def _made_from(store: Store, row: sqlite3.Row) -> dict[str, Any]:
    return {"row": list(row), "samples": samples_stamp(store, row)}


def _read_cache(path: Path, made_from: dict[str, Any]) -> dict[str, Any] | None:
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
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
) -> list[dict[str, Any]]:
    """One export from scratch (``fleetbench report``, an ensemble): see ``ResultsExporter``."""
    return ResultsExporter(store, output, stars_reference).export(run_ids)
