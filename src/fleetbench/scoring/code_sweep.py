"""``score code``: score every solution file of a checkpoint sweep, in step order.

Files are scored one after another in step order; the solutions of one file run in
parallel (``workers`` at a time; each solution is independent, so the results do not
depend on ``workers``). Each file has a budget of ``timeout_s``: when it runs out the
solutions not yet started are dropped, the running ones stop before their next test,
and the file's record carries the error (and no per-file result is written, so the
next run tries it again).

Output, under ``out``:

* ``eval_checkpoint_<step>/eval_<file>.json``: the file's record and per-solution
  results, written atomically once the file is scored; its presence means "already
  scored" (skipped unless ``fresh``);
* ``batch_eval_results.json``: one record per checkpoint and file, in step order,
  rewritten after every file, so an interrupted sweep leaves the records so far.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from fleetbench.fsutil import atomic_write_text
from fleetbench.safeparse import loads_json
from fleetbench.sandbox.checkers import Checker, Execution, RunLimits
from fleetbench.sandbox.runner import kill_all
from fleetbench.scoring.code_io import IOProblem, indexed, run_solution, summarise
from fleetbench.scoring.humaneval import HumanEvalProblem, limits_for, score_samples
from fleetbench.scoring.passk import DEFAULT_KS, pass_at_ks
from fleetbench.scoring.sweep_files import SolutionFile

RESULTS_FILE = "batch_eval_results.json"
DEFAULT_WORKERS = 4
DEFAULT_TIMEOUT_S = 300.0
Progress = Callable[[SolutionFile, int], None]  # (file, solutions just finished)


class _Cancelled(Exception):
    pass


class _Stoppable:
    """A checker that refuses new tests once its file's budget has run out."""

    def __init__(self, inner: Checker, stop: threading.Event) -> None:
        self.name, self.inner, self.stop = inner.name, inner, stop

    def validate(self, languages: set[str]) -> None:
        self.inner.validate(languages)

    def execute(self, code: str, language: str, stdin: str, limits: RunLimits) -> Execution:
        if self.stop.is_set():
            raise _Cancelled
        return self.inner.execute(code, language, stdin, limits)


def base_record(f: SolutionFile) -> dict[str, Any]:
    return {"step": f.step, "checkpoint": f.checkpoint, "file": f.file, "format": f.format,
            "problems": 0, "solutions": f.count, "passed": 0, "pass@k": {}, "failures": {},
            "duration_s": 0.0, "error": f.error or None}  # fmt: skip


