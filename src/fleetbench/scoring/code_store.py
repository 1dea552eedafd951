"""The sweep's results as runs in a results store, so that ``report`` and ``matrix`` treat
checkpoints like runs (quality against training step).

Each scored (checkpoint, file) is one run in ``OUT/fleetbench.db``: ``model_name`` is the
checkpoint folder, ``settings_label`` the file, ``task`` the file's format (``code_io``
or ``humaneval``, whose own aggregation gives pass@k) and the config carries the step.
Each solution is one sample (its code as the output, its verdict as the scores); nothing
was generated, so timings, tokens and energy are empty. A file scored again (``--fresh``)
replaces its run's samples; the run id depends only on checkpoint and file.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from fleetbench.meters.energy import NONE
from fleetbench.scoring.sweep_files import SolutionFile
from fleetbench.store.rows import SampleRow
from fleetbench.store.sqlite import COMPLETED, Store


def run_id_of(f: SolutionFile) -> str:
    digest = hashlib.sha256(f"{f.checkpoint}\0{f.file}".encode()).hexdigest()[:12]
    return f"code-{f.step}-{digest}"


class SweepStore:
    """One ``score code`` invocation's batch in the store under its output folder."""

    def __init__(self, store: Store, source: str) -> None:
        self.store = store
        self.batch_id = f"score-code-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        store.begin_batch(self.batch_id, "score code", source, {}, {}, {})

    def add(self, f: SolutionFile, results: list[dict[str, Any]]) -> None:
        run_id = run_id_of(f)
        task = f.format or "code_io"
        config = {"model": {"name": f.checkpoint, "step": f.step}, "step": f.step,
                  "task": task, "task_options": {"solutions_file": f.file},
                  "source": "fleetbench score code"}  # fmt: skip
        run = {"run_id": run_id, "model_name": f.checkpoint, "model_class": "", "task": task,
               "reasoning_state": "", "backend": "score-code", "settings_label": f.file,
               "config": config}  # fmt: skip
        self.store.delete_results([run_id])
        self.store.upsert_run(run, self.batch_id, len(results))
        attempt = self.store.start_attempt(run_id, self.batch_id, {})
        codes = [s.code for s in f.io] or [s.completion for s in f.humaneval]
        key = "task_id" if task == "humaneval" else "problem_id"
        for i, (result, code) in enumerate(zip(results, codes, strict=True)):
            sample_id = f"{result['problem_id']}#{result['index']}"
            scores = {key: result["problem_id"], "passed": int(bool(result["passed"])),
                      "verdict": result["verdict"]}  # fmt: skip
            self.store.add_sample(SampleRow(
                run_id=run_id, sample_index=i, sample_id=sample_id,
                input_json=json.dumps({"prompt": result["problem_id"]}), output_text=code,
                answer_text=code, prompt_tokens=None, completion_tokens=None, latency_s=None,
                ttft_s=None, finish_reason=None, cpu_seconds=None, energy_wh=None,
                energy_method=NONE, scores_json=json.dumps(scores), error=None, attempt=attempt,
            ))  # fmt: skip
        self.store.finish_attempt(run_id, attempt, COMPLETED, None)
        self.store.set_run_status(run_id, COMPLETED)

    def close(self, status: str = COMPLETED) -> None:
        self.store.finish_batch(self.batch_id, status)
