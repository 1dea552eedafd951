"""Where a results folder keeps each run's files: one function, which a batch needs
before its first run starts, apart from the report modules (benchmarks/makespan.py)."""

from __future__ import annotations

from pathlib import Path


def run_dir(output: Path, run_id: str) -> Path:
    """A run's folder in the results folder (run.log, summary.json, results.jsonl...)."""
    return output / "runs" / run_id
