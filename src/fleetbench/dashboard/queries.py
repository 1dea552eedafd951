"""Read-only SQL behind the dashboard's views, one function per view and store.

Every statement is a fixed text; filters add fixed fragments with ``?`` placeholders
(``dashboard.filters``), so user text reaches SQLite only as bound values. Aggregation
happens in SQL (one pass over the matching samples, grouped), never by loading a million
rows into Python; the sample browser pages with LIMIT/OFFSET, newest first, along the
``samples_created_at`` index.
"""

from __future__ import annotations

import json
from typing import Any

from fleetbench.dashboard.filters import CATEGORY_SQL, PAGE_SIZE, Filters
from fleetbench.store import Store
from fleetbench.tasks import retrieval_corpus

# Where a run's requests went: a preset (groq, openrouter) or a hosted provider, else
# the backend itself (llamacpp, openai, ...).
PROVIDER_SQL = (
    "COALESCE(json_extract(r.config_json, '$.backend_options.preset'), "
    "json_extract(r.config_json, '$.backend_options.provider'), r.backend)"
)
_JOIN = "FROM samples s JOIN runs r ON r.run_id = s.run_id WHERE 1 = 1"


def _dicts(store: Store, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in store.conn.execute(sql, params)]


def overview_runs(store: Store, f: Filters) -> list[dict[str, Any]]:
    """One row per run: its state, and what its (filtered) samples add up to."""
    runs_where, run_params = f.runs_sql()
    samples_where, sample_params = f.samples_sql()
    rows = _dicts(
        store,
        "SELECT r.run_id, r.model_name, r.settings_label, r.task, r.backend, r.status, "
        "r.planned_samples, r.error_message, r.updated_at, "
        "COUNT(s.run_id) AS samples, SUM(s.error IS NOT NULL) AS failed, "
        "MAX(s.round) AS last_round, SUM(s.prompt_tokens) AS prompt_tokens, "
        "SUM(s.completion_tokens) AS completion_tokens, SUM(s.energy_wh) AS energy_wh, "
        "SUM(s.cost_usd) AS cost_usd, MAX(s.created_at) AS last_sample_at "
        f"FROM runs r LEFT JOIN samples s ON s.run_id = r.run_id {samples_where} "
        f"WHERE 1 = 1 {runs_where} GROUP BY r.run_id ORDER BY r.seq",
        sample_params + run_params,
    )
    for row in rows:
        row["progress"] = None
        if row["status"] == "running" and row["planned_samples"]:
            # The running round's share stored (a resumed or repeated run: its last round).
            done = store.conn.execute(
                "SELECT COUNT(*) FROM samples WHERE run_id = ? AND round = "
                "(SELECT MAX(round) FROM samples WHERE run_id = ?) AND sample_index < ?",
                (row["run_id"], row["run_id"], row["planned_samples"]),
            ).fetchone()[0]
            row["progress"] = done / row["planned_samples"]
    return rows


_ROUND_FIGURES = (
    "COUNT(*) AS samples, SUM(s.error IS NULL) AS succeeded, "
    "AVG(CASE WHEN s.error IS NULL THEN s.latency_s END) AS latency_s, "
    "AVG(CASE WHEN s.error IS NULL THEN s.ttft_s END) AS ttft_s, "
    "SUM(CASE WHEN s.error IS NULL THEN s.completion_tokens END) AS tokens, "
    "MIN(s.sent_at) AS first_sent, MAX(s.received_at) AS last_received, "
    "MIN(s.created_at) AS first_stored, SUM(s.energy_wh) AS energy_wh"
)


def rounds(store: Store, f: Filters) -> list[dict[str, Any]]:
    """Per run and round: sample count, successes, mean latency and TTFT of the
    successful samples, completion tokens, the round's time window and energy."""
    where, params = f.all_sql()
    return _dicts(
        store,
        "SELECT s.run_id, r.model_name, r.settings_label, r.task, r.backend, "
        f"r.planned_samples, s.round, {_ROUND_FIGURES} {_JOIN} {where} "
        "GROUP BY s.run_id, s.round ORDER BY s.run_id, s.round",
        params,
    )


def category_rounds(store: Store, f: Filters) -> list[dict[str, Any]]:
    """The same figures per category and round, over every matching run."""
    where, params = f.all_sql()
    return _dicts(
        store,
        f"SELECT {CATEGORY_SQL} AS category, s.round, {_ROUND_FIGURES} {_JOIN} {where} "
        f"AND {CATEGORY_SQL} IS NOT NULL GROUP BY category, s.round ORDER BY category, s.round",
        params,
    )


