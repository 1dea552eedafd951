"""The dashboard's queries, validation and access checks, through its real ASGI app
(Starlette's TestClient) over a store written with the real store API."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from fleetbench.dashboard.app import create_app
from fleetbench.dashboard.filters import PAGE_SIZE
from fleetbench.dashboard.sources import Sources
from fleetbench.errors import ConfigError
from fleetbench.store import COMPLETED, RUNNING, SampleRow, Store

SECRET = "sk-live-0123456789abcdef"
T0 = 1_760_000_000.0


def _run(store: Store, model: str, task: str, planned: int, options: dict[str, Any]) -> str:
    run_id = f"{model}__{task}__greedy"
    config = {"model": {"name": model, "tags": ["api"]}, "task": {"name": task},
              "backend_options": {"preset": "groq", "api_key_env": "DASH_TEST_KEY"},
              "task_options": options, "energy": {}}  # fmt: skip
    store.upsert_run(
        {"run_id": run_id, "model_name": model, "model_class": "", "task": task,
         "reasoning_state": "", "backend": "openai", "settings_label": "greedy",
         "config": config},
        "b1", planned,
    )  # fmt: skip
    return run_id


def _sample(run_id: str, attempt: int, rnd: int, i: int, **kw: Any) -> SampleRow:
    t = T0 + 1000 * rnd + i
    fields: dict[str, Any] = dict(
        run_id=run_id, round=rnd, sample_index=i, sample_id=f"q{i}", attempt=attempt,
        input_json=json.dumps({"prompt": f"question {i} 100%?",
                               "category": "math" if i % 2 else "words"}),
        output_text=f"answer {i}", prompt_tokens=10, completion_tokens=8,
        latency_s=0.5 + 0.1 * i, ttft_s=0.1, sent_at=t, received_at=t + 0.5,
        finish_reason="stop", cpu_seconds=None, energy_wh=0.01, energy_method="estimate",
        scores_json=json.dumps({"correct": i % 2}), error=None,
    )  # fmt: skip
    fields.update(kw)
    return SampleRow(**fields)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Run a: 2 rounds x 6 samples, one failure with 2 retries. Run b (wattbot, RAG):
    one round of 4 with coverage and recall. Run c: running, 3 of 60 stored."""
    out = tmp_path / "out"
    store = Store.in_dir(out)
    store.begin_batch("b1", "dash", "plan.yaml", {}, {}, {})
    a = _run(store, "alpha", "custom", 6, {})
    for rnd in (1, 2):
        attempt = store.start_attempt(a, "b1", {}, [rnd])
        rows = [_sample(a, attempt, rnd, i) for i in range(6)]
        if rnd == 2:
            rows[5] = _sample(a, attempt, rnd, 5, error="HTTP 503: overloaded", retries=2,
                              output_text="", completion_tokens=None, scores_json=None)  # fmt: skip
        store.add_samples(rows)
        store.finish_attempt(a, attempt, COMPLETED, None)
    store.set_run_status(a, COMPLETED)
    b = _run(store, "beta", "wattbot", 4, {"corpus": "oracle_passages"})
    attempt = store.start_attempt(b, "b1", {}, [1])
    store.add_samples(
        _sample(b, attempt, 1, i,
                scores_json=json.dumps({"coverage_score": i / 4, "retrieval_recall": 1.0,
                                        "value_correct": 1, "ref_score": 0.5,
                                        "answer_blank": False, "truth_blank": False}))
        for i in range(4)
    )  # fmt: skip
    store.finish_attempt(b, attempt, COMPLETED, None)
    store.set_run_status(b, COMPLETED)
    c = _run(store, "gamma", "custom", 60, {})
    attempt = store.start_attempt(c, "b1", {}, [1])
    store.add_samples(_sample(c, attempt, 1, i) for i in range(3))
    store.set_run_status(c, RUNNING)
    store.close()
    return out


