"""``fleetbench ensemble``: combine stored runs of one task into a new stored run.

The ensemble is an ordinary run in the same store: backend ``ensemble``, model name
``--name`` (default ``ensemble-<strategy>``), settings label the strategy, its config
recording the members (in order) and the strategy, status ``completed``. It has one
sample per question answered by at least one member, scored by the task's own scorer on
the chosen answer, so it appears in ``master_results.csv``, the run folders and the
matrix like any other run. Running the same ensemble again replaces it.

* Questions are matched by sample id. The first member's task options define the
  questions and the scorer (the members are meant to be runs on one question set: e.g.
  two models, or closed-book and RAG runs of one WattBot file); a member's sample whose
  id is not among them is ignored.
* Each stored sample keeps its provenance in ``input_json["ensemble"]``: the strategy,
  the chosen member, the rule that chose it, the members that agreed, and every member's
  normalised answer (``key``), blankness and confidence.
* Figures are the cost of asking every member: per question, prompt/completion tokens,
  latency, CPU seconds, energy, cost and retries are the **sums** over the members that
  answered it (unknown where a member that answered does not know them, as for any
  run total: see ``report.tokens``; a member whose request failed adds what it has;
  reasoning tokens only where every member's are known). Time to first token and
  inter-token latency are left unknown. The run's duration is the time spent
  combining; the carbon intensity is the first member's. The members' energy scopes
  are the ensemble's: a client-only member empties its energy (``report.energy``).

Strategies: see ``fleetbench.runner.ensemble_vote``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetbench.backends.base import GenerationResult
from fleetbench.errors import ConfigError, UserError
from fleetbench.meters import NONE, host_info

# The batch's own export step (summaries, star ratings, run folders, master CSV), so an
# ensemble refreshes exactly what a batch writes.
from fleetbench.report.energy import energy_scope, scope_parts
from fleetbench.report.exports import export_results
from fleetbench.report.page import write_report
from fleetbench.report.render import report_available
from fleetbench.report.select import resolve_runs
from fleetbench.runner.ensemble_vote import STRATEGIES, Choice, Strategy, Vote, choose
from fleetbench.runner.plan import slug
from fleetbench.scoring.response import split_response
from fleetbench.store import COMPLETED, FAILED, SampleRow, Store
from fleetbench.store.lock import OutputLock
from fleetbench.store.opener import open_store
from fleetbench.tasks.answers import read_answer, task_of_run
from fleetbench.tasks.base import Sample

BACKEND = "ensemble"
_SUMMED = ("prompt_tokens", "completion_tokens", "latency_s", "cpu_seconds", "energy_wh",
           "gpu_energy_wh", "gpu_energy_gross_wh", "cpu_energy_wh", "cpu_energy_gross_wh",
           "cost_usd")  # fmt: skip


@dataclass(frozen=True)
class EnsembleSpec:
    output: Path
    run_ids: list[str]
    strategy: Strategy
    name: str | None = None


@dataclass(frozen=True)
class _Member:
    run: sqlite3.Row
    config: dict[str, Any]
    samples: dict[str, SampleRow]  # by sample id


def create_ensemble(spec: EnsembleSpec) -> dict[str, Any]:
    """Check the members, store the combined run, refresh the exports; its summary."""
    if spec.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {spec.strategy!r}; valid: {', '.join(STRATEGIES)}")
    if len(spec.run_ids) < 2:
        raise ConfigError("an ensemble needs at least two runs (--runs A --runs B, or A,B)")
    store = open_store(spec.output)
    try:
        members = _members(store, spec.run_ids)
        task_name = members[0].run["task"]
        try:
            task = task_of_run(task_name, members[0].config)
            samples = task.samples()
        except UserError as exc:
            raise ConfigError(
                f"cannot rebuild the questions of run {members[0].run['run_id']}: {exc}"
            ) from None
        questions = _questions(samples, members)
        run = _run_record(spec, members, task_name)
        with OutputLock(spec.output):
            _store_run(store, run, task, questions, members, spec.strategy)
            summaries = export_results(store, spec.output, [run["run_id"]])
            if report_available():  # the page now shows the ensemble and its gain
                write_report(store, spec.output, summaries)
        return next(s for s in summaries if s["run_id"] == run["run_id"])
    finally:
        store.close()


def _members(store: Store, run_ids: list[str]) -> list[_Member]:
    runs = resolve_runs(store, run_ids)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    if len(tasks) > 1:
        listed = ", ".join(f"{r['run_id']} ({r['task']})" for r in runs)
        raise ConfigError(f"an ensemble combines runs of one task; these mix tasks: {listed}")
    members = []
    for run in runs:
        # One answer per question: the latest round's (rounds repeat the same questions).
        stored = store.samples(
            run["run_id"], below=int(run["planned_samples"]), round=store.last_round(run["run_id"])
        )
        if not stored:
            raise ConfigError(f"run {run['run_id']} has no stored samples to combine")
        config = json.loads(run["config_json"])
        rows = [SampleRow.from_db(s) for s in stored]
        members.append(_Member(run, config, {r.sample_id: r for r in rows}))
    return members


def _questions(samples: list[Sample], members: list[_Member]) -> list[Sample]:
    """The task's samples that some member answered, renumbered 0..n-1 in task order."""
    ids = {s.id for s in samples}
    for member in members:
        if not ids & member.samples.keys():
            raise ConfigError(
                f"run {member.run['run_id']} shares no question with run "
                f"{members[0].run['run_id']} (sample ids differ)"
            )
    answered = [s for s in samples if any(s.id in m.samples for m in members)]
    return [s.model_copy(update={"index": i}) for i, s in enumerate(answered)]