def failures(store: Store, f: Filters) -> list[dict[str, Any]]:
    """Failed samples grouped by reason (the stored error, which the runner scrubs of
    secrets), provider and model, with the retries they spent."""
    where, params = f.all_sql()
    return _dicts(
        store,
        f"SELECT substr(s.error, 1, 200) AS reason, {PROVIDER_SQL} AS provider, "
        "r.model_name, r.task, COUNT(*) AS failures, SUM(s.retries) AS retries, "
        "MIN(s.created_at) AS first_at, MAX(s.created_at) AS last_at "
        f"{_JOIN} AND s.error IS NOT NULL {where} "
        "GROUP BY reason, provider, r.model_name, r.task ORDER BY failures DESC, reason",
        params,
    )


def retries(store: Store, f: Filters) -> list[dict[str, Any]]:
    """Per provider and model: requests, failures and retries (successes retried too)."""
    where, params = f.all_sql()
    return _dicts(
        store,
        f"SELECT {PROVIDER_SQL} AS provider, r.model_name, COUNT(*) AS samples, "
        "SUM(s.error IS NOT NULL) AS failed, SUM(s.retries) AS retries, "
        "SUM(s.retries > 0) AS retried_samples "
        f"{_JOIN} {where} GROUP BY provider, r.model_name ORDER BY retries DESC, provider",
        params,
    )


def rag(store: Store, f: Filters) -> list[dict[str, Any]]:
    """Per retrieval run and category: mean coverage score and retrieval recall of the
    samples scored with them (``tasks.wattbot``), and the corpus the model read."""
    runs_where, run_params = f.runs_sql()
    corpora: dict[str, str] = {}
    for r in store.conn.execute(
        f"SELECT r.run_id, r.task, r.config_json FROM runs r WHERE 1 = 1 {runs_where}",
        run_params,
    ):
        options = json.loads(r["config_json"] or "{}").get("task_options") or {}
        corpus = retrieval_corpus(r["task"], options)
        if corpus:
            corpora[r["run_id"]] = corpus
    if not corpora:
        return []
    where, params = f.all_sql()
    ids = list(corpora)
    rows = _dicts(
        store,
        "SELECT s.run_id, r.model_name, r.settings_label, r.task, "
        f"COALESCE({CATEGORY_SQL}, '') AS category, COUNT(*) AS samples, "
        "AVG(json_extract(s.scores_json, '$.coverage_score')) AS coverage_score, "
        "AVG(json_extract(s.scores_json, '$.retrieval_recall')) AS retrieval_recall "
        f"{_JOIN} AND s.run_id IN ({', '.join('?' * len(ids))}) {where} "
        "GROUP BY s.run_id, category ORDER BY r.model_name, category",
        ids + params,
    )
    for row in rows:
        row["corpus"] = corpora[row["run_id"]]
    return rows


SAMPLE_COLUMNS = (
    "s.rowid AS id, s.run_id, r.model_name, r.settings_label, r.task, r.backend, s.round, "
    f"s.sample_index, s.sample_id, {CATEGORY_SQL} AS category, s.input_json, s.answer_text, "
    "s.output_text, s.reasoning_text, s.scores_json, s.latency_s, s.ttft_s, "
    "s.prompt_tokens, s.completion_tokens, s.energy_wh, s.retries, s.error, s.created_at"
)


def samples(
    store: Store, f: Filters, limit: int | None = PAGE_SIZE, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Matching samples newest first (``limit`` None: all of them) and how many match."""
    where, params = f.all_sql()
    search, search_params = f.search_sql()
    tail = f"{_JOIN} {where} {search}"
    total = store.conn.execute(f"SELECT COUNT(*) {tail}", params + search_params).fetchone()[0]
    page = " LIMIT ? OFFSET ?" if limit is not None else ""
    extra = [limit, offset] if limit is not None else []
    rows = _dicts(
        store,
        f"SELECT {SAMPLE_COLUMNS} {tail} ORDER BY s.created_at DESC, s.rowid DESC{page}",
        params + search_params + extra,
    )
    return [_sample(r) for r in rows], int(total)


def _sample(row: dict[str, Any]) -> dict[str, Any]:
    """The prompt out of the stored input (a prompt, or chat messages), and the answer
    without the reasoning where the two were split."""
    inputs = json.loads(row.pop("input_json") or "{}")
    prompt = inputs.get("prompt") if isinstance(inputs, dict) else None
    if prompt is None and isinstance(inputs, dict):
        prompt = json.dumps(inputs.get("messages") or inputs.get("question") or inputs)
    answer = row.pop("answer_text")
    output = row.pop("output_text")
    return row | {"prompt": str(prompt), "answer": output if answer is None else answer}