def existing(out: Path, f: SolutionFile) -> dict[str, Any] | None:
    """The record of an earlier run's result for ``f``, if a readable one is there."""
    try:
        data = loads_json((out / f.out_rel).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record = data.get("record") if isinstance(data, dict) else None
    return record if isinstance(record, dict) and not record.get("error") else None


def _humaneval_job(problems: dict[str, HumanEvalProblem], timeout: float) -> Callable[..., Any]:
    def job(sample: Any, index: int) -> dict[str, Any]:
        result = score_samples([sample], problems, ks=(1,), limits=limits_for(timeout), workers=1)
        one = result.results[0]
        return {"problem_id": sample.task_id, "index": index, "passed": one.passed,
                "verdict": "accepted" if one.passed else one.status, "reason": one.reason,
                "duration_s": one.duration_s}  # fmt: skip

    return job


def _summary_he(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, list[int]] = {}
    failures: Counter[str] = Counter()
    for r in results:
        tally = counts.setdefault(r["problem_id"], [0, 0])
        tally[0] += 1
        tally[1] += bool(r["passed"])
        if not r["passed"]:
            failures[r["verdict"]] += 1
    pairs = [(n, c) for n, c in counts.values()]
    return {"problems": len(pairs), "solutions": len(results), "passed": sum(c for _, c in pairs),
            "pass@k": {str(k): v for k, v in pass_at_ks(pairs, DEFAULT_KS).items()},
            "failures": dict(sorted(failures.items()))}  # fmt: skip


def score_one(
    f: SolutionFile,
    pool: ThreadPoolExecutor,
    checker: Checker,
    io_problems: dict[str, IOProblem] | None,
    he_problems: dict[str, HumanEvalProblem] | None,
    timeout_s: float,
    progress: Progress,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score one parsed file: its record and per-solution results (file order)."""
    record = base_record(f)
    start = time.monotonic()
    stop = threading.Event()
    futures: list[Future[Any]] = []
    if f.format == "code_io":
        assert io_problems is not None
        stoppable = _Stoppable(checker, stop)

        def io_job(solution: Any, index: int) -> Any:
            return run_solution(solution, io_problems[solution.problem_id], stoppable, index)

        items: list[tuple[Any, int]] = list(indexed(f.io))
        job: Callable[[Any, int], Any] = io_job
    else:
        assert he_problems is not None
        seen: Counter[str] = Counter()
        items = []
        for sample in f.humaneval:
            items.append((sample, seen[sample.task_id]))
            seen[sample.task_id] += 1
        job = _humaneval_job(he_problems, min(timeout_s, 10.0))
    for item, index in items:
        future = pool.submit(job, item, index)
        future.add_done_callback(lambda fut: progress(f, 1) if not fut.cancelled() else None)
        futures.append(future)
    try:
        pending = wait(futures, timeout=timeout_s).not_done
    except BaseException:  # Ctrl-C: start nothing more, stop what runs, then go
        stop.set()
        for future in futures:
            future.cancel()
        kill_all()
        raise
    if pending:
        stop.set()
        for future in pending:
            future.cancel()
        wait(pending)
    finished = [fut for fut in futures if fut.done() and not fut.cancelled()]
    for fut in finished:  # a checker gone down mid-sweep (ConfigError) stops the sweep
        exc = fut.exception()
        if exc is not None and not isinstance(exc, _Cancelled):
            raise exc
    results = [fut.result() for fut in finished if fut.exception() is None]
    if f.format == "code_io":
        summary, results = summarise(results), [r.to_json() for r in results]
    else:
        summary = _summary_he(results)
    record.update(summary, duration_s=round(time.monotonic() - start, 3))
    if len(results) < len(futures):
        record["error"] = (f"evaluation timed out after {timeout_s:g} s "
                           f"({len(results)} of {len(futures)} solutions scored)")  # fmt: skip
    return record, results


def write_file_result(out: Path, record: dict[str, Any], results: list[dict[str, Any]]) -> None:
    rel = f"eval_checkpoint_{record['step']}"
    f_out = out / rel
    f_out.mkdir(parents=True, exist_ok=True)
    name = SolutionFile(record["step"], "", record["file"], Path()).out_name
    atomic_write_text(f_out / name, json.dumps({"record": record, "results": results}, indent=1))


def write_batch(out: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(out / RESULTS_FILE, json.dumps(records, indent=1) + "\n")


def sweep(
    files: list[SolutionFile],
    out: Path,
    checker: Checker,
    io_problems: dict[str, IOProblem] | None,
    he_problems: dict[str, HumanEvalProblem] | None,
    *,
    workers: int = DEFAULT_WORKERS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    fresh: bool = False,
    progress: Progress = lambda f, n: None,
    started: Callable[[SolutionFile, str], None] = lambda f, how: None,
    scored: Callable[[SolutionFile, list[dict[str, Any]]], None] = lambda f, results: None,
) -> list[dict[str, Any]]:
    """Score the parsed ``files`` (step order) and write the outputs; the records.

    ``started(file, how)`` is told ``"skipped"``, ``"error"`` or ``"scoring"`` per file;
    ``scored(file, results)`` gets each file scored in full (the results store)."""
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for f in files:
            earlier = None if fresh or f.error else existing(out, f)
            if earlier is not None:
                started(f, "skipped")
                records.append({**earlier, "skipped": True})
            elif f.error:
                started(f, "error")
                records.append(base_record(f))
            else:
                started(f, "scoring")
                record, results = score_one(f, pool, checker, io_problems, he_problems,
                                            timeout_s, progress)  # fmt: skip
                if not record["error"]:
                    scored(f, results)
                    write_file_result(out, record, results)
                records.append(record)
            write_batch(out, records)
    return records
