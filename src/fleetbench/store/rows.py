"""The shape of one stored sample, defined once.

``SampleRow`` has one field per column of the ``samples`` table (``created_at`` and
``category`` aside: the store stamps the one and derives the other from ``input_json``,
``store.sqlite._DERIVED``). The worker and ensembles build it, the store writes it, exports
read it back, and ``tests/unit/test_store.py`` checks it against the migrated schema.
Adding a per-sample column therefore touches a migration and this class, nothing else:
give the new field a default so that every writer that does not know it yet still works
(``results.jsonl`` picks it up by itself).

Fields without a default are the columns of the first schema: every writer states them,
even as ``None``, so a forgotten figure is an error rather than a silent NULL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleRow:
    """One generated sample as stored; the field order is ``results.jsonl``'s order."""

    run_id: str
    round: int = 1  # the measurement round (``--repeat``, schedules); see store.sqlite
    sample_index: int
    sample_id: str
    # {"prompt": ..., "messages": [...]} (+ "ensemble": provenance for an ensemble's row)
    input_json: str
    output_text: str  # the raw output, reasoning included
    answer_text: str | None = None  # the visible answer (None: stored before the split)
    reasoning_text: str | None = None
    reasoning_tokens: int | None = None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None
    ttft_s: float | None
    itl_s: float | None = None  # mean inter-token latency
    # wall-clock (epoch s) request sent and reply received: the generation window
    sent_at: float | None = None
    received_at: float | None = None
    # open-loop load profiles: when the request was due and when it was sent (epoch s)
    intended_send_at: float | None = None
    actual_send_at: float | None = None
    finish_reason: str | None
    token_source: str | None = None  # see backends.base.TokenSource
    retries: int = 0
    cpu_seconds: float | None
    energy_wh: float | None  # net of idle, all metered devices; None if any was unread
    energy_method: str
    gpu_energy_wh: float | None = None
    gpu_energy_gross_wh: float | None = None
    cpu_energy_wh: float | None = None
    cpu_energy_gross_wh: float | None = None
    cost_usd: float | None = None
    # the server's own timing of the request, JSON (Ollama native: load, prompt eval, eval)
    server_timing_json: str | None = None
    scores_json: str | None
    error: str | None
    attempt: int

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> SampleRow:
        """A stored row (``sqlite3.Row``) as a ``SampleRow``; other columns are ignored."""
        return cls(**{name: row[name] for name in SAMPLE_FIELDS})

    def values(self) -> dict[str, Any]:
        """Column name -> value, in field order."""
        return {name: getattr(self, name) for name in SAMPLE_FIELDS}


SAMPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SampleRow))
