"""How long does ``fleetbench report`` take on a large store, and how much memory?

Builds a store of RUNS runs x SAMPLES samples through the real store API (``Store``:
begin_batch, upsert_run, start_attempt, add_sample, finish_attempt), then times
``python -m fleetbench report -o DIR`` in a subprocess: wall time, CPU time (user +
system: on a shared machine the wall time also counts the other processes' turns) and
peak RSS (``ru_maxrss`` of the waited child). The runs: 50 models of 4 sizes in 2 families x 2
tasks (custom, scored 0/1; textgen) x 2 settings = 200 runs, with synthetic latencies,
token counts, energy (method ``estimate``) and costs, so that every plot, ranking and
Pareto set has data. Target (issue 12): under 15 s for 200 x 1,000.

Usage: python benchmarks/report_scale.py [--runs 200] [--samples 1000] [--keep DIR]
Exits 0 when the report was written: the result is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleetbench.store import COMPLETED, Store
from fleetbench.store.rows import SampleRow

SIZES = (0.5, 1.5, 7.0, 14.0)


def build(out: Path, runs: int, samples: int) -> None:
    store = Store.in_dir(out)
    rng = random.Random(12)
    store.begin_batch("bench", "report_scale", "bench", {}, {}, {})
    done = 0
    models = max(1, runs // 4)
    for m in range(models):
        params = SIZES[m % len(SIZES)]
        family = "qwen3" if m % 2 else "llama"
        skill = rng.random()
        for task in ("custom", "textgen"):
            for label, temperature in (("greedy", 0.0), ("hot", 1.0)):
                if done >= runs:
                    break
                run_id = f"model{m:02d}__{task}__{label}"
                model = {"name": f"model{m:02d}", "params_b": params, "family": family}
                config = {
                    "model": model,
                    "task": {"name": task},
                    "task_options": {"file": "/nonexistent.jsonl"} if task == "custom" else {},
                    "generation": {"temperature": temperature, "max_tokens": 64},
                    "energy": {},
                }
                store.upsert_run(
                    {
                        "run_id": run_id,
                        "model_name": model["name"],
                        "model_class": "A",
                        "task": task,
                        "reasoning_state": "",
                        "backend": "llamacpp",
                        "settings_label": label,
                        "config": config,
                    },
                    "bench",
                    samples,
                )
                attempt = store.start_attempt(run_id, "bench", {})
                t = time.time()
                for i in range(samples):
                    latency = params * (0.05 + rng.random() * 0.05)
                    correct = int(rng.random() < skill)
                    store.add_sample(
                        SampleRow(
                            run_id=run_id,
                            sample_index=i,
                            sample_id=f"q{i}",
                            input_json=json.dumps({"prompt": f"question {i}?"}),
                            output_text=f"answer {i}",
                            answer_text=f"answer {i}",
                            prompt_tokens=20,
                            completion_tokens=32,
                            latency_s=latency,
                            ttft_s=latency / 10,
                            sent_at=t,
                            received_at=t + latency,
                            finish_reason="stop",
                            cpu_seconds=latency,
                            energy_wh=latency * params * 1e-3,
                            energy_method="estimate",
                            cpu_energy_wh=latency * params * 1e-3,
                            cost_usd=1e-5 * params,
                            scores_json=json.dumps({"correct": correct})
                            if task == "custom"
                            else None,
                            error=None,
                            attempt=attempt,
                        )
                    )
                    t += latency
                store.finish_attempt(run_id, attempt, COMPLETED, None)
                store.set_run_status(run_id, COMPLETED)
                done += 1
    store.finish_batch("bench", COMPLETED)
    store.close()


def _timed_report(out: Path) -> tuple[float, float, float, str]:
    """Wall s, CPU s, peak RSS MB and the last stdout line of one ``fleetbench report``."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench", "report", "-o", str(out)],
            stdout=stdout, stderr=stderr, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - start
        stdout.seek(0)
        stderr.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"fleetbench report failed: {stderr.read()[-2000:]}")
        lines = stdout.read().strip().splitlines() or [""]
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="build the store here (reused if present)")
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="report-scale-"))
    try:
        if not (out / "fleetbench.db").exists():
            start = time.perf_counter()
            build(out, args.runs, args.samples)
            print(f"store: {args.runs} runs x {args.samples} samples built in "
                  f"{time.perf_counter() - start:.0f} s ({out})")  # fmt: skip
        # First on runs never summarised (the store was written through the store API,
        # not by batches), then again as after a batch: summaries, run files and plots
        # cached in the results folder.
        for name in ("first", "again"):
            wall, cpu_s, peak_mb, last = _timed_report(out)
            page = out / "report" / "index.html"
            print(last)
            print(f"fleetbench report ({name}): {wall:.1f} s wall, {cpu_s:.1f} s CPU, "
                  f"peak RSS {peak_mb:.0f} MB, "
                  f"index.html {page.stat().st_size / 1e6:.1f} MB, "
                  f"{len(list((out / 'report' / 'plots').glob('*.png')))} plots "
                  f"(target: < 15 s)")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
