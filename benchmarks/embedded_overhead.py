"""How much generation speed does fleetbench cost over a bare llama-cpp-python loop?

Runs the same prompts with the same greedy settings on the embedded SmolLM2 GGUF

* bare: in this process, ``llama_cpp.Llama`` loaded as the ``llamacpp`` backend loads it
  (n_ctx=2048, n_threads=os.cpu_count(), n_batch=512), then one
  ``create_chat_completion(..., stream=False)`` call per prompt, timed from the call to
  its return. Non-streamed is used on purpose: it is the tightest loop llama-cpp-python
  offers and it returns exact ``usage.completion_tokens`` (streamed chunks carry no
  usage, and counting chunks or re-tokenising the text would be inexact);
* fleetbench: ``python -m fleetbench run PLAN --output DIR --fresh`` in a subprocess
  (a textgen task on a temporary JSONL of the same prompts), read back from
  DIR/fleetbench.db.

Generation tokens/s = sum(completion tokens) / sum(per-request latency), for both sides;
each per-request latency covers template rendering, tokenisation, prompt processing
and decoding. Process start and model load are excluded there and shown only as
end-to-end wall time. Repeats alternate bare, fleetbench, bare, ... so that drift
(thermal, noisy neighbours) hits both sides alike, and the ratio uses the medians.

Usage: python benchmarks/embedded_overhead.py [--prompts N] [--max-tokens N]
       [--repeats N] [--keep]
Always exits 0 when both sides ran: the result is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import psutil
import yaml
from common import builtin_prompts

from fleetbench.catalog import embedded_model_path
from fleetbench.meters.host import cpu_model

TARGET_RATIO = 0.95
# CPU (in cores) that other processes may use during a repeat before it counts as noisy:
# on a small machine a concurrent job halves llama.cpp's speed or worse.
NOISY_CORES = 0.10
SEED = 42
# Greedy decoding with every other sampler disabled: both sides do identical work.
SAMPLING: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": 0,
    "min_p": 0.0,
    "repeat_penalty": 1.0,
}


@dataclass
class Measurement:
    tokens: int = 0
    gen_s: float = 0.0
    wall_s: float = 0.0
    others_cores: float = 0.0  # CPU used by other processes (and stolen by the host)
    per_prompt_tokens: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def tok_s(self) -> float:
        return self.tokens / self.gen_s if self.gen_s else 0.0


def load_llama() -> llama_cpp.Llama:
    # Same constructor arguments as fleetbench's llamacpp backend with default options.
    return llama_cpp.Llama(
        model_path=str(embedded_model_path()),
        n_ctx=2048,
        n_threads=os.cpu_count(),
        n_batch=512,
        n_gpu_layers=0,
        verbose=False,
    )


def run_bare(prompts: list[str], max_tokens: int) -> Measurement:
    m = Measurement()
    wall_start = time.perf_counter()
    # Loaded per repeat and closed afterwards so that no idle llama.cpp instance sits in
    # this process while the fleetbench worker runs, and so wall time includes a load.
    llm = load_llama()
    try:
        for prompt in prompts:
            start = time.perf_counter()
            out: Any = llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                stream=False,
                seed=SEED,
                max_tokens=max_tokens,
                **SAMPLING,
            )
            m.gen_s += time.perf_counter() - start
            n = int(out["usage"]["completion_tokens"])
            m.tokens += n
            m.per_prompt_tokens.append(n)
            m.texts.append(out["choices"][0]["message"]["content"] or "")
    finally:
        llm.close()
    m.wall_s = time.perf_counter() - wall_start
    return m


def fleet_generation(max_tokens: int) -> dict[str, Any]:
    # min_tokens and stop are explicit because textgen's default token protocol
    # (AI Energy Score) would otherwise force min_tokens=10, which the bare loop lacks.
    return {**SAMPLING, "max_tokens": max_tokens, "seed": SEED, "min_tokens": 0, "stop": []}


def write_inputs(work: Path, prompts: list[str], max_tokens: int) -> Path:
    prompts_file = work / "prompts.jsonl"
    prompts_file.write_text(
        "".join(json.dumps({"id": f"p{i:02d}", "prompt": p}) + "\n" for i, p in enumerate(prompts))
    )
    plan = {
        "name": "embedded-overhead",
        "models": [{"name": "SmolLM2-135M-Instruct", "backend": "llamacpp"}],
        "tasks": [
            {
                "name": "textgen",
                "options": {"prompts_file": str(prompts_file), "token_protocol": "none"},
            }
        ],
        "generation": fleet_generation(max_tokens),
    }
    plan_file = work / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan, sort_keys=False))
    return plan_file


def run_fleetbench(plan_file: Path, out_dir: Path, n_prompts: int, max_tokens: int) -> Measurement:
    cmd = [sys.executable, "-m", "fleetbench", "run", str(plan_file)]
    cmd += ["--output", str(out_dir), "--fresh"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        sys.exit(f"fleetbench run failed with exit code {proc.returncode}")
    with sqlite3.connect(out_dir / "fleetbench.db") as db:
        (config_json,) = db.execute("SELECT config_json FROM runs").fetchone()
        rows = db.execute(
            "SELECT completion_tokens, latency_s, output_text FROM samples "
            "WHERE error IS NULL ORDER BY sample_index"
        ).fetchall()
    # Compare like with like: fail loudly if fleetbench resolved other settings than asked.
    used = json.loads(config_json)["generation"]
    wanted = fleet_generation(max_tokens)
    if any(used.get(k) != v for k, v in wanted.items()):
        sys.exit(f"fleetbench resolved generation settings {used}, expected {wanted}")
    if len(rows) != n_prompts:
        sys.exit(f"expected {n_prompts} successful samples in {out_dir}, found {len(rows)}")
    m = Measurement(wall_s=wall)
    for tokens, latency, text in rows:
        m.tokens += tokens
        m.gen_s += latency
        m.per_prompt_tokens.append(tokens)
        m.texts.append(text)
    return m


CpuMark = tuple[float, float, float]


def cpu_mark() -> CpuMark:
    """System-wide busy CPU seconds (steal included), our own CPU seconds, and the time."""
    t = psutil.cpu_times()
    busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    # children_* cover the fleetbench subprocess and its worker once they are reaped.
    own = sum(os.times()[:4])
    return busy, own, time.perf_counter()


def others_since(start: CpuMark) -> float:
    """Average cores used by other processes since ``start``: contention, not our work."""
    busy, own, now = cpu_mark()
    return max(0.0, ((busy - start[0]) - (own - start[1])) / (now - start[2]))


def row(label: str, rep: str, tokens: float, gen_s: float, tok_s: float, wall_s: float) -> str:
    return f"{label:<11} {rep:>6} {tokens:>8.0f} {gen_s:>8.2f} {tok_s:>8.1f} {wall_s:>8.2f}"


def median_rows(label: str, runs: list[Measurement]) -> str:
    return row(
        label,
        "median",
        statistics.median(m.tokens for m in runs),
        statistics.median(m.gen_s for m in runs),
        statistics.median(m.tok_s for m in runs),
        statistics.median(m.wall_s for m in runs),
    )


def median_ratio(bare: list[Measurement], fleet: list[Measurement]) -> float:
    return statistics.median(m.tok_s for m in fleet) / statistics.median(m.tok_s for m in bare)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=20, help="first N built-in prompts")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="bare/fleetbench pairs")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.repeats < 1 or args.max_tokens < 1:
        ap.error("--repeats and --max-tokens must be >= 1")

    prompts = builtin_prompts(args.prompts)
    print(f"machine:    {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()}")
    print(f"python:     {platform.python_version()}   llama_cpp: {llama_cpp.__version__}")
    print(f"model:      {embedded_model_path().name}")
    print(
        f"workload:   {len(prompts)} prompts x max_tokens {args.max_tokens}, greedy, "
        f"{args.repeats} repeats (alternating)"
    )

    work = Path(tempfile.mkdtemp(prefix="fleetbench-overhead-"))
    plan_file = write_inputs(work, prompts, args.max_tokens)
    bare: list[Measurement] = []
    fleet: list[Measurement] = []
    try:
        # Untimed warm-up: page cache, CPU clocks and lazy imports hit neither side.
        warm = load_llama()
        warm.create_chat_completion(
            messages=[{"role": "user", "content": prompts[0]}], max_tokens=16, **SAMPLING
        )
        warm.close()
        for rep in range(1, args.repeats + 1):
            mark = cpu_mark()
            bare.append(run_bare(prompts, args.max_tokens))
            bare[-1].others_cores = others_since(mark)
            mark = cpu_mark()
            out_dir = work / f"out-{rep}"
            fleet.append(run_fleetbench(plan_file, out_dir, len(prompts), args.max_tokens))
            fleet[-1].others_cores = others_since(mark)
            print(
                f"  repeat {rep}: bare {bare[-1].tok_s:.1f} tok/s, "
                f"fleetbench {fleet[-1].tok_s:.1f} tok/s",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept:       {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print()
    header = f"{'side':<11} {'repeat':>6} {'tokens':>8} {'gen s':>8} {'tok/s':>8} {'wall s':>8}"
    print(f"{header} {'others':>7}")
    for label, runs in (("bare", bare), ("fleetbench", fleet)):
        for i, m in enumerate(runs, start=1):
            noisy = " *" if m.others_cores > NOISY_CORES else ""
            print(
                f"{row(label, str(i), m.tokens, m.gen_s, m.tok_s, m.wall_s)} "
                f"{m.others_cores:>7.2f}{noisy}"
            )
    for label, runs in (("bare", bare), ("fleetbench", fleet)):
        print(median_rows(label, runs))
    print("wall s = start + model load + generation (informational); others = cores used by")
    print(f"other processes during the repeat (* = above {NOISY_CORES:.2f}: contended)")

    # Same greedy work on both sides, or the comparison is not like for like.
    b0, f0 = bare[0], fleet[0]
    same_counts = sum(
        a == b for a, b in zip(b0.per_prompt_tokens, f0.per_prompt_tokens, strict=True)
    )
    same_texts = sum(a.strip() == b.strip() for a, b in zip(b0.texts, f0.texts, strict=True))
    print(
        f"\nsame completion token count per prompt: {same_counts}/{len(prompts)}; "
        f"same text: {same_texts}/{len(prompts)}"
    )
    ratio = median_ratio(bare, fleet)
    verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(
        f"ratio fleetbench/bare (median tokens/s): {ratio:.3f}  "
        f"({verdict}, target >= {TARGET_RATIO})"
    )
    quiet_bare = [m for m in bare if m.others_cores <= NOISY_CORES]
    quiet_fleet = [m for m in fleet if m.others_cores <= NOISY_CORES]
    if len(quiet_bare) < len(bare) or len(quiet_fleet) < len(fleet):
        # A contended repeat measures the neighbour, not fleetbench: say so loudly.
        print("WARNING: other processes competed for the CPU during some repeats (*);")
        if quiet_bare and quiet_fleet:
            print(
                f"ratio over uncontended repeats only "
                f"({len(quiet_bare)} bare, {len(quiet_fleet)} fleetbench): "
                f"{median_ratio(quiet_bare, quiet_fleet):.3f}"
            )
        print("rerun on a quiet machine for a reliable ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
