"""Files derived from the store: per-run ``summary.json``/``results.jsonl``/task files
and the master CSV.

They are regenerated from the store after every batch, so they are always consistent
with it, and written atomically.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from fleetbench.fsutil import atomic_write_text
from fleetbench.report.aggregate import summarize_run
from fleetbench.report.master import write_master_csv
from fleetbench.report.stars import ReferenceRow, assign_stars, rate_runs
from fleetbench.store.sqlite import Store
from fleetbench.tasks import run_files

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


def sample_record(row: sqlite3.Row) -> dict[str, Any]:
    inputs = json.loads(row["input_json"])
    return {
        "run_id": row["run_id"],
        "sample_index": row["sample_index"],
        "sample_id": row["sample_id"],
        "prompt": inputs.get("prompt"),
        "messages": inputs.get("messages"),
        "output_text": row["output_text"],
        "answer_text": row["answer_text"],
        "reasoning_text": row["reasoning_text"],
        "reasoning_tokens": row["reasoning_tokens"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "latency_s": row["latency_s"],
        "ttft_s": row["ttft_s"],
        "sent_at": row["sent_at"],
        "received_at": row["received_at"],
        "finish_reason": row["finish_reason"],
        "cpu_seconds": row["cpu_seconds"],
        "energy_wh": row["energy_wh"],
        "energy_method": row["energy_method"],
        "gpu_energy_wh": row["gpu_energy_wh"],
        "gpu_energy_gross_wh": row["gpu_energy_gross_wh"],
        "cpu_energy_wh": row["cpu_energy_wh"],
        "cpu_energy_gross_wh": row["cpu_energy_gross_wh"],
        "scores": json.loads(row["scores_json"]) if row["scores_json"] else None,
        "error": row["error"],
        "attempt": row["attempt"],
        # an ensemble's sample: which member(s) supplied the answer (runner/ensemble.py)
        **({"ensemble": inputs["ensemble"]} if "ensemble" in inputs else {}),
    }


def write_run_files(store: Store, run: sqlite3.Row, summary: dict[str, Any], folder: Path) -> None:
    samples = store.samples(run["run_id"], below=int(run["planned_samples"]))
    records = [sample_record(s) for s in samples]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(folder / RESULTS_FILE, lines)
    for name, text in run_files(run["task"], records).items():
        atomic_write_text(folder / name, text)
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
    atomic_write_text(folder / SUMMARY_FILE, json.dumps(document, indent=2, default=str) + "\n")


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def run_dir(output: Path, run_id: str) -> Path:
    return output / "runs" / run_id


def export_results(
    store: Store,
    output: Path,
    run_ids: list[str],
    stars_reference: list[ReferenceRow] | None = None,
) -> list[dict[str, Any]]:
    """Rewrite the given runs' files (all runs if empty) and the master CSV; returns
    every run's summary (stars are rated across runs, so all are summarised). Stars use
    ``stars_reference`` when given, else the reference named by the latest plan."""
    rows = store.runs()
    summaries = [summarize_run(store, row) for row in rows]
    if stars_reference is not None:
        assign_stars(summaries, stars_reference)
    else:
        rate_runs(summaries, rows)
    for row, summary in zip(rows, summaries, strict=True):
        if not run_ids or row["run_id"] in run_ids:
            write_run_files(store, row, summary, run_dir(output, row["run_id"]))
    write_master_csv(output, summaries)
    return summaries