@pytest.fixture
def client(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("DASH_TEST_KEY", SECRET)
    sources = Sources([folder])
    sources.check()
    yield TestClient(create_app(sources, None, ["testserver"]))
    sources.close()


def _ready(client: TestClient, path: str) -> Any:
    """The comparison answers "pending" while its worker process summarises the runs."""
    deadline = time.monotonic() + 120
    while True:
        reply = client.get(path)
        doc = reply.json() if not path.split("?")[0].endswith(".csv") else None
        if doc is None or "pending" not in doc or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_overview_counts_progress_and_totals(client: TestClient) -> None:
    doc = client.get("/api/view/overview").json()
    by_model = {r["model_name"]: r for r in doc["rows"]}
    assert by_model["alpha"]["samples"] == 12 and by_model["alpha"]["failed"] == 1
    assert by_model["alpha"]["last_round"] == 2
    assert by_model["gamma"]["status"] == "running"
    assert by_model["gamma"]["progress"] == pytest.approx(3 / 60)
    assert doc["totals"]["samples"] == 19 and doc["totals"]["running"] == 1
    assert doc["by_status"] == {"completed": 2, "running": 1}


def test_filters_select_rows_and_csv_holds_exactly_them(client: TestClient) -> None:
    doc = client.get("/api/view/overview?model=alpha&model=beta").json()
    assert sorted(r["model_name"] for r in doc["rows"]) == ["alpha", "beta"]
    rows = _csv(client.get("/api/view/overview.csv?model=alpha&model=beta").text)
    assert sorted(r["label"] for r in rows) == ["alpha [greedy]", "beta [greedy]"]
    # Sample-level filters: round 2 of alpha only, one category.
    doc = client.get("/api/view/over-time?model=alpha&round_from=2&category=math").json()
    model_rows = [r for r in doc["rows"] if r["group"] == "model"]
    assert [(r["round"], r["samples"]) for r in model_rows] == [(2, 3)]
    assert [r["label"] for r in doc["rows"] if r["group"] == "category"] == ["math"]
    # Time range: round 1 of every run was stored at T0+1000.. (sent_at); created_at
    # is the store's clock, so filter on a range that holds everything, then nothing.
    assert client.get("/api/view/samples?since=2000-01-01T00:00").json()["total"] == 19
    assert client.get("/api/view/samples?until=2000-01-01").json()["total"] == 0


def test_over_time_figures_match_the_samples(client: TestClient, folder: Path) -> None:
    doc = client.get("/api/view/over-time?model=alpha").json()
    rows = {r["round"]: r for r in doc["rows"] if r["group"] == "model"}
    assert rows[1]["latency_s"] == pytest.approx(sum(0.5 + 0.1 * i for i in range(6)) / 6)
    assert rows[2]["latency_s"] == pytest.approx(sum(0.5 + 0.1 * i for i in range(5)) / 5)
    assert rows[1]["success_rate"] == 1.0 and rows[2]["success_rate"] == pytest.approx(5 / 6)
    # throughput: completion tokens of the successes ÷ (last reply - first send)
    assert rows[1]["throughput"] == pytest.approx(48 / 5.5)
    assert rows[1]["energy_wh"] == pytest.approx(0.06)
    assert {c["id"] for c in doc["charts"]} == {"per-model", "per-category"}


def test_failures_rag_and_retries(client: TestClient) -> None:
    doc = client.get("/api/view/failures").json()
    assert [(r["reason"], r["provider"], r["failures"], r["retries"]) for r in doc["rows"]] == [
        ("HTTP 503: overloaded", "groq", 1, 2)
    ]
    assert {r["model_name"]: r["retried_samples"] for r in doc["retries"]}["alpha"] == 1
    rag = client.get("/api/view/rag").json()["rows"]
    assert {(r["category"], r["samples"]) for r in rag} == {("math", 2), ("words", 2)}
    words = next(r for r in rag if r["category"] == "words")
    assert words["coverage_score"] == pytest.approx((0 + 2 / 4) / 2)
    assert words["retrieval_recall"] == 1.0 and words["corpus"] == "oracle_passages"


def test_sample_browser_pages_and_searches(client: TestClient, folder: Path) -> None:
    store = Store.in_dir(folder)
    attempt = store.start_attempt("gamma__custom__greedy", "b1", {}, [1])
    store.add_samples(_sample("gamma__custom__greedy", attempt, 1, i) for i in range(3, 60))
    store.close()
    first = client.get("/api/view/samples").json()
    assert first["total"] == 76 and len(first["rows"]) == PAGE_SIZE and first["pages"] == 2
    second = client.get("/api/view/samples?page=2").json()
    assert len(second["rows"]) == 76 - PAGE_SIZE
    ids = {(r["run_id"], r["round"], r["sample_index"]) for r in first["rows"] + second["rows"]}
    assert len(ids) == 76
    assert first["rows"][0]["prompt"].startswith("question ")
    # The CSV holds every filtered row, not one page.
    assert len(_csv(client.get("/api/view/samples.csv").text)) == 76
    # Search is a bound LIKE: its wildcards and quotes match themselves.
    found = client.get("/api/view/samples?q=question 5 100%").json()
    assert found["total"] == 3 and {r["sample_id"] for r in found["rows"]} == {"q5"}
    assert client.get("/api/view/samples?q=_").json()["total"] == 0
    assert client.get("/api/view/samples?q=' OR 1=1 --").json()["total"] == 0
    assert client.get("/api/view/samples?q=overloaded").json()["total"] == 0
    every = _csv(client.get("/api/view/samples.csv").text)
    expected = sum("answer 5" in r["answer"] for r in every)
    assert client.get("/api/view/samples?q=answer 5").json()["total"] == expected > 3


def test_comparison_reuses_the_report(client: TestClient) -> None:
    pytest.importorskip("altair")
    from fleetbench.report.page import TABLE_COLUMNS

    doc = _ready(client, "/api/view/comparison?task=custom").json()
    assert sorted(r["model_name"] for r in doc["rows"]) == ["alpha", "gamma"]
    assert [tuple(c) for c in doc["columns"][1:]] == list(TABLE_COLUMNS)
    assert "custom" in doc["rankings"] and doc["charts"]
    assert all("$schema" in c["spec"] for c in doc["charts"])
    rows = _csv(client.get("/api/view/comparison.csv?task=custom").text)
    assert sorted(r["model_name"] for r in rows) == ["alpha", "gamma"]
    assert "quality_score" in rows[0]
    assert "do not apply" in _ready(client, "/api/view/comparison?round_to=1").json()["note"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("model=nobody", "model: unknown value 'nobody'; valid: alpha, beta, gamma"),
        ("task=x%27%3B%20DROP%20TABLE%20runs", "task: unknown value"),
        ("category=art", "category: unknown value 'art'; valid: math, words"),
        ("round_from=two", "round_from: 'two' is not a whole number"),
        ("round_to=0", "round_to: 0 is out of range"),
        ("since=yesterday", "since: 'yesterday' is not a time"),
        ("colour=red", "unknown parameter 'colour'"),
        ("page=1&page=2", "page: given 2 times"),
        ("q=" + "x" * 201, "q: 201 characters"),
    ],
)
def test_bad_filters_are_one_line_400(client: TestClient, query: str, message: str) -> None:
    for path in ("/api/view/overview", "/api/view/samples.csv"):
        reply = client.get(f"{path}?{query}")
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error.startswith(message) and "\n" not in error
    assert client.get("/api/view/nothing").status_code == 404


