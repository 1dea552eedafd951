"""Ensemble strategies: which member's answer an ensemble takes for one question.

Members are in the order the user gave them; every tie goes to the earlier member. An
answer's key, blankness and confidence come from ``fleetbench.tasks.answers``; a member
without a usable answer (failed, unparsable, empty) never wins while another has one.

* ``majority``: the most common key among the usable answers (for WattBot a blank
  answer is a vote for "unanswerable"); ties go to the key whose first supporter comes
  first; the answer taken is that first supporter's.
* ``first_non_blank``: the first member whose answer is neither blank nor missing; when
  all are blank, the first blank answer; when none is usable, the first member's.
* ``confidence``: the usable answer with the highest self-reported confidence (WattBot's
  JSON ``confidence`` field, 0..1 or a percentage). fleetbench stores no token
  log-probabilities, so a question where no member reported a confidence falls back to
  ``majority``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fleetbench.store.rows import SampleRow
from fleetbench.tasks.answers import Answer

Strategy = Literal["majority", "first_non_blank", "confidence"]
STRATEGIES: tuple[Strategy, ...] = ("majority", "first_non_blank", "confidence")


@dataclass(frozen=True)
class Vote:
    """One member's answer to one question; ``sample`` is its stored row."""

    run_id: str
    answer: Answer
    sample: SampleRow


@dataclass(frozen=True)
class Choice:
    vote: Vote  # the answer the ensemble takes
    agreeing: list[str]  # members whose answer has the same key (the chosen one included)
    rule: str  # how it was chosen, for the provenance record


def choose(strategy: Strategy, votes: list[Vote]) -> Choice:
    if not votes:
        raise ValueError("no member answered this question")
    if strategy == "majority":
        return majority(votes)
    if strategy == "first_non_blank":
        return first_non_blank(votes)
    return by_confidence(votes)


def majority(votes: list[Vote], rule: str = "majority") -> Choice:
    usable = [v for v in votes if v.answer.key is not None]
    if not usable:
        return Choice(votes[0], [], "no usable answer: first member")
    counts: dict[str, int] = {}
    for vote in usable:
        key = vote.answer.key
        assert key is not None
        counts[key] = counts.get(key, 0) + 1
    best = max(counts.values())
    winner = next(key for key, n in counts.items() if n == best)  # first seen among ties
    return _choice(usable, winner, f"{rule} ({best} of {len(votes)})")


def first_non_blank(votes: list[Vote]) -> Choice:
    for vote in votes:
        if vote.answer.key is not None and not vote.answer.blank:
            return _choice(votes, vote.answer.key, "first non-blank")
    for vote in votes:
        if vote.answer.key is not None:
            return _choice(votes, vote.answer.key, "all blank: first blank answer")
    return Choice(votes[0], [], "no usable answer: first member")


def by_confidence(votes: list[Vote]) -> Choice:
    rated = [v for v in votes if v.answer.key is not None and v.answer.confidence is not None]
    if not rated:
        return majority(votes, rule="no confidence reported: majority")
    best = max(v.answer.confidence or 0.0 for v in rated)
    top = next(v for v in rated if v.answer.confidence == best)
    assert top.answer.key is not None
    agreeing = [v.run_id for v in votes if v.answer.key == top.answer.key]
    return Choice(top, agreeing, f"highest confidence ({best:g})")


def _choice(votes: list[Vote], key: str, rule: str) -> Choice:
    agreeing = [v for v in votes if v.answer.key == key]
    return Choice(agreeing[0], [v.run_id for v in agreeing], rule)