def _run_record(spec: EnsembleSpec, members: list[_Member], task: str) -> dict[str, Any]:
    member_ids = [m.run["run_id"] for m in members]
    name = spec.name or f"ensemble-{spec.strategy}"
    digest = hashlib.sha256(json.dumps([member_ids, spec.strategy]).encode()).hexdigest()[:10]
    first = members[0]
    return {
        "run_id": f"{slug(name, empty=BACKEND)}__{task}__{spec.strategy}__{digest}",
        "model_name": name,
        "model_class": _common([m.run["model_class"] for m in members], ""),
        "task": task,
        "reasoning_state": _common([m.run["reasoning_state"] for m in members], "mixed"),
        "backend": BACKEND,
        "settings_label": spec.strategy,
        "config": {
            "ensemble": {
                "strategy": spec.strategy,
                "members": member_ids,
                "member_models": [m.run["model_name"] for m in members],
                "figures": "sum of the members' per-question figures",
            },
            "model": {"name": name, "backend": BACKEND},
            "task": first.config.get("task") or {"name": task},
            "task_options": first.config.get("task_options") or {},
            "settings_label": spec.strategy,
            "energy": first.config["energy"],
        },
    }


def _store_run(
    store: Store,
    run: dict[str, Any],
    task: Any,
    questions: list[Sample],
    members: list[_Member],
    strategy: Strategy,
) -> None:
    batch_id = f"e-{uuid.uuid4().hex[:12]}"
    host = host_info()
    store.begin_batch(batch_id, run["model_name"], "fleetbench ensemble", run["config"], {}, host)
    store.upsert_run(run, batch_id, len(questions))
    store.delete_results([run["run_id"]])
    attempt = store.start_attempt(run["run_id"], batch_id, host)
    # The members' energy scopes: a client-only member's summed energy is as partial
    # as its own (report/energy.py empties both).
    parts = [p for m in members for p in scope_parts(energy_scope(store.attempts(m.run["run_id"])))]
    scope = {"scope": ", ".join(dict.fromkeys(parts))}
    store.update_attempt(run["run_id"], attempt, energy_json=json.dumps(scope))
    status: str = FAILED
    error: str | None = "interrupted while combining"
    try:
        for sample in questions:
            votes = [_vote(task, sample, m) for m in members if sample.id in m.samples]
            choice = choose(strategy, votes)
            store.add_sample(_sample_row(run["run_id"], attempt, task, sample, votes, choice))
        status, error = COMPLETED, None
    finally:
        store.finish_attempt(run["run_id"], attempt, status, error)
        store.finish_batch(batch_id, status)


def _vote(task: Any, sample: Sample, member: _Member) -> Vote:
    row = member.samples[sample.id]
    return Vote(member.run["run_id"], read_answer(task, sample, _answer(row), row.error), row)


def _answer(row: SampleRow) -> str:
    if row.answer_text is not None:
        return row.answer_text
    return split_response(row.output_text or "").answer


def _sample_row(
    run_id: str, attempt: int, task: Any, sample: Sample, votes: list[Vote], choice: Choice
) -> SampleRow:
    chosen = choice.vote.sample
    answer = _answer(chosen)
    result = GenerationResult(index=sample.index, text=answer, error=chosen.error)
    messages = json.loads(chosen.input_json).get("messages")
    provenance = {
        "strategy": choice.rule,
        "chosen": choice.vote.run_id,
        "agreeing": choice.agreeing,
        "answers": [
            {"run_id": v.run_id, "key": v.answer.key, "blank": v.answer.blank,
             "confidence": v.answer.confidence}
            for v in votes
        ],
    }  # fmt: skip
    rows = [v.sample for v in votes]
    reasoning = [r.reasoning_tokens for r in rows]
    methods = sorted({r.energy_method for r in rows if r.energy_wh is not None})
    sources = sorted({r.token_source for r in rows if r.token_source})
    scores = task.score(sample, result)
    summed: dict[str, Any] = {column: _sum(rows, column) for column in _SUMMED}
    return SampleRow(
        run_id=run_id,
        sample_index=sample.index,
        sample_id=sample.id,
        attempt=attempt,
        input_json=json.dumps(
            {"prompt": sample.prompt, "messages": messages, "ensemble": provenance}
        ),
        output_text=chosen.output_text,
        answer_text=answer,
        reasoning_text=chosen.reasoning_text,
        reasoning_tokens=None if None in reasoning else sum(r or 0 for r in reasoning),
        **summed,
        ttft_s=None,
        itl_s=None,
        finish_reason=chosen.finish_reason,
        energy_method="+".join(methods) if methods else NONE,
        token_source="+".join(sources) or None,
        retries=sum(r.retries or 0 for r in rows),
        scores_json=None if scores is None else json.dumps(scores),
        error=chosen.error,
    )


def _sum(rows: list[SampleRow], column: str) -> float | None:
    """The members' sum; unknown if a member that answered lacks the figure (a partial
    sum would pass for the whole). A member whose request failed adds what it has."""
    values = [getattr(r, column) for r in rows]
    if any(v is None and r.error is None for v, r in zip(values, rows, strict=True)):
        return None
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _common(values: list[str], otherwise: str) -> str:
    return values[0] if len(set(values)) == 1 else otherwise
