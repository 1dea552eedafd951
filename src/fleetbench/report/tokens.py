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


def token_totals(samples: list[sqlite3.Row], backend: str = "") -> TokenTotals:
    ok = [s for s in samples if s["error"] is None]
    notes: list[str] = []
    prompt = _total(samples, ok, "prompt_tokens", "prompt", notes)
    completion = _total(samples, ok, "completion_tokens", "completion", notes)
    ok_completion = None if completion is None else _known_sum(ok, "completion_tokens")
    sources = {s["token_source"] for s in samples if s["token_source"]}
    if any(s["completion_tokens"] is None for s in ok):
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


def _total(
    samples: list[sqlite3.Row],
    ok: list[sqlite3.Row],
    column: str,
    label: str,
    notes: list[str],
) -> int | None:
    missing = sum(1 for s in ok if s[column] is None)
    if missing:
        notes.append(f"{label} tokens unknown for {missing} of {len(ok)} successful samples")
        return None
    return _known_sum(samples, column)


def _known_sum(samples: list[sqlite3.Row], column: str) -> int:
    return int(sum(s[column] for s in samples if s[column] is not None))
