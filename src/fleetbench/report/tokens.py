"""A run's token totals from its samples, with "unknown" kept apart from zero.

A sample's count is NULL when the backend could not obtain it (an OpenAI-compatible
server that streams without ``usage`` and no tokenizer to count with). The rules:

* Every **successful** sample must have the count, or the run total is empty (None)
  and ``unknown_reason`` says how many lacked it: a partial sum would pass for a low
  reading, and everything derived from it (tokens/s, tokens per joule, cost, the
  reasoning/answer split) would mislead. There is no "some known" middle ground: a
  mixed run (e.g. counting failed for a few samples) is empty with "n of m".
* A **failed** sample adds its counts where the backend reported them and nothing
  otherwise: it returned no completion to count, so its absence is not a gap.
* ``source`` lists where the counts came from (``exact``, ``usage``, ``tokenize``,
  ``tokenizer``) and ``unknown`` when some successful sample had no count.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

UNKNOWN = "unknown"


@dataclass(frozen=True)
class TokenTotals:
    prompt: int | None
    completion: int | None  # all samples (failed ones add what they reported)
    ok_completion: int | None  # successful samples only: what throughput divides
    source: str
    unknown_reason: str  # "" when every successful sample's counts are known


@dataclass(frozen=True)
class TokenCounts:
    """What the token rules read from a run's samples (counted in SQL by
    ``store.aggregates.run_stats``, or from rows by ``token_counts``)."""

    ok: int  # successful samples
    ok_no_prompt: int  # successful samples without a prompt count
    ok_no_completion: int
    prompt_sum: int  # known prompt tokens of all samples
    completion_sum: int
    ok_completion_sum: int  # known completion tokens of the successful samples
    sources: frozenset[str]  # non-empty token sources


def token_counts(samples: list[sqlite3.Row]) -> TokenCounts:
    ok = [s for s in samples if s["error"] is None]
    return TokenCounts(
        ok=len(ok),
        ok_no_prompt=sum(1 for s in ok if s["prompt_tokens"] is None),
        ok_no_completion=sum(1 for s in ok if s["completion_tokens"] is None),
        prompt_sum=_known_sum(samples, "prompt_tokens"),
        completion_sum=_known_sum(samples, "completion_tokens"),
        ok_completion_sum=_known_sum(ok, "completion_tokens"),
        sources=frozenset(s["token_source"] for s in samples if s["token_source"]),
    )


def token_totals(samples: list[sqlite3.Row], backend: str = "") -> TokenTotals:
    return totals_from(token_counts(samples), backend)


def totals_from(counts: TokenCounts, backend: str = "") -> TokenTotals:
    """The run's totals by the rules above."""
    notes: list[str] = []
    prompt = _total(counts.ok_no_prompt, counts.ok, counts.prompt_sum, "prompt", notes)
    completion = _total(
        counts.ok_no_completion, counts.ok, counts.completion_sum, "completion", notes
    )
    ok_completion = None if completion is None else counts.ok_completion_sum
    sources = set(counts.sources)
    if counts.ok_no_completion:
        sources.add(UNKNOWN)
    if notes and backend == "openai":
        notes.append(
            "the server sent no usage and nothing could count the tokens: set the "
            "model's options.tokenizer_path (a GGUF of the model) or use a server "
            "that reports usage"
        )
    return TokenTotals(
        prompt=prompt,
        completion=completion,
        ok_completion=ok_completion,
        source="+".join(sorted(sources)),
        unknown_reason="; ".join(notes),
    )


def _total(missing: int, ok: int, known_sum: int, label: str, notes: list[str]) -> int | None:
    if missing:
        notes.append(f"{label} tokens unknown for {missing} of {ok} successful samples")
        return None
    return known_sum


def _known_sum(samples: list[sqlite3.Row], column: str) -> int:
    return int(sum(s[column] for s in samples if s[column] is not None))
