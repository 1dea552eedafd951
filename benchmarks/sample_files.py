"""How long does writing a run's sample files take, per 1,000 samples, in its parts?

Reads the first RUNS runs of a store (read-only) and times, per run, the one SELECT
that gives both files' rows (``samplefiles._rows``), the lines of ``results.jsonl``
(``_jsonl``) and the text of ``samples.csv`` (``_csv``), in this process; prints
milliseconds per 1,000 samples of each, and the text's size. Nothing is written. Run it
as the report's workers run (``MALLOC_TOP_PAD_``, ``samplefiles.WORKER_ENV``) to time
what they do; on a shared machine, compare two versions alternately, in one minute.

Usage: MALLOC_TOP_PAD_=67108864 python benchmarks/sample_files.py STORE [--runs 100]
(STORE: a ``fleetbench.db``, e.g. one that ``benchmarks/report_scale.py --keep`` left).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fleetbench.report import samplefiles
from fleetbench.store.sqlite import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    store = Store.read_only(args.store)
    runs = list(store.runs())[: args.runs]
    spent = {"rows": 0.0, "jsonl": 0.0, "csv": 0.0}
    samples = chars = 0
    for run in runs:
        start = time.perf_counter()
        rows = samplefiles._rows(store.conn, run["run_id"], int(run["planned_samples"]))
        read = time.perf_counter()
        samplefiles._jsonl(rows)
        lines = time.perf_counter()
        text = samplefiles._csv(rows)
        spent["rows"] += read - start
        spent["jsonl"] += lines - read
        spent["csv"] += time.perf_counter() - lines
        samples, chars = samples + len(rows), chars + len(text)
    per = 1e6 / max(samples, 1)  # s per sample -> ms per 1,000 samples
    print(f"{len(runs)} runs, {samples} samples, {chars / max(samples, 1):.0f} CSV chars each")
    for part, seconds in spent.items():
        print(f"{part}: {seconds * per:.2f} ms per 1,000 samples")


if __name__ == "__main__":
    main()
