"""How long does summarising a run take, per 1,000 samples?

Reads the first RUNS runs of a store (read-only) and summarises each
(``report.aggregate.summarize_run``: what a report's workers do for every run whose
samples changed, e.g. after a schedule's round), REPEAT times over; prints the best
pass's milliseconds per run and per 1,000 stored samples. Nothing is written. On a
shared machine, compare two versions alternately, in one minute (``PYTHONPATH``).

Usage: python benchmarks/summaries.py STORE [--runs 200] [--repeat 3]
(STORE: a ``fleetbench.db``, e.g. the one ``benchmarks/store_scale.py --keep DIR`` left).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fleetbench.report.aggregate import summarize_run
from fleetbench.store.sqlite import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    store = Store.read_only(args.store)
    runs = list(store.runs())[: args.runs]
    samples = sum(
        store.conn.execute(
            "SELECT COUNT(*) FROM samples WHERE run_id = ? AND sample_index < ?",
            (run["run_id"], run["planned_samples"]),
        ).fetchone()[0]
        for run in runs
    )
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        for run in runs:
            summarize_run(store, run)
        best = min(best, time.perf_counter() - start)
    print(
        f"summarize_run: {best / len(runs) * 1000:.2f} ms a run, "
        f"{best / max(samples, 1) * 1e6:.2f} ms per 1,000 samples "
        f"({len(runs)} runs, {samples:,} samples, best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
