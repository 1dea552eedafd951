"""Does the store scale to a schedule over weeks? 1,000,000 samples, timed.

Builds a store of RUNS runs x ROUNDS rounds x SAMPLES samples (default 1,000 x 100 x
10) through the real store API (``Store``: begin_batch, upsert_run, start_attempt per
round, ``add_samples`` one transaction per run-round, finish_attempt), with synthetic
latencies, tokens, energy, scores and a 2 % failure rate. Then times, each in its own
subprocess, ``fleetbench report -o DIR`` (first on runs never summarised; again as
after a batch, each run's summary and files cached in its folder; then after one more
round added to every run, as after a schedule's tick the report did not see: each
run's new samples appended to its files, every run summarised again; then after a
tick as a schedule's batch runs it, whose exports after each run are timed too:
``batch_tick``) and ``fleetbench export samples -o DIR --format parquet``: wall time and peak RSS
(``ru_maxrss`` of that child, via ``os.wait4``). Targets (issue 11): < 10 s each, peak
RSS < 1 GB.

Usage: python benchmarks/store_scale.py [--runs 1000] [--rounds 100] [--samples 10]
       [--keep DIR] [--skip-report]
A kept store grows by one round at each invocation. Exits 0 when the commands
succeeded: the figures are a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetbench.store import COMPLETED, Store
from fleetbench.store.rows import SampleRow


def build(out: Path, runs: int, rounds: int, samples: int) -> None:
    store = Store.in_dir(out)
    rng = random.Random(11)
    store.begin_batch("bench", "store_scale", "bench", {}, {}, {})
    t0 = time.time() - rounds * 3060.0  # rounds every 51 minutes, ending now
    for r in range(runs):
        run_id = f"model{r:04d}__custom__greedy"
        config = {"model": {"name": f"model{r:04d}", "tags": ["api"]},
                  "backend_options": {"preset": "groq"}, "task": {"name": "custom"},
                  "task_options": {}, "energy": {}}  # fmt: skip
        store.upsert_run(
            {"run_id": run_id, "model_name": f"model{r:04d}", "model_class": "",
             "task": "custom", "reasoning_state": "", "backend": "openai",
             "settings_label": "greedy", "config": config},
            "bench", samples,
        )  # fmt: skip
        base = 0.2 + rng.random()
        for k in range(1, rounds + 1):
            add_round(store, run_id, k, samples, t0 + (k - 1) * 3060.0, base, rng)
        store.set_run_status(run_id, COMPLETED)
    store.finish_batch("bench", COMPLETED)
    store.close()


def add_round(
    store: Store, run_id: str, k: int, samples: int, t: float, base: float, rng: random.Random
) -> None:
    """Round ``k`` of the run: one attempt, ``samples`` synthetic samples from ``t`` on."""
    attempt = store.start_attempt(run_id, "bench", {}, [k])
    rows = []
    for i in range(samples):
        latency = base * (0.8 + 0.4 * rng.random())
        failed = rng.random() < 0.02
        rows.append(SampleRow(
            run_id=run_id, round=k, sample_index=i, sample_id=f"q{i}",
            input_json=json.dumps({"prompt": f"question {i}?", "category": "retail"}),
            output_text="" if failed else f"answer {i}", answer_text=f"answer {i}",
            prompt_tokens=20, completion_tokens=None if failed else 32,
            latency_s=latency, ttft_s=latency / 5, sent_at=t, received_at=t + latency,
            finish_reason="stop", cpu_seconds=None, energy_wh=latency * 1e-3,
            energy_method="estimate", cost_usd=2e-5,
            scores_json=None if failed else json.dumps({"correct": int(rng.random() < .7)}),
            error="HTTP 503" if failed else None, attempt=attempt,
        ))  # fmt: skip
        t += latency
    store.add_samples(rows)
    store.finish_attempt(run_id, attempt, COMPLETED, None)


def one_more_round(out: Path, samples: int) -> None:
    """A schedule's next tick, through the store API: one round more for every run."""
    store = Store.in_dir(out)
    rng = random.Random(12)
    k = int(store.conn.execute("SELECT MAX(round) FROM samples").fetchone()[0]) + 1
    store.begin_batch(f"bench-round-{k}", "store_scale", "bench", {}, {}, {})
    for run in store.runs():
        add_round(store, run["run_id"], k, samples, time.time(), 0.2 + rng.random(), rng)
        store.set_run_status(run["run_id"], COMPLETED)
    store.finish_batch(f"bench-round-{k}", COMPLETED)
    store.close()


