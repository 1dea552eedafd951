"""coverage_score and retrieval_recall: the definitions in scoring/coverage.py, and the
wattbot scores that carry them."""

from __future__ import annotations

import pytest

from fleetbench.scoring.coverage import content_words, coverage_score, retrieval_recall


def test_content_words() -> None:
    assert content_words("The GPU used 7 kWh, and the CPU a little!") == {
        "gpu", "used", "7", "kwh", "cpu", "little"}  # fmt: skip


def test_coverage_score() -> None:
    context = ["Training used 1,200 MWh of electricity.", "The GPUs were A100s."]
    # answer words: 1, 200, mwh, electricity, h100s; all but h100s are in the context
    assert coverage_score("1,200 MWh of electricity on H100s", context) == pytest.approx(4 / 5)
    assert coverage_score("mwh MWh Mwh", context) == 1.0  # distinct words count once
    assert coverage_score("the of and", context) is None  # no content word
    assert coverage_score("1200 MWh", []) is None  # nothing retrieved
    assert coverage_score("Paris", context) == 0.0


def test_retrieval_recall() -> None:
    assert retrieval_recall({"doc1", "Doc2"}, ["doc2", "doc9", "doc2"]) == 0.5
    assert retrieval_recall({"doc1"}, ["DOC1"]) == 1.0
    assert retrieval_recall({"is_blank"}, ["doc1"]) is None  # unanswerable: no gold
    assert retrieval_recall({"doc1"}, []) is None
