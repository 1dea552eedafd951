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

from fleetbench.dashboard import partials
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


# Per run, round and category: counts, sums, first and last times, which add up over
# groups (a mean is a sum over a count). One pass reads them along the
# ``samples_figures`` index (in its order: no sort, no sample row) into ``p``, used
# twice and so computed once (SQLite materialises a common table expression named
# twice); ``p`` is then regrouped per run and round and per category and round.
_PARTIALS = (
    "COUNT(*) AS n, SUM(s.error IS NULL) AS ok, "
    "SUM(CASE WHEN s.error IS NULL THEN s.latency_s END) AS latency_sum, "
    "COUNT(CASE WHEN s.error IS NULL THEN s.latency_s END) AS latency_n, "
    "SUM(CASE WHEN s.error IS NULL THEN s.ttft_s END) AS ttft_sum, "
    "COUNT(CASE WHEN s.error IS NULL THEN s.ttft_s END) AS ttft_n, "
    "SUM(CASE WHEN s.error IS NULL THEN s.completion_tokens END) AS tokens, "
    "MIN(s.sent_at) AS first_sent, MAX(s.received_at) AS last_received, "
    "MIN(s.created_at) AS first_stored, SUM(s.energy_wh) AS energy_wh"
)
# A group's figures, in this order (``ROUND_COLUMNS``): latency, TTFT and completion
# tokens are those of the successful samples.
ROUND_COLUMNS = ("key", "round", "samples", "succeeded", "latency_s", "ttft_s", "tokens",
                 "first_sent", "last_received", "first_stored", "energy_wh")  # fmt: skip
_FIGURES = (
    "SUM(n), SUM(ok), SUM(latency_sum) / SUM(latency_n), SUM(ttft_sum) / SUM(ttft_n), "
    "SUM(tokens), MIN(first_sent), MAX(last_received), MIN(first_stored), SUM(energy_wh)"
)
Figures = tuple[Any, ...]


def _runs(store: Store) -> dict[str, dict[str, Any]]:
    """Every run's names and planned samples, by run id."""
    return {r["run_id"]: dict(r) for r in store.conn.execute(
        "SELECT run_id, model_name, settings_label, task, backend, planned_samples FROM runs"
    )}  # fmt: skip


def rounds(
    store: Store, f: Filters
) -> tuple[dict[str, dict[str, Any]], list[Figures], list[Figures]]:
    """The runs (names and planned samples by id); per run and round, then per category
    and round, the figures (``ROUND_COLUMNS``, the key being the run id or the
    category): sample count, successes, mean latency and TTFT of the successful
    samples, completion tokens, the round's time window and energy. Plain tuples: a
    million samples make 100,000 run-rounds, and the view shows a few of them.

    Added up from the store's per-group partial sums (``dashboard.partials``: after a
    change only the groups of new rows are read again), except under a time range,
    which is not a property of a group (then one pass in SQL)."""
    if f.since is not None or f.until is not None:
        return _rounds_sql(store, f)
    runs = _runs(store)
    by_runs = bool(f.models or f.tasks or f.backends)
    wanted = {
        i
        for i, r in runs.items()
        if (not f.models or r["model_name"] in f.models)
        and (not f.tasks or r["task"] in f.tasks)
        and (not f.backends or r["backend"] in f.backends)
    }
    per_run: list[tuple[Any, ...]] = []
    per_category: dict[tuple[str, int], list[partials.Partials]] = {}
    for (run_id, number), categories in partials.groups(store).items():
        if (
            (by_runs and run_id not in wanted)
            or (f.round_from is not None and number < f.round_from)
            or (f.round_to is not None and number > f.round_to)
        ):
            continue
        parts = [p for c, p in categories.items() if not f.categories or c in f.categories]
        if not parts:
            continue
        per_run.append((run_id, number, *partials.figures(parts)))
        for category, p in categories.items():
            if category is not None and (not f.categories or category in f.categories):
                per_category.setdefault((category, number), []).append(p)
    by_run = sorted(per_run, key=lambda t: (t[0], t[1]))
    by_category = [(*k, *partials.figures(v)) for k, v in sorted(per_category.items())]
    return runs, by_run, by_category


def _rounds_sql(
    store: Store, f: Filters
) -> tuple[dict[str, dict[str, Any]], list[Figures], list[Figures]]:
    """``rounds`` under a time range: the same figures in one pass in SQL."""
    where, params = f.samples_only_sql()
    runs = _runs(store)
    rows = store.conn.execute(
        f"WITH p AS (SELECT s.run_id, s.round, s.category, {_PARTIALS} FROM samples s "
        f"WHERE 1 = 1 {where} GROUP BY s.run_id, s.round, s.category) "
        f"SELECT * FROM (SELECT 0, run_id, round, {_FIGURES} FROM p GROUP BY run_id, round) "
        f"UNION ALL SELECT * FROM (SELECT 1, category, round, {_FIGURES} FROM p "
        "WHERE category IS NOT NULL GROUP BY category, round) ORDER BY 1, 2, 3",
        params,
    )
    rows.row_factory = None  # tuples, not sqlite3.Row
    by_run: list[Figures] = []
    by_category: list[Figures] = []
    for row in rows:
        (by_category if row[0] else by_run).append(row[1:])
    return runs, by_run, by_category


def failures(store: Store, f: Filters) -> list[dict[str, Any]]:
    """Failed samples grouped by reason (the stored error, which the runner scrubs of
    secrets), provider and model, with the retries they spent: grouped per run from
    the ``samples_failed`` index first, the run's provider read once per run."""
    where, params = f.samples_only_sql()
    return _dicts(
        store,
        f"SELECT g.reason, {PROVIDER_SQL} AS provider, r.model_name, r.task, "
        "SUM(g.n) AS failures, SUM(g.spent) AS retries, "
        "MIN(g.first_at) AS first_at, MAX(g.last_at) AS last_at FROM "
        "(SELECT s.run_id, substr(s.error, 1, 200) AS reason, COUNT(*) AS n, "
        "SUM(s.retries) AS spent, MIN(s.created_at) AS first_at, MAX(s.created_at) AS last_at "
        f"FROM samples s WHERE s.error IS NOT NULL {where} GROUP BY s.run_id, reason) g "
        "JOIN runs r ON r.run_id = g.run_id "
        "GROUP BY g.reason, provider, r.model_name, r.task ORDER BY failures DESC, g.reason",
        params,
    )


def retries(store: Store, f: Filters) -> list[dict[str, Any]]:
    """Per provider and model: requests, failures and retries (successes retried too),
    summed per run along the ``samples_figures`` index first."""
    where, params = f.samples_only_sql()
    return _dicts(
        store,
        f"SELECT {PROVIDER_SQL} AS provider, r.model_name, SUM(g.n) AS samples, "
        "SUM(g.nf) AS failed, SUM(g.spent) AS retries, SUM(g.nr) AS retried_samples FROM "
        "(SELECT s.run_id, COUNT(*) AS n, SUM(s.error IS NOT NULL) AS nf, "
        "SUM(s.retries) AS spent, SUM(s.retries > 0) AS nr "
        f"FROM samples s WHERE 1 = 1 {where} GROUP BY s.run_id) g "
        "JOIN runs r ON r.run_id = g.run_id "
        "GROUP BY provider, r.model_name ORDER BY retries DESC, provider",
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