def batch_tick(out: Path, samples: int) -> str:
    """A schedule's next tick as its batch goes: each run's round stored, then that
    run's exports (``ResultsExporter.export([run])``, as ``runner/batch.py`` does after
    every run: its summary and files, the master CSV), and at the end the exports of
    the whole store and the report page. Returns the figures as one line."""
    from fleetbench.report.exports import ResultsExporter
    from fleetbench.report.page import write_report
    from fleetbench.report.render import report_available, stop_plot_worker

    store = Store.in_dir(out)
    rng = random.Random(13)
    k = int(store.conn.execute("SELECT MAX(round) FROM samples").fetchone()[0]) + 1
    store.begin_batch(f"bench-tick-{k}", "store_scale", "bench", {}, {}, {})
    exporter, each = ResultsExporter(store, out), []
    try:
        for run in store.runs():
            add_round(store, run["run_id"], k, samples, time.time(), 0.2 + rng.random(), rng)
            store.set_run_status(run["run_id"], COMPLETED)
            start = time.perf_counter()
            exporter.export([run["run_id"]])
            each.append(time.perf_counter() - start)
        store.finish_batch(f"bench-tick-{k}", COMPLETED)
        start = time.perf_counter()
        summaries = exporter.export([])
        if report_available():
            write_report(store, out, summaries)
        end = time.perf_counter() - start
    finally:
        stop_plot_worker()
        store.close()
    each.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (f"{len(each)} runs' exports as each run ends: median {each[len(each) // 2] * 1e3:.0f} "
            f"ms, slowest {each[-1] * 1e3:.0f} ms (the first: the exporter's cache is "
            f"empty), {sum(each):.1f} s in all; the batch's end (every run, the page): "
            f"{end:.1f} s; peak RSS {peak / 1024:.0f} MB")  # fmt: skip


def tick_apart(out: Path, samples: int) -> None:
    """``batch_tick`` in a process of its own: grown here, this process would hand its
    peak RSS on to the commands timed after it (Linux keeps it across fork and exec)."""
    code = (
        "import sys, store_scale; "
        "print(store_scale.batch_tick(store_scale.Path(sys.argv[1]), int(sys.argv[2])))"
    )
    here = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
    }
    line = subprocess.run([sys.executable, "-c", code, str(out), str(samples)], env=env,
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"a schedule's tick through the batch's exports: {line}")


def timed(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and the last stdout line of one fleetbench command."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench", *args], stdout=out, stderr=err,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"fleetbench {args[0]} failed ({proc.returncode}): {err.read()[-2000:]}")
        lines = out.read().strip().splitlines()
    return wall, usage.ru_maxrss / 1024, (lines or [""])[-1]


def add_size_args(parser: argparse.ArgumentParser) -> None:
    """The store's shape (1M samples by default) and where to keep it between runs."""
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="build the store here (reused if present)")


def ensure_store(out: Path, args: argparse.Namespace) -> None:
    """Build the store of ``add_size_args``'s shape in ``out`` unless one is there."""
    if (out / "fleetbench.db").exists():
        return
    start = time.perf_counter()
    build(out, args.runs, args.rounds, args.samples)
    total = args.runs * args.rounds * args.samples
    print(f"store: {args.runs} runs x {args.rounds} rounds x {args.samples} samples "
          f"= {total:,} built in {time.perf_counter() - start:.0f} s, "
          f"{(out / 'fleetbench.db').stat().st_size / 1e6:.0f} MB ({out})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_args(parser)
    parser.add_argument("--skip-report", action="store_true")
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="store-scale-"))
    try:
        ensure_store(out, args)
        export = ["export", "samples", "-o", str(out), "--format", "parquet"]
        report = ["report", "-o", str(out)]
        commands = [] if args.skip_report else [
            # The store was written through the store API, not by batches: no run has
            # its files or summary yet, as after upgrading from a fleetbench without
            # them. Then again, as after a schedule's round (whose batch wrote them).
            ("report, first (every run summarised, its files written)", report, None),
            ("report, again (as after a batch or a schedule's round)", report, None),
            # A tick the report did not see: every run has a new round to append and
            # must be summarised again (a batch would have done both as it went).
            ("report after one more round (appended, every run summarised)", report,
             lambda: one_more_round(out, args.samples)),
        ]  # fmt: skip
        if not args.skip_report:
            # A tick as a schedule's batch runs it: what it costs the batch, then the
            # report (nothing left to do but read the caches and build the page).
            commands.append(("report after a batch's tick", report,
                             lambda: tick_apart(out, args.samples)))  # fmt: skip
        for name, command, before in [*commands, ("export samples --format parquet", export, None)]:
            if before is not None:
                before()
            wall, peak, last = timed(command)
            print(f"fleetbench {name}: {wall:.1f} s wall, peak RSS {peak:.0f} MB "
                  f"(targets < 10 s, < 1 GB) — {last}")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
