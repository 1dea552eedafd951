"""Results matrix and ensembles on hand-written stored runs: every strategy rule,
normalisation, provenance, summed figures, alignment by sample id and bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from fleetbench.backends.base import GenerationResult
from fleetbench.errors import ConfigError
from fleetbench.report.matrix import build_matrix, column_labels
from fleetbench.report.select import select_task_runs
from fleetbench.runner.ensemble import EnsembleSpec, create_ensemble
from fleetbench.runner.ensemble_vote import Vote, by_confidence, first_non_blank, majority
from fleetbench.store import SampleRow, Store
from fleetbench.tasks.answers import Answer, task_of_run

ENERGY = {"watts_per_core": 10.0, "carbon_intensity_g_per_kwh": 475.0}
NUMERIC_ROWS = [
    {"id": "a", "input": "2 + 2?", "target": "4"},
    {"id": "b", "input": "3 + 3?", "target": "6"},
    {"id": "c", "input": "1 + 1?", "target": "2"},
]
WATTBOT_CSV = (
    "id,question,answer,answer_value,answer_unit,ref_id\n"
    "q1,How many GPUs?,1200 GPUs,1200,GPUs,['doc1']\n"
    "q2,Which year?,2021,2021,year,['doc2']\n"
    "q3,Unknowable?,is_blank,is_blank,is_blank,is_blank\n"
)


class Stored:
    """A results folder with runs written straight into its store."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.store = Store.in_dir(output)
        self.store.begin_batch("b1", "plan", "test", {}, {}, {})

    def add(
        self,
        run_id: str,
        task: str,
        options: dict[str, Any],
        answers: dict[str, Any],
        model: str | None = None,
        label: str = "",
        scores: dict[str, dict[str, Any]] | None = None,
    ) -> str:
        """``answers``: sample id -> text, or ``("error", message)``."""
        record = {
            "run_id": run_id, "model_name": model or run_id, "model_class": "A", "task": task,
            "reasoning_state": "Off", "backend": "llamacpp", "settings_label": label,
            "config": {"task": {"name": task}, "task_options": options, "energy": ENERGY},
        }  # fmt: skip
        self.store.upsert_run(record, "b1", planned_samples=len(answers))
        if scores is None:  # as the worker scores: the task's own scorer
            scores = _score(task, record["config"], answers)
        attempt = self.store.start_attempt(run_id, "b1", {})
        for index, (sample_id, answer) in enumerate(answers.items()):
            error = answer[1] if isinstance(answer, tuple) else None
            text = "" if error else answer
            self.store.add_sample(SampleRow(
                run_id=run_id, sample_index=index, sample_id=sample_id,
                attempt=attempt,
                input_json=json.dumps({"prompt": f"prompt {sample_id}", "messages": []}),
                output_text=text, answer_text=text, prompt_tokens=10,
                completion_tokens=5, latency_s=0.5, ttft_s=0.1,
                finish_reason="stop", cpu_seconds=1.0, energy_wh=0.01,
                cpu_energy_wh=0.01, cpu_energy_gross_wh=0.01,
                energy_method="estimate", cost_usd=None,
                scores_json=json.dumps(scores.get(sample_id)),
                error=error,
            ))  # fmt: skip
        self.store.finish_attempt(run_id, attempt, "completed", None)
        return run_id

    def ensemble(self, runs: list[str], strategy: Any, name: str | None = None) -> str:
        summary = create_ensemble(EnsembleSpec(self.output, runs, strategy, name))
        return str(summary["run_id"])

    def samples(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.store.samples(run_id)
        return [
            {**dict(r), "scores": json.loads(r["scores_json"] or "null"),
             "provenance": json.loads(r["input_json"]).get("ensemble")}
            for r in rows
        ]  # fmt: skip


def _score(task: str, config: Any, answers: dict[str, Any]) -> dict[str, Any]:
    runner = task_of_run(task, config)
    samples = {s.id: s for s in runner.samples()} if task != "humaneval" else {}
    scores = {}
    for sample_id, answer in answers.items():
        if sample_id in samples:
            error = answer[1] if isinstance(answer, tuple) else None
            result = GenerationResult(index=0, text="" if error else answer, error=error)
            scores[sample_id] = runner.score(samples[sample_id], result)
    return scores


@pytest.fixture
def stored(tmp_path: Path) -> Stored:
    return Stored(tmp_path / "out")


@pytest.fixture
def numeric(tmp_path: Path) -> dict[str, Any]:
    data = tmp_path / "numeric.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in NUMERIC_ROWS))
    return {"file": str(data), "scorer": "numeric"}


@pytest.fixture
def wattbot(tmp_path: Path) -> dict[str, Any]:
    data = tmp_path / "wattbot.csv"
    data.write_text(WATTBOT_CSV)
    return {"questions_file": str(data), "mode": "closed_book"}


def _json_answer(value: str, refs: str = "doc1", confidence: Any = None) -> str:
    obj: dict[str, Any] = {"answer_value": value, "answer_unit": "", "ref_id": [refs],
                           "explanation": "because"}  # fmt: skip
    if confidence is not None:
        obj["confidence"] = confidence
    return "```json\n" + json.dumps(obj) + "\n```"


# -- strategies on plain votes -----------------------------------------------------------
def _votes(*answers: Answer) -> list[Vote]:
    return [Vote(f"r{i}", a, None) for i, a in enumerate(answers)]


def test_vote_rules_and_tie_breaks() -> None:
    four, five, blank = Answer("4", False), Answer("5", False), Answer("is_blank", True)
    missing = Answer(None, True)
    choice = majority(_votes(five, four, four))
    assert (choice.vote.run_id, choice.agreeing) == ("r1", ["r1", "r2"])
    assert majority(_votes(five, four)).vote.run_id == "r0"  # tie: earlier member
    assert majority(_votes(missing, missing, four)).vote.run_id == "r2"  # failures never win
    assert majority(_votes(missing, missing)).rule.startswith("no usable answer")
    assert first_non_blank(_votes(missing, blank, five, four)).vote.run_id == "r2"
    assert first_non_blank(_votes(missing, blank)).vote.run_id == "r1"  # all blank
    rated = _votes(Answer("4", False, 0.4), Answer("5", False, 0.9), Answer("6", False, 0.9))
    assert by_confidence(rated).vote.run_id == "r1"  # highest, tie to the earlier
    fallback = by_confidence(_votes(five, four, four))
    assert fallback.vote.run_id == "r1" and fallback.rule.startswith("no confidence")


# -- ensembles of stored runs ------------------------------------------------------------
def test_custom_majority_uses_the_scorers_normalisation(
    stored: Stored, numeric: dict[str, Any]
) -> None:
    r1 = stored.add("r1", "custom", numeric, {"a": "It is 5", "b": "6", "c": ("error", "boom")})
    r2 = stored.add("r2", "custom", numeric, {"a": "4", "b": "seven", "c": "2"})
    r3 = stored.add("r3", "custom", numeric, {"a": "The answer: 4.0", "b": "7", "c": "3"})
    run_id = stored.ensemble([r1, r2, r3], "majority", name="vote")
    rows = stored.samples(run_id)
    assert [r["sample_id"] for r in rows] == ["a", "b", "c"]
    a, b, c = rows
    assert a["answer_text"] == "4" and a["scores"] == {"correct": 1, "prediction": "4"}
    assert a["provenance"]["chosen"] == "r2" and a["provenance"]["agreeing"] == ["r2", "r3"]
    assert [x["key"] for x in a["provenance"]["answers"]] == ["5", "4", "4"]
    assert b["provenance"]["chosen"] == "r1"  # 6 vs 7 ("seven" has no number): tie -> r1
    assert b["scores"]["correct"] == 1
    assert c["provenance"]["chosen"] == "r2"  # r1 failed: a tie of 2 and 3 goes to r2
    # figures: the sum over the members that answered
    assert (a["prompt_tokens"], a["completion_tokens"]) == (30, 15)
    assert a["latency_s"] == pytest.approx(1.5) and a["energy_wh"] == pytest.approx(0.03)
    # per device class too, so the run's GPU/CPU columns come from the same figures
    assert a["cpu_energy_wh"] == pytest.approx(0.03) and a["gpu_energy_wh"] is None
    assert a["ttft_s"] is None and a["cost_usd"] is None

    run = stored.store.get_run(run_id)
    assert run is not None
    assert (run["backend"], run["status"], run["model_name"]) == ("ensemble", "completed", "vote")
    config = json.loads(run["config_json"])
    assert config["ensemble"]["members"] == ["r1", "r2", "r3"]
    assert config["ensemble"]["strategy"] == "majority"
    with open(stored.output / "master_results.csv", newline="") as f:
        master = {r["run_id"]: r for r in csv.DictReader(f)}
    assert master[run_id]["backend"] == "ensemble"
    assert float(master[run_id]["quality_score"]) == pytest.approx(1.0)
    exported = (stored.output / "runs" / run_id / "results.jsonl").read_text().splitlines()
    assert json.loads(exported[0])["ensemble"]["chosen"] == "r2"

    again = stored.ensemble([r1, r2, r3], "majority", name="vote")  # replaces, no duplicates
    assert again == run_id and len(stored.samples(run_id)) == 3


def test_first_non_blank_skips_empty_and_failed_answers(
    stored: Stored, numeric: dict[str, Any]
) -> None:
    r1 = stored.add("r1", "custom", numeric, {"a": "", "b": ("error", "x"), "c": "no idea"})
    r2 = stored.add("r2", "custom", numeric, {"a": "4", "b": "5", "c": "2"})
    rows = stored.samples(stored.ensemble([r1, r2], "first_non_blank"))
    assert [r["provenance"]["chosen"] for r in rows] == ["r2", "r2", "r2"]
    assert [r["scores"]["correct"] for r in rows] == [1, 0, 1]


def test_wattbot_strategies(stored: Stored, wattbot: dict[str, Any]) -> None:
    r1 = stored.add("r1", "wattbot", wattbot, {
        "q1": _json_answer("about 1,200", confidence=0.2),
        "q2": _json_answer("is_blank", refs="is_blank", confidence="90%"),
        "q3": "not json at all, just a long rambling reply\nover two lines",
    })  # fmt: skip
    r2 = stored.add("r2", "wattbot", wattbot, {
        "q1": _json_answer("1300", confidence=0.95),
        "q2": _json_answer("2021", refs="doc2", confidence=0.5),
        "q3": _json_answer("is_blank", refs="is_blank"),
    })  # fmt: skip
    r3 = stored.add("r3", "wattbot", wattbot, {
        "q1": _json_answer("1200"),
        "q2": _json_answer("2020", refs="doc2"),
        "q3": _json_answer("42"),
    })  # fmt: skip

    rows = stored.samples(stored.ensemble([r1, r2, r3], "majority"))
    q1, q2, q3 = rows
    assert q1["provenance"]["chosen"] == "r1"  # "about 1,200" and "1200" agree
    assert q1["provenance"]["agreeing"] == ["r1", "r3"]
    assert q1["scores"]["value_correct"] == 1 and q1["scores"]["answer_value"] == "about 1,200"
    assert q2["provenance"]["chosen"] == "r1"  # three different answers: the first
    assert q3["provenance"]["chosen"] == "r2"  # unparsable r1 does not vote; tie -> r2
    assert q3["scores"]["answer_blank"] is True

    rows = stored.samples(stored.ensemble([r1, r2, r3], "first_non_blank"))
    assert [r["provenance"]["chosen"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[1]["scores"]["value_correct"] == 1

    rows = stored.samples(stored.ensemble([r1, r2, r3], "confidence"))
    assert [r["provenance"]["chosen"] for r in rows] == ["r2", "r1", "r2"]
    assert rows[0]["provenance"]["answers"][1]["confidence"] == 0.95
    assert rows[1]["provenance"]["answers"][0]["confidence"] == 0.9  # "90%"
    assert rows[2]["provenance"]["strategy"].startswith("no confidence reported: majority")
    submission = stored.output / "runs" / rows[0]["run_id"] / "submission.csv"
    assert (
        submission.read_text().splitlines()[0] == "id,answer_value,answer_unit,ref_id,explanation"
    )


def test_members_over_different_samples_align_by_id(
    stored: Stored, numeric: dict[str, Any]
) -> None:
    r1 = stored.add("r1", "custom", numeric, {"a": "4"})
    r2 = stored.add("r2", "custom", numeric, {"a": "5", "b": "6", "c": "3"})
    rows = stored.samples(stored.ensemble([r1, r2], "majority"))
    assert [(r["sample_index"], r["sample_id"], r["provenance"]["chosen"]) for r in rows] == [
        (0, "a", "r1"), (1, "b", "r2"), (2, "c", "r2")]  # fmt: skip
    assert rows[1]["prompt_tokens"] == 10  # only r2 answered b


@pytest.mark.parametrize(
    ("runs", "pattern"),
    [
        (["r1"], r"at least two runs"),
        (["r1", "nope"], r"unknown run id 'nope'"),
        (["r1", "r1"], r"given twice"),
        (["r1", "t1"], r"combines runs of one task; these mix tasks: r1 \(custom\), t1 \(text"),
        (["r1", "other"], r"run other shares no question with run r1"),
    ],
)
def test_bad_members(
    stored: Stored, numeric: dict[str, Any], runs: list[str], pattern: str
) -> None:
    stored.add("r1", "custom", numeric, {"a": "4"})
    stored.add("t1", "textgen", {}, {"0": "hello"})
    stored.add("other", "custom", numeric, {"zz": "4"})
    with pytest.raises(ConfigError, match=pattern) as info:
        stored.ensemble(runs, "majority")
    assert "\n" not in str(info.value)
    assert stored.store.get_run("ensemble-majority") is None


def test_missing_store_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no results store"):
        create_ensemble(EnsembleSpec(tmp_path / "none", ["a", "b"], "majority"))
    assert not (tmp_path / "none").exists()


# -- the matrix ----------------------------------------------------------------------------
def _matrix_rows(stored: Stored, task: str | None = None, **kw: Any) -> list[dict[str, str]]:
    name, runs = select_task_runs(stored.store, task, kw.get("runs", []), kw.get("models", []))
    text = build_matrix(stored.store, name, runs).to_csv()
    return list(csv.DictReader(io.StringIO(text)))


def test_matrix_aligns_by_sample_id_with_targets(stored: Stored, numeric: dict[str, Any]) -> None:
    stored.add("r1", "custom", numeric, {"a": "5", "b": "6"}, model="m1", label="greedy")
    stored.add("r2", "custom", numeric, {"a": "4", "b": "6", "c": "2"}, model="m1",
               label="greedy")  # fmt: skip
    rows = _matrix_rows(stored)
    assert list(rows[0]) == [
        "sample_id", "sample_index", "question", "target",
        "m1 [greedy] (r1) prediction", "m1 [greedy] (r1) correct",
        "m1 [greedy] (r2) prediction", "m1 [greedy] (r2) correct",
    ]  # fmt: skip
    assert [(r["sample_id"], r["target"]) for r in rows] == [("a", "4"), ("b", "6"), ("c", "2")]
    by_id = {r["sample_id"]: r for r in rows}
    assert by_id["c"]["m1 [greedy] (r1) prediction"] == ""  # r1 stopped before question c
    assert by_id["c"]["m1 [greedy] (r1) correct"] == ""
    assert by_id["c"]["m1 [greedy] (r2) prediction"] == "2"
    assert by_id["a"]["m1 [greedy] (r1) correct"] == "0"
    assert by_id["a"]["m1 [greedy] (r2) correct"] == "1"
    assert by_id["a"]["question"] == "prompt a"


def test_matrix_wattbot_and_humaneval_cells(stored: Stored, wattbot: dict[str, Any]) -> None:
    stored.add("w1", "wattbot", wattbot, {"q1": "x"}, scores={"q1": {
        "answer_value": "1300", "value_correct": 0, "truth_value": "1200"}})  # fmt: skip
    passed = {"HumanEval/0#0": 1, "HumanEval/0#1": 0, "HumanEval/1#0": 1}
    stored.add(
        "h1",
        "humaneval",
        {},
        dict.fromkeys(passed, "code"),
        scores={k: {"passed": v, "task_id": k.split("#")[0]} for k, v in passed.items()},
    )
    with pytest.raises(ConfigError, match=r"several tasks \(wattbot, humaneval\).*--task"):
        _matrix_rows(stored)
    (row,) = _matrix_rows(stored, "wattbot")
    assert (row["target"], row["w1 prediction"], row["w1 correct"]) == ("1200", "1300", "0")
    rows = _matrix_rows(stored, "humaneval")
    assert "target" not in rows[0]
    assert [(r["sample_id"], r["h1 prediction"], r["h1 correct"]) for r in rows] == [
        ("HumanEval/0", "0.5", "0.5"), ("HumanEval/1", "1", "1")]  # fmt: skip


def test_run_selection(stored: Stored, numeric: dict[str, Any]) -> None:
    stored.add("alpha-1", "custom", numeric, {"a": "4"}, model="Alpha")
    stored.add("beta-1", "custom", numeric, {"a": "4"}, model="beta")
    stored.add("beta-2", "textgen", {}, {"0": "hi"}, model="beta")
    assert [r["run_id"] for r in select_task_runs(stored.store, None, ["beta-1", "al"], [])[1]] \
        == ["beta-1", "alpha-1"]  # fmt: skip
    assert [r["run_id"] for r in select_task_runs(stored.store, "custom", [], ["ALPHA"])[1]] == [
        "alpha-1"]  # fmt: skip
    with pytest.raises(ConfigError, match="ambiguous"):
        select_task_runs(stored.store, None, ["beta"], [])
    with pytest.raises(ConfigError, match="beta-2 is a textgen run, not custom"):
        select_task_runs(stored.store, "custom", ["beta-2"], [])
    with pytest.raises(ConfigError, match="no selected run of task 'wattbot'"):
        select_task_runs(stored.store, "wattbot", [], [])
    runs = stored.store.runs()
    assert column_labels(runs) == ["Alpha", "beta (beta-1)", "beta (beta-2)"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.7, 0.7), ("0.7", 0.7), (85, 0.85), ("85%", 0.85), ("high", None), (250, None),
     (True, None), (None, None)],
)  # fmt: skip
def test_self_reported_confidence(value: Any, expected: float | None) -> None:
    from fleetbench.tasks.answer_json import parse

    text = json.dumps({"answer_value": "1", "confidence": value})
    assert parse(text).confidence == (pytest.approx(expected) if expected is not None else None)
