"""``master_results.csv``: one row per run, in the column order users' scripts expect."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fleetbench import csvtext
from fleetbench.fsutil import atomic_write_text
from fleetbench.report.load import LOAD_COLUMNS
from fleetbench.report.paths import run_dir as run_dir  # importers keep their name
from fleetbench.report.rounds import ROUND_COLUMNS
from fleetbench.report.server_timing import SERVER_TIMING_COLUMNS

MASTER_FILE = "master_results.csv"


# The first 19 columns follow AI Energy Score's batch runner; ours come after.
MASTER_COLUMNS: list[str] = [
    "model_name",
    "model_class",
    "task",
    "reasoning_state",
    "total_prompts",
    "successful_prompts",
    "failed_prompts",
    "total_duration_seconds",
    "avg_latency_seconds",
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
    "gpu_energy_wh",
    "co2_emissions_g",
    "tokens_per_joule",
    "avg_energy_per_prompt_wh",
    "timestamp",
    "error_message",
    "run_id",
    "backend",
    "avg_ttft_seconds",
    "energy_method",
    "status",
    "settings_label",
    "samples_stored",
    "samples_with_error",
    "energy_wh",
    "cpu_energy_wh",
    "cpu_seconds",
    "gpu_energy_gross_wh",
    "cpu_energy_gross_wh",
    "gpu_idle_w",
    "cpu_idle_w",
    "idle_baseline_s",
    "energy_unmeasured_reason",
    "gpu_names",
    "peak_gpu_memory_mb",
    "shared_device",
    "load_time_seconds",
    "peak_rss_mb",
    "attempts",
    "reasoning_tokens",
    "answer_tokens",
    "cost_usd",
    "avg_itl_seconds",
    "retries",
    "token_count_source",
    "server_startup_seconds",
    "quality_metric",
    "quality_score",
    "retrieval_corpus",
    "wh_per_1000_queries",
    "reasoning_energy_wh",
    "answer_energy_wh",
    "carbon_region",
    "carbon_intensity_g_per_kwh",
    "energy_stars",
    "energy_stars_basis",
    "energy_stars_reason",
    "model_disk_bytes",
    "model_disk_unmeasured_reason",
    "generation_seconds",
    "requests_per_second",
    "per_request_tokens_per_second",
    "token_count_unknown_reason",
    "energy_scope",
    "p50_latency_seconds",
    "p95_latency_seconds",
    "p50_ttft_seconds",
    "p95_ttft_seconds",
    "categories",
    "gpu_avg_power_w",
    "gpu_peak_power_w",
    "gpu_power_reason",
    *ROUND_COLUMNS,
    *LOAD_COLUMNS,
    *SERVER_TIMING_COLUMNS,
]


def format_cell(value: Any) -> str:
    """Empty for unknown (never 0); floats to 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def records_csv(header: list[str], records: Iterable[dict[str, Any]]) -> str:
    """A CSV of ``header`` and a row per record, each cell ``format_cell``'s of the
    record's value (empty where it has none), made a column at a time (``csvtext``; a
    batch writes the master CSV after every run: 26 ms a row at a time at 1,000 runs,
    20 ms so). The values are read a record at a time: reading a column across a
    thousand dicts of 200 keys was slower than formatting them."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(header)
    rows = [tuple(map(record.get, header)) for record in records]
    columns = [csvtext.cells(column, True) for column in zip(*rows, strict=True)] if rows else []
    return buf.getvalue() + csvtext.rows_text(columns)


def master_csv(summaries: Iterable[dict[str, Any]]) -> str:
    """The master CSV's text: a row per summary (``records_csv``)."""
    return records_csv(MASTER_COLUMNS, summaries)


def write_master_csv(output: Path, summaries: Iterable[dict[str, Any]]) -> Path:
    path = output / MASTER_FILE
    atomic_write_text(path, master_csv(summaries))
    return path
