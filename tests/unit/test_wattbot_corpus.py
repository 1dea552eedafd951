"""The WattBot task's corpus: closed-book by default, ``oracle_passages`` (the gold
passages, an upper bound) only when asked, a real folder when given; the label each run
carries; old ``mode`` values; and a run's score equal to its submission.csv's score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleetbench.backends.base import GenerationResult
from fleetbench.scoring import score_files
from fleetbench.tasks import retrieval_corpus
from fleetbench.tasks.wattbot import WattBotOptions, WattBotTask


def task(**options: Any) -> WattBotTask:
    return WattBotTask(WattBotOptions.model_validate(options))


def test_default_is_closed_book() -> None:
    wattbot = task()
    samples = wattbot.samples()
    assert len(samples) == 41 and all(s.metadata == {} for s in samples)
    assert "Documents:" not in samples[0].prompt
    assert wattbot.options.retrieval_corpus() == "closed-book"
    assert retrieval_corpus("wattbot", {}) == "closed-book"


def test_oracle_passages_hand_over_the_gold_passage() -> None:
    wattbot = task(corpus="oracle_passages", top_k=2)
    first = wattbot.samples()[0]  # q003, citing chung2025
    assert first.metadata["retrieved"][0]["doc_id"] == "chung2025"
    assert "We present the ML.ENERGY Benchmark" in first.prompt
    assert wattbot.options.retrieval_corpus() == "oracle_passages"


def test_a_real_corpus_folder(tmp_path: Path) -> None:
    (tmp_path / "energy.txt").write_text("The ML.ENERGY Benchmark measures inference energy.")
    (tmp_path / "other.md").write_text("Nothing about benchmarks here, only cats.")
    wattbot = task(corpus_dir=str(tmp_path), top_k=1)
    first = wattbot.samples()[0]
    assert [r["doc_id"] for r in first.metadata["retrieved"]] == ["energy"]
    assert wattbot.options.retrieval_corpus() == str(tmp_path)


@pytest.mark.parametrize(
    ("options", "label"),
    [
        ({"mode": "closed_book"}, "closed-book"),
        ({"mode": "closed_book", "corpus_dir": None}, "closed-book"),  # as stored by old runs
        ({"mode": "rag", "corpus_dir": None}, "oracle_passages"),  # what old runs did
        ({"mode": "rag"}, "oracle_passages"),
        ({"mode": "rag", "corpus_dir": "/docs"}, "/docs"),
        ({"corpus_dir": "/docs"}, "/docs"),
        ({"corpus": "closed-book"}, "closed-book"),
        ({"corpus": "closed_book"}, "closed-book"),
    ],
)  # fmt: skip
def test_labels_and_old_mode_values(options: dict[str, Any], label: str) -> None:
    assert WattBotOptions.model_validate(options).retrieval_corpus() == label
    assert retrieval_corpus("wattbot", options) == label
    assert "mode" not in WattBotOptions.model_validate(options).model_dump()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "open_book"}, "mode 'open_book': mode is replaced by corpus"),
        ({"mode": "rag", "corpus": "oracle_passages"}, "mode is the old spelling of corpus"),
        ({"corpus": "gold"}, "'closed_book', 'closed-book' or 'oracle_passages'"),
        ({"corpus": "oracle_passages", "corpus_dir": "/docs"}, "give one"),
    ],
)  # fmt: skip
def test_bad_corpus_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WattBotOptions.model_validate(options)


def test_tasks_without_retrieval_have_no_label() -> None:
    assert retrieval_corpus("textgen", {}) == ""


QUESTIONS = (
    "id,question,answer_value,answer_unit,ref_id\n"
    "q1,How much?,5,kWh,['a']\n"
    "q2,Unknowable?,is_blank,is_blank,is_blank\n"
    "q3,Unknowable too?,is_blank,is_blank,is_blank\n"
    "q4,Empty truth?,,,\n"  # read as "nan" by the scorer: never matched
    "q5,Which?,none,,['b']\n"
)


def _answer(value: str, refs: list[str]) -> str:
    return json.dumps({"answer_value": value, "answer_unit": "", "ref_id": refs,
                       "explanation": ""})  # fmt: skip


def test_run_score_equals_the_scorer_on_its_submission(tmp_path: Path) -> None:
    questions = tmp_path / "questions.csv"
    questions.write_text(QUESTIONS)
    wattbot = task(questions_file=str(questions))
    samples = wattbot.samples()
    assert samples[3].reference == {"answer_value": "nan", "answer_unit": "nan", "ref_id": "nan"}
    texts = [
        _answer("5.0", ["a"]),
        _answer("N/A", []),  # blank: written is_blank, counts for NA recall
        _answer("None", []),  # pandas reads None as missing: "nan", not blank
        _answer("nan", []),
        _answer("None", ["b"]),  # "none" as text would match; read back it is "nan"
    ]
    scores = [
        wattbot.score(s, GenerationResult(index=s.index, text=t))
        for s, t in zip(samples, texts, strict=True)
    ]
    assert [s["answer_value"] for s in scores] == ["5.0", "is_blank", "None", "nan", "None"]
    assert [s["value_correct"] for s in scores] == [1, 1, 1, 0, 0]
    assert [s["answer_blank"] for s in scores] == [False, True, False, False, False]
    metrics = WattBotTask.aggregate_scores(scores)
    records = [
        {"sample_index": s.index, "sample_id": s.id, "scores": sc}
        for s, sc in zip(samples, scores, strict=True)
    ]
    submission = tmp_path / "submission.csv"
    submission.write_text(WattBotTask.run_files(records)["submission.csv"])
    scored = score_files(questions, submission)
    assert metrics["overall"] == pytest.approx(scored.overall, abs=1e-12)
    assert (metrics["value_accuracy"], metrics["na_recall"]) == (
        scored.value_accuracy, scored.na_recall,
    )  # fmt: skip
    assert scored.na_recall == 0.5
