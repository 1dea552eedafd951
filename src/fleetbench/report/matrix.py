"""The results matrix: one row per question, two columns per run (prediction, correct).

Rows are aligned by sample id, so runs of one task over different sample sets (another
``--limit``, an ensemble) share the questions they have in common; a run without a
question leaves its cells empty. Row order follows the samples' index in the task.

* ``question``: the input as the model saw it (the rendered prompt), for ``wattbot`` the
  question line alone (without the retrieved documents and the answer instructions).
* ``target``: the reference answer, for tasks that have one: ``custom`` (rebuilt from the
  run's dataset file; empty if it cannot be read any more) and ``wattbot`` (the ground
  truth answer_value).
* prediction: the answer text (reasoning excluded), for ``wattbot`` the parsed
  answer_value as submitted, for ``humaneval`` and ``code_io`` the fraction of the
  question's samples that passed (one row per problem, all its samples together).
* correct: the sample's primary score: ``custom`` ``correct`` (0/1), ``wattbot``
  ``value_correct`` (0/1), ``humaneval``/``code_io`` the pass fraction; empty for unscored tasks.

Column names are the model name with its settings label in brackets; when two runs would
get the same name, their run ids are added in parentheses.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbench.errors import UserError
from fleetbench.fsutil import atomic_write_text
from fleetbench.report.master import format_cell
from fleetbench.store import Store
from fleetbench.tasks.answers import task_of_run

QUESTION_COLUMNS = ["sample_id", "sample_index", "question"]
TARGET_COLUMN = "target"
# The per-sample score shown as "correct"; tasks not listed have none.
SAMPLE_METRIC = {"custom": "correct", "wattbot": "value_correct", "humaneval": "passed",
                 "code_io": "passed"}  # fmt: skip
# Tasks with n samples per problem: one row per problem, the fraction passed in both cells.
PER_PROBLEM = {"humaneval": "task_id", "code_io": "problem_id"}
_WATTBOT_QUESTION = re.compile(r"^Question: (.*)$", re.MULTILINE)


@dataclass
class _Row:
    index: int
    question: str
    target: str | None = None
    cells: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Matrix:
    task: str
    header: list[str]
    rows: list[list[Any]]

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow([format_cell(v) for v in row])
        return buf.getvalue()


def build_matrix(store: Store, task: str, runs: list[sqlite3.Row]) -> Matrix:
    questions: dict[str, _Row] = {}
    targets_by_options: dict[str, dict[str, str]] = {}
    for run in runs:
        config = json.loads(run["config_json"])
        options_key = json.dumps(config.get("task_options"), sort_keys=True)
        if options_key not in targets_by_options:
            targets_by_options[options_key] = _targets(task, config)
        targets = targets_by_options[options_key]
        # One answer per question: the latest round's (rounds repeat the same questions).
        samples = store.samples(
            run["run_id"], below=int(run["planned_samples"]), round=store.last_round(run["run_id"])
        )
        for key, group in _groups(task, samples).items():
            first = group[0]
            row = questions.get(key)
            if row is None:
                row = questions[key] = _Row(first["sample_index"], _question(task, first))
            if row.target is None:
                row.target = targets.get(key) or _stored_target(task, group)
            row.cells[run["run_id"]] = _cells(task, group)
    has_target = any(r.target is not None for r in questions.values())
    header = [*QUESTION_COLUMNS, *([TARGET_COLUMN] if has_target else [])]
    for label in column_labels(runs):
        header += [f"{label} prediction", f"{label} correct"]
    ordered = sorted(questions.items(), key=lambda item: item[1].index)  # stable: first seen
    body = []
    for key, row in ordered:
        line: list[Any] = [key, row.index, row.question]
        if has_target:
            line.append(row.target)
        for run in runs:
            line.extend(row.cells.get(run["run_id"], (None, None)))
        body.append(line)
    return Matrix(task=task, header=header, rows=body)


def write_matrix(path: Path, matrix: Matrix) -> Path:
    atomic_write_text(path, matrix.to_csv())
    return path


def column_labels(runs: list[sqlite3.Row]) -> list[str]:
    """``model [settings]``, with ``(run_id)`` added where that is not unique."""
    bases = [
        r["model_name"] + (f" [{r['settings_label']}]" if r["settings_label"] else "") for r in runs
    ]
    return [
        base if bases.count(base) == 1 else f"{base} ({run['run_id']})"
        for base, run in zip(bases, runs, strict=True)
    ]


def _groups(task: str, samples: list[sqlite3.Row]) -> dict[str, list[sqlite3.Row]]:
    """Samples by question: one each, but HumanEval's n samples of one problem together."""
    groups: dict[str, list[sqlite3.Row]] = {}
    for sample in samples:
        key = sample["sample_id"]
        if task in PER_PROBLEM:
            key = _scores(sample).get(PER_PROBLEM[task]) or key.split("#")[0]
        groups.setdefault(str(key), []).append(sample)
    return groups


def _cells(task: str, group: list[sqlite3.Row]) -> tuple[Any, Any]:
    metric = SAMPLE_METRIC.get(task)
    if task in PER_PROBLEM:
        fraction = sum(int(bool(_scores(s).get("passed"))) for s in group) / len(group)
        return fraction, fraction
    sample = group[0]
    scores = _scores(sample)
    correct = scores.get(metric) if metric else None
    if isinstance(correct, bool):
        correct = int(correct)
    if task == "wattbot" and scores.get("answer_value") is not None:
        return scores["answer_value"], correct
    text = sample["answer_text"] if sample["answer_text"] is not None else sample["output_text"]
    return (text or "").strip(), correct


def _question(task: str, sample: sqlite3.Row) -> str:
    prompt = str(json.loads(sample["input_json"]).get("prompt") or "")
    if task == "wattbot":
        found = _WATTBOT_QUESTION.findall(prompt)
        if found:
            return str(found[-1]).strip()
    return prompt


def _stored_target(task: str, group: list[sqlite3.Row]) -> str | None:
    if task == "wattbot":
        truth = _scores(group[0]).get("truth_value")
        return None if truth is None else str(truth)
    return None


def _targets(task: str, config: dict[str, Any]) -> dict[str, str]:
    """Reference answers by sample id, where the task keeps them only in its dataset."""
    if task != "custom":
        return {}
    try:
        samples = task_of_run(task, config).samples()
    except (UserError, OSError, ValueError):  # the dataset moved or changed: no targets
        return {}
    return {s.id: str(s.reference) for s in samples}


def _scores(sample: sqlite3.Row) -> dict[str, Any]:
    loaded = json.loads(sample["scores_json"]) if sample["scores_json"] else None
    return loaded if isinstance(loaded, dict) else {}