def test_changes_follow_the_writer_and_the_store_stays_untouched(
    client: TestClient, folder: Path
) -> None:
    db = folder / "fleetbench.db"
    before = client.get("/api/changes").json()["version"]
    assert client.get("/api/changes").json()["version"] == before
    store = Store.in_dir(folder)
    attempt = store.start_attempt("gamma__custom__greedy", "b1", {}, [1])
    store.add_sample(_sample("gamma__custom__greedy", attempt, 1, 3))
    store.close()
    assert client.get("/api/changes").json()["version"] != before
    digest = db.read_bytes()
    for view in ("overview", "comparison", "over-time", "failures", "rag", "samples"):
        assert _ready(client, f"/api/view/{view}").status_code == 200
    assert db.read_bytes() == digest
    reader = Store.read_only(db)
    with pytest.raises(sqlite3.OperationalError):
        reader.conn.execute("DELETE FROM runs")
    reader.close()


def test_no_secret_or_environment_in_any_response(client: TestClient) -> None:
    for path in ("/", "/api/meta", "/api/changes", "/static/app.js"):
        assert SECRET not in client.get(path).text
    for view in ("overview", "comparison", "over-time", "failures", "rag", "samples"):
        for suffix in ("", ".csv"):
            text = _ready(client, f"/api/view/{view}{suffix}").text
            assert SECRET not in text and "PATH=" not in text, view
    assert client.get("/static/../sources.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_token_gate(folder: Path) -> None:
    token = "correct-horse-battery"
    app = create_app(Sources([folder]), token, ["testserver"])
    anon = TestClient(app)
    for path in ("/", "/static/app.js", "/vendor/vega.js", "/api/meta", "/api/view/overview",
                 "/api/view/samples.csv", "/api/changes"):  # fmt: skip
        assert anon.get(path).status_code == 401, path
    assert anon.get("/api/meta", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert anon.get("/api/meta?token=wrong-token").status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert anon.get("/api/meta", headers=bearer).status_code == 200
    assert anon.get("/api/meta", headers={"X-Fleetbench-Token": token}).status_code == 200
    browser = TestClient(app)
    reply = browser.get(f"/?token={token}&poll=500", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/?poll=500"
    assert "HttpOnly" in reply.headers["set-cookie"]
    assert browser.get("/api/view/overview").status_code == 200  # the cookie from now on
    # A loopback dashboard answers only to its own host names (DNS rebinding).
    local = TestClient(create_app(Sources([folder]), None, ["127.0.0.1"]))
    assert local.get("/api/meta", headers={"host": "evil.example"}).status_code == 400


def test_folders_checked_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no results store"):
        Sources([tmp_path]).check()
    (tmp_path / "fleetbench.db").write_text("not a database")
    with pytest.raises(ConfigError, match="cannot read the results store"):
        Sources([tmp_path]).check()


def test_own_chart_specs_are_valid_vega_lite(client: TestClient) -> None:
    """The overview, failures and RAG charts are plain dicts (no altair on the first
    paint): altair's schema validation accepts them, for the bundled version."""
    alt = pytest.importorskip("altair")
    for view in ("overview", "failures", "rag"):
        (chart,) = client.get(f"/api/view/{view}").json()["charts"]
        assert chart["spec"]["$schema"] == alt.SCHEMA_URL
        alt.Chart.from_dict(chart["spec"])  # raises on a spec the schema rejects


def test_aggregates_read_indexes_only(folder: Path) -> None:
    """The views over every sample read the covering indexes of migration 013, never the
    sample rows with their prompts and outputs (and never parse their JSON)."""
    from fleetbench.dashboard import queries
    from fleetbench.dashboard.filters import Filters

    store = Store.read_only(folder / "fleetbench.db")
    seen: list[str] = []

    class Planned:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn
            self.in_transaction = False

        def execute(self, sql: str, params: Any = ()) -> Any:
            if sql in ("BEGIN", "COMMIT"):
                return self.conn.execute(sql)
            plan = [r[3] for r in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            seen.extend(p for p in plan if " s " in f"{p} " or "samples" in p)
            return self.conn.execute(sql, params)

    conn, store.conn = store.conn, Planned(store.conn)  # type: ignore[assignment]
    try:
        for f in (Filters(), Filters(models=("alpha",)), Filters(categories=("math",))):
            for query in (queries.overview_runs, queries.rounds, queries.failures, queries.retries):
                query(store, f)  # type: ignore[operator]
    finally:
        store.conn = conn
        store.close()
    reads = [p for p in seen if p.startswith(("SCAN s", "SEARCH s"))]
    # The over-time partials' change check seeks the highest rowid and, after a change,
    # reads the rows above the rowid seen (the new ones only): no scan of sample rows.
    seeks = ("SEARCH samples", "SEARCH samples USING INTEGER PRIMARY KEY (rowid>?)")
    assert reads and all("COVERING INDEX" in p or p in seeks for p in reads), reads


def test_comparison_shows_the_runs_ready_while_others_are_summarised(folder: Path) -> None:
    """A run that changed since its summary: the view shows every run (that one as it
    was), says what is being summarised, and leaves the charts for the complete view."""
    pytest.importorskip("altair")
    from fleetbench.dashboard import views
    from fleetbench.dashboard.filters import Filters

    sources = Sources([folder])
    try:
        full = views.comparison(sources, Filters(), wait=600.0)
        assert "pending" not in full and full["charts"] and len(full["rows"]) == 3
        writer = Store.in_dir(folder)
        run = "gamma__custom__greedy"
        writer.add_samples([_sample(run, 1, 1, 3)])
        writer.close()
        partial = views.comparison(sources, Filters(), wait=0.0)
        assert partial["pending"] == "summarising runs: 2 of 3 ready"
        assert next(iter(partial)) == "pending"  # first, for a client reading the start
        assert sorted(r["model_name"] for r in partial["rows"]) == ["alpha", "beta", "gamma"]
        assert partial["charts"] == []
        again = views.comparison(sources, Filters(), wait=600.0)
        assert "pending" not in again and again["charts"]
    finally:
        sources.close()


def test_a_summary_that_fails_is_reported_not_retried_forever(folder: Path, tmp_path: Path) -> None:
    from fleetbench.dashboard.summaries import Summaries, Worker
    from fleetbench.errors import StoreError

    worker = Worker()
    store = Store.read_only(folder / "fleetbench.db")
    try:  # the worker reads a store that is not there
        summaries = Summaries(tmp_path / "gone" / "fleetbench.db", worker)
        with pytest.raises(StoreError, match="cannot open results store"):
            summaries.get(store, store.runs(), wait=120.0)
    finally:
        store.close()
        worker.close()


def _same(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert [pytest.approx(v) if isinstance(v, float) else v for v in g] == list(w)


def test_over_time_partials_follow_appends_and_deletions(folder: Path) -> None:
    """The over-time figures added up from kept per-group partial sums equal one SQL
    pass over the samples, under every group filter, after new samples (only their
    groups are read again) and after a run's samples were deleted (read again whole)."""
    from fleetbench.dashboard import partials, queries
    from fleetbench.dashboard.filters import Filters

    path = folder / "fleetbench.db"
    checks = (Filters(), Filters(models=("alpha",)), Filters(categories=("math",)),
              Filters(round_from=2), Filters(round_to=1), Filters(tasks=("wattbot",)))  # fmt: skip

    def agree() -> None:
        reader = Store.read_only(path)
        try:
            for f in checks:
                _, by_run, by_category = queries.rounds(reader, f)
                _, sql_run, sql_category = queries._rounds_sql(reader, f)
                _same(by_run, sql_run)
                _same(by_category, sql_category)
        finally:
            reader.close()

    partials.forget(path)
    agree()
    refreshed: list[str] = []
    real = partials._tuples

    def counting(store: Store, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        refreshed.append("whole" if not params else "groups")
        return real(store, sql, params)

    writer = Store(path)
    try:
        a = "alpha__custom__greedy"
        attempt = writer.start_attempt(a, "b1", {}, [3])
        writer.add_samples([_sample(a, attempt, 3, i) for i in range(6)])
        writer.finish_attempt(a, attempt, COMPLETED, None)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(partials, "_tuples", counting)
            agree()
            assert refreshed == ["groups"]  # one (run, round) read again, nothing else
            refreshed.clear()
            writer.delete_results([a])
            agree()
            assert refreshed == ["whole"]
    finally:
        writer.close()
        partials.forget(path)
