"""Grounding figures of a retrieval-augmented answer: pure functions, no I/O.

* ``coverage_score``: the share of the answer's *content words* that occur in the
  retrieved context. Words are the lowercased ``\\w+`` runs (Unicode letters, digits,
  underscore) of each text; content words are those words that are not in
  ``STOP_WORDS`` and are longer than one character, digits excepted (``7`` counts).
  Each distinct content word of the answer counts once; the score is
  |answer words ∩ context words| / |answer words|. None when the answer has no content
  word (nothing to ground) or nothing was retrieved.
* ``retrieval_recall``: the share of the gold reference ids found among the retrieved
  passages' document ids (case-insensitive); None when the question has no gold
  reference (``is_blank``) or nothing was retrieved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"\w+")
BLANK_REFS = {"", "is_blank"}
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves""".split()  # noqa: SIM905
)


def content_words(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return {w for w in words if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())}


def coverage_score(answer: str, context: Iterable[str]) -> float | None:
    words = content_words(answer)
    passages = list(context)
    if not words or not passages:
        return None
    seen: set[str] = set()
    for passage in passages:
        seen |= content_words(passage)
    return len(words & seen) / len(words)


def retrieval_recall(gold: set[str], retrieved_ids: Iterable[str]) -> float | None:
    wanted = {g.strip().lower() for g in gold} - BLANK_REFS
    found = {r.strip().lower() for r in retrieved_ids}
    if not wanted or not found:
        return None
    return len(wanted & found) / len(wanted)
