"""``report/comparison.csv|json`` and ``scaling_comparison.csv|json``: one record per run.

A record holds every master-CSV figure, the task's score components as
``score_<name>`` (WattBot ``value_accuracy``, ``ref_overlap``, ``na_recall``; HumanEval
``pass@k``; ...), the model's size and family from its stored config, where the model ran
(``local`` or ``api``: API models are drawn as circles, local ones as squares), GPU
average power, and the run's ranks within its task (``report.rankings``).

The scaling comparison keeps the runs of each (task, family) whose models differ in
size: score, latency, VRAM, disk size, energy and power side by side, smallest first.

``category_comparison.csv``: one row per run and sample category (the prompt or
question file's ``category_field``), with the model's catalogue categories beside it;
``comparison.json`` also ranks the runs within each model category
(``tasks.<task>.by_category``, ``report.rankings``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from fleetbench import jsontext
from fleetbench.backends.base import REMOTE_API
from fleetbench.fsutil import atomic_write_text
from fleetbench.report.master import MASTER_COLUMNS, records_csv
from fleetbench.report.rankings import RANK_COLUMNS, run_ranks

EXTRA_COLUMNS = ["params_b", "family", "where", "carbon_intensity_source"]
SCALING_COLUMNS = [
    "task",
    "family",
    "model_name",
    "settings_label",
    "run_id",
    "params_b",
    "quality_metric",
    "quality_score",
    "avg_latency_seconds",
    "p95_latency_seconds",
    "peak_gpu_memory_mb",
    "peak_rss_mb",
    "model_disk_bytes",
    "wh_per_1000_queries",
    "energy_wh",
    "gpu_avg_power_w",
    "gpu_peak_power_w",
]


def where(summary: dict[str, Any]) -> str:
    """``api`` for a model on a remote host, else ``local``."""
    return "api" if REMOTE_API in str(summary.get("energy_scope") or "") else "local"


def records(
    summaries: list[dict[str, Any]],
    runs: list[sqlite3.Row],
    rankings: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """One comparison record per summary (``runs`` gives each run's stored config)."""
    configs = {r["run_id"]: json.loads(r["config_json"] or "{}") for r in runs}
    ranks = run_ranks(rankings)
    out = []
    for s in summaries:
        config = configs.get(s["run_id"]) or {}
        model = config.get("model") or {}
        record = {column: s.get(column) for column in MASTER_COLUMNS}
        record |= {f"score_{k}": v for k, v in (s.get("scores") or {}).items()}
        record |= {
            "params_b": model.get("params_b"),
            "family": model.get("family") or "",
            "where": where(s),
            "carbon_intensity_source": s.get("carbon_intensity_source"),
            "distributions": s.get("distributions"),  # comparison.json only: nested
            "by_category": s.get("by_category") or {},  # comparison.json only: nested
            "ensemble_members": (config.get("ensemble") or {}).get("members"),
        }
        rank = ranks.get(s["run_id"], {})
        record |= {c: rank.get(c, False if c.startswith("pareto_") else None) for c in RANK_COLUMNS}
        out.append(record)
    return out


def columns(rows: list[dict[str, Any]]) -> list[str]:
    scores = sorted({k for r in rows for k in r if k.startswith("score_")})
    return [*MASTER_COLUMNS, *scores, *EXTRA_COLUMNS, *RANK_COLUMNS]


def scaling_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of (task, family) groups whose models come in more than one size."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("family") and r.get("params_b") is not None:
            groups.setdefault((r["task"], r["family"]), []).append(r)
    out = []
    for group in groups.values():
        if len({r["params_b"] for r in group}) > 1:
            out += sorted(group, key=lambda r: float(r["params_b"]))
    return [{c: r.get(c) for c in SCALING_COLUMNS} for r in out]


CATEGORY_COLUMNS = [
    "task",
    "model_name",
    "settings_label",
    "run_id",
    "categories",
    "category",
    "samples",
    "succeeded",
    "success_rate",
    "avg_latency_seconds",
    "avg_ttft_seconds",
]


def category_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(header, rows) of ``category_comparison.csv``: one row per run and sample
    category (``by_category``), with the mean of each per-sample score as
    ``score_<name>``; the model's catalogue categories ride along for grouping."""
    out = []
    for r in rows:
        for category, group in (r.get("by_category") or {}).items():
            out.append(
                {c: r.get(c) for c in CATEGORY_COLUMNS[:5]}
                | {"category": category}
                | {c: group.get(c) for c in CATEGORY_COLUMNS[6:]}
                | {f"score_{k}": v for k, v in (group.get("scores") or {}).items()}
            )
    scores = sorted({k for r in out for k in r if k.startswith("score_")})
    return [*CATEGORY_COLUMNS, *scores], out


def write_comparison(
    folder: Path, rows: list[dict[str, Any]], rankings: dict[str, dict[str, Any]]
) -> list[Path]:
    """comparison.csv/.json (and the scaling files when there are size series, the
    per-category file when samples have categories)."""
    written = [folder / "comparison.csv", folder / "comparison.json"]
    atomic_write_text(written[0], records_csv(columns(rows), rows))
    document = {"runs": rows, "tasks": rankings}
    # Each run's figures on their own lines, as ``json.dumps(indent=2)`` wrote them, but
    # the values below (distributions) on one: the indenting encoder is pure Python.
    atomic_write_text(written[1], jsontext.pretty(document, depth=3) + "\n")
    scaling = scaling_rows(rows)
    if scaling:
        written += [folder / "scaling_comparison.csv", folder / "scaling_comparison.json"]
        atomic_write_text(written[2], records_csv(SCALING_COLUMNS, scaling))
        atomic_write_text(written[3], jsontext.pretty(scaling) + "\n")
    header, by_category = category_rows(rows)
    path = folder / "category_comparison.csv"
    if by_category:
        written.append(path)
        atomic_write_text(path, records_csv(header, by_category))
    else:  # a report rebuilt after the categorised runs left the store: no stale file
        path.unlink(missing_ok=True)
    return written
