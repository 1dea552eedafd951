"""``fleetbench audit``: checks of a results folder that a comparison depends on.

Each finding has a severity: ``error`` (a figure is wrong: stored scores that rescoring
the stored answers does not reproduce, a run whose error rate is above the threshold),
``warning`` (a figure is missing or not comparable: unknown token counts, missing or
mixed energy methods, duplicate runs, reasoning cut off by ``max_tokens``, too few
samples, unusual latency) or ``info`` (a check that could not run). Everything is read
from the store; nothing is written.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from fleetbench.backends.base import GenerationResult
from fleetbench.errors import UserError
from fleetbench.report.rankings import label
from fleetbench.store import Store
from fleetbench.tasks.answers import task_of_run

ERROR, WARNING, INFO = "error", "warning", "info"
# Scorers that are pure functions of the answer: cheap and safe to rerun. HumanEval
# executes the answers' code, so its rescoring is `fleetbench score humaneval`'s job.
RESCORED_TASKS = ("custom", "wattbot", "textgen")
# Settings that make two runs the same experiment (run ids and labels aside).
_SAME_RUN = ("model", "task", "task_options", "generation", "backend_options")


@dataclass(frozen=True)
class Thresholds:
    latency_factor: float = 5.0  # mean latency above this x the task's median run
    max_error_rate: float = 0.05  # failed samples / stored samples
    min_samples: int = 10  # successful samples a comparison needs


@dataclass(frozen=True)
class Finding:
    severity: str
    check: str
    run_id: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# A run's samples cut off while reasoning; its WHERE is the one of the partial index
# ``samples_reasoning_cut`` (migration 014), which SQLite uses only for a query whose
# WHERE implies the index's.
REASONING_CUT_SQL = (
    "SELECT answer_text FROM samples WHERE run_id = ? AND sample_index < ? "
    "AND error IS NULL AND finish_reason = 'length' AND reasoning_text != ''"
)


def audit(
    store: Store, summaries: list[dict[str, Any]], thresholds: Thresholds | None = None
) -> list[Finding]:
    """Every finding, errors first, in run order within a severity."""
    limits = thresholds or Thresholds()
    runs = {r["run_id"]: r for r in store.runs()}
    findings: list[Finding] = []
    for s in summaries:
        findings += _run_checks(store, runs[s["run_id"]], s, limits)
    findings += _latency(summaries, limits)
    findings += _duplicates(summaries, runs)
    findings += _energy_methods(summaries)
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])  # stable: run order kept


def _run_checks(
    store: Store, run: sqlite3.Row, s: dict[str, Any], limits: Thresholds
) -> list[Finding]:
    name, run_id = f"{label(s)} / {s['task']}", s["run_id"]
    out: list[Finding] = []
    if s.get("token_count_unknown_reason"):
        out.append(
            Finding(
                WARNING,
                "token counts",
                run_id,
                f"{name}: token counts unknown: {s['token_count_unknown_reason']}",
            )
        )
    stored = int(s.get("samples_stored") or 0)
    failed = int(s.get("samples_with_error") or 0)
    if stored and failed / stored > limits.max_error_rate:
        out.append(
            Finding(
                ERROR,
                "error rate",
                run_id,
                f"{name}: {failed}/{stored} samples failed "
                f"({failed / stored:.0%} > {limits.max_error_rate:.0%})",
            )
        )
    ok = int(s.get("successful_prompts") or 0)
    if s.get("status") == "completed" and ok < limits.min_samples:
        out.append(
            Finding(
                WARNING,
                "sample count",
                run_id,
                f"{name}: {ok} successful sample(s), fewer than {limits.min_samples}: "
                "differences between runs are mostly noise",
            )
        )
    if s.get("status") == "completed" and s.get("energy_wh") is None:
        reason = s.get("energy_unmeasured_reason") or "not measured"
        out.append(Finding(WARNING, "energy missing", run_id, f"{name}: no energy: {reason}"))
    below = int(run["planned_samples"])
    # Only the candidates are read (few, through their own index: REASONING_CUT_SQL):
    # the answer's blankness is Python's strip().
    candidates = store.conn.execute(REASONING_CUT_SQL, (run_id, below))
    cut = [a for (a,) in candidates if not (a or "").strip()]
    if cut:
        out.append(
            Finding(
                WARNING,
                "reasoning cut off",
                run_id,
                f"{name}: {len(cut)} sample(s) hit max_tokens while reasoning and have no "
                "answer: raise generation.max_tokens or turn reasoning off",
            )
        )
    out += _rescore(store, run, name)
    return out


def _scored(store: Store, run: sqlite3.Row, exists: bool = False) -> list[sqlite3.Row]:
    """The run's samples with scores (of the current plan), the columns rescoring
    reads; with ``exists`` at most one."""
    cur = store.conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(
        "SELECT sample_index, sample_id, answer_text, output_text, scores_json FROM samples "
        "WHERE run_id = ? AND sample_index < ? AND scores_json IS NOT NULL "
        f"AND scores_json != '' ORDER BY round, sample_index {'LIMIT 1' if exists else ''}",
        (run["run_id"], int(run["planned_samples"])),
    ).fetchall()


def _rescore(store: Store, run: sqlite3.Row, name: str) -> list[Finding]:
    task_name, run_id = run["task"], run["run_id"]
    if task_name == "ensemble" or not _scored(store, run, exists=True):
        return []
    if task_name not in RESCORED_TASKS:
        return [Finding(INFO, "rescoring", run_id, f"{name}: {task_name} is not rescored here")]
    config = json.loads(run["config_json"])
    if task_name == "wattbot":  # retrieval only shapes the prompt: rebuild closed-book
        options = config.get("task_options") or {}
        config["task_options"] = {
            k: v for k, v in options.items() if k not in ("corpus", "corpus_dir", "mode")
        }
    try:
        task = task_of_run(task_name, config)
        by_index = {t.index: t for t in task.samples()}
    except (UserError, OSError, ValueError) as exc:
        return [Finding(INFO, "rescoring", run_id, f"{name}: cannot rebuild the task: {exc}")]
    differ = []
    for x in _scored(store, run):
        sample = by_index.get(x["sample_index"])
        if sample is None or sample.id != x["sample_id"]:
            differ.append(x["sample_id"])
            continue
        text = x["answer_text"] if x["answer_text"] is not None else x["output_text"]
        result = GenerationResult(index=x["sample_index"], text=text or "")
        again = _comparable(json.loads(json.dumps(task.score(sample, result))))
        if again != _comparable(json.loads(x["scores_json"])):
            differ.append(x["sample_id"])
    if not differ:
        return []
    shown = ", ".join(differ[:5]) + (f", … ({len(differ)} in all)" if len(differ) > 5 else "")
    return [
        Finding(
            ERROR,
            "rescoring",
            run_id,
            f"{name}: stored scores differ from rescoring the stored answers for {shown} "
            "(the dataset or the scorer changed since the run)",
        )
    ]


def _comparable(scores: Any) -> Any:
    """Scores without what depends on retrieval (``retrieved``: the passages shown)."""
    if isinstance(scores, dict):
        scores.pop("retrieved", None)
    return scores


def _latency(summaries: list[dict[str, Any]], limits: Thresholds) -> list[Finding]:
    out = []
    for task in dict.fromkeys(s["task"] for s in summaries):
        runs = [
            s
            for s in summaries
            if s["task"] == task and s.get("status") == "completed"
            if s.get("avg_latency_seconds") is not None
        ]
        if len(runs) < 3:  # a median of two says nothing about which one is unusual
            continue
        median = statistics.median(float(s["avg_latency_seconds"]) for s in runs)
        for s in runs:
            if median > 0 and float(s["avg_latency_seconds"]) > limits.latency_factor * median:
                out.append(
                    Finding(
                        WARNING,
                        "latency",
                        s["run_id"],
                        f"{label(s)} / {task}: mean latency {s['avg_latency_seconds']:.3g} s is "
                        f"over {limits.latency_factor:g}x the task's median run ({median:.3g} s)",
                    )
                )
    return out


def _duplicates(summaries: list[dict[str, Any]], runs: dict[str, sqlite3.Row]) -> list[Finding]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        config = json.loads(runs[s["run_id"]]["config_json"] or "{}")
        key = json.dumps({k: config.get(k) for k in _SAME_RUN}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(s)
    return [
        Finding(
            WARNING,
            "duplicate runs",
            group[0]["run_id"],
            f"{label(group[0])} / {group[0]['task']}: same model, task and settings under "
            f"run ids {', '.join(s['run_id'] for s in group)}: count them once",
        )
        for group in groups.values()
        if len(group) > 1
    ]


def _energy_methods(summaries: list[dict[str, Any]]) -> list[Finding]:
    out = []
    for task in dict.fromkeys(s["task"] for s in summaries):
        methods = sorted(
            {
                str(s.get("energy_method"))
                for s in summaries
                if s["task"] == task and s.get("energy_wh") is not None
            }
        )
        if len(methods) > 1:
            out.append(
                Finding(
                    WARNING,
                    "energy methods",
                    "",
                    f"{task}: energy measured by different methods ({', '.join(methods)}): "
                    "their figures are not comparable with each other",
                )
            )
    return out
