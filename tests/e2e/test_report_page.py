"""``fleetbench report`` writes report/: the HTML page, its plots and the comparison
files, from runs of the real SmolLM2 (a custom task of 4 questions at two settings, and
textgen; the questions have categories, the model a catalogue category), checked
against the store; then a real Chromium opens the page offline.
"""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest
import yaml
from conftest import db_rows, run_cli

pytest.importorskip("altair")
pytest.importorskip("vl_convert")

ROWS = [
    {"id": "yes", "input": "Reply with the single word yes.", "target": "yes", "category": "words"},
    {"id": "four", "input": "What is 2 + 2? Reply with the number only.", "target": "4",
     "category": "math"},
    {"id": "no", "input": "Reply with the single word no.", "target": "no", "category": "words"},
    {"id": "cat", "input": "Reply with the word cat.", "target": "cat", "category": "words"},
]  # fmt: skip
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    data = root / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    plan = {
        "name": "report",
        "models": [
            {"name": "smollm2", "backend": "llamacpp", "model_class": "A", "tags": ["tiny"]}
        ],
        "tasks": [
            {"name": "custom", "options": {"file": str(data), "scorer": "includes"}},
            {"name": "textgen"},
        ],
        "generation": {"temperature": 0.0, "max_tokens": 6, "seed": 7},
        "settings": [{"label": "greedy"}, {"label": "hot", "generation": {"temperature": 1.5}}],
    }
    (root / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    out = root / "out"
    proc = run_cli("run", "plan.yaml", "--output", str(out), "--limit", "4", cwd=root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"report: {out / 'report' / 'index.html'}" in proc.stdout
    # Rebuilt from the store alone.
    import shutil

    shutil.rmtree(out / "report")
    proc = run_cli("report", "-o", str(out), cwd=root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == f"report: {out / 'report' / 'index.html'}"
    assert "custom: best score:" in proc.stdout and "quality" in proc.stdout
    return out


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_comparison_files_match_the_store(results: Path) -> None:
    folder = results / "report"
    runs = db_rows(results, "SELECT run_id, task FROM runs ORDER BY seq")
    with (folder / "comparison.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in runs]
    with (results / "master_results.csv").open(newline="") as handle:
        master = {r["run_id"]: r for r in csv.DictReader(handle)}
    for row in rows:
        for column in ("quality_score", "avg_latency_seconds", "energy_wh", "total_tokens"):
            assert row[column] == master[row["run_id"]][column]
    custom = [r for r in rows if r["task"] == "custom"]
    assert all(r["score_correct"] == r["quality_score"] != "" for r in custom)
    assert all(r["where"] == "local" for r in rows)
    document = json.loads((folder / "comparison.json").read_text())
    assert len(document["runs"]) == len(runs)
    ranked = document["tasks"]["custom"]["rankings"]["fastest"]
    assert sorted(e["run_id"] for e in ranked) == sorted(r["run_id"] for r in custom)
    assert [e["rank"] for e in ranked] == [1, 2]
    values = [e["value"] for e in ranked]
    assert values == sorted(values)
    latency = document["tasks"]["custom"]["pareto"]["latency"]
    assert latency and set(latency) <= {r["run_id"] for r in custom}


def test_categories_in_comparison_files_and_page(results: Path) -> None:
    folder = results / "report"
    with (folder / "comparison.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["categories"] for r in rows} == {"tiny"}
    custom = sorted(r["run_id"] for r in rows if r["task"] == "custom")
    # Per run and question category, the mean of the stored per-sample scores.
    stored = db_rows(
        results,
        "SELECT run_id, json_extract(input_json, '$.category') AS category, COUNT(*) AS n, "
        "AVG(json_extract(scores_json, '$.correct')) AS correct FROM samples "
        "WHERE run_id IN (SELECT run_id FROM runs WHERE task = 'custom') "
        "GROUP BY run_id, category ORDER BY run_id, category",
    )
    with (folder / "category_comparison.csv").open(newline="") as handle:
        by_category = list(csv.DictReader(handle))
    assert [(r["run_id"], r["category"], int(r["samples"]), float(r["score_correct"]))
            for r in by_category] == [
        (s["run_id"], s["category"], s["n"], pytest.approx(s["correct"])) for s in stored
    ]  # fmt: skip
    assert {r["category"] for r in by_category} == {"math", "words"}
    assert all(r["categories"] == "tiny" for r in by_category)
    document = json.loads((folder / "comparison.json").read_text())
    group = document["tasks"]["custom"]["by_category"]["tiny"]
    assert sorted(group["runs"]) == custom
    assert sorted(e["run_id"] for e in group["rankings"]["fastest"]) == custom
    page = (folder / "index.html").read_text()
    assert "By model category" in page and 'data-category="tiny"' in page
    assert '<th class="sortable" data-key="categories">' in page


def test_co2_card_agrees_with_its_caption(results: Path) -> None:
    import re

    page = (results / "report" / "index.html").read_text()
    value, note = re.search(r'CO2<b>([^<]*) g</b><span id="co2-note">([^<]*)</span>', page).groups()
    with (results / "report" / "comparison.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "completed"]
    if all(r["energy_wh"] for r in rows):
        total = sum(float(r["co2_emissions_g"]) for r in rows)
        assert float(value) == pytest.approx(total, rel=1e-3) and "WORLD: " in note, (value, note)
        assert "g/kWh (Ember" in note
    else:
        assert value == "—" and note.startswith("no energy measured for "), (value, note)


def test_plot_files(results: Path) -> None:
    plots = results / "report" / "plots"
    names = sorted(p.stem for p in plots.glob("*.png"))
    for expected in (
        "custom-ranking",
        "custom-score-vs-energy",
        "custom-score-vs-latency",
        "custom-matrix-heatmap",
        "custom-category-correctness",
        "custom-difficulty",
        "custom-agreement",
        "latency-distribution",
        "throughput-vs-energy",
    ):
        assert expected in names, names
    for name in names:
        width, height = _png_size(plots / f"{name}.png")
        assert width >= 100 and height >= 50, (name, width, height)
        svg = (plots / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and len(svg) > 1000, name
    # The page embeds every plot and loads nothing from another host.
    page = (results / "report" / "index.html").read_text()
    assert all(f'id="plot-{n}"' in page for n in names)
    assert "<script src=" not in page and "<link " not in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)")
def test_page_in_a_browser_offline(results: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page_path = results / "report" / "index.html"
    plots = sorted(p.stem for p in (results / "report" / "plots").glob("*.png"))
    errors: list[str] = []
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(r: sync_api.Route) -> None:
                if r.request.url.startswith("file:"):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.vega[data-rendered]').length"
                " === document.querySelectorAll('.vega').length",
                timeout=30_000,
            )
            for name in plots:
                target = page.locator(f"#plot-{name}")
                assert target.get_attribute("data-rendered") == "true", name
                box = target.locator("svg").first.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 50, name
                assert target.locator("svg path, svg rect, svg line").count() > 0, name

            # Sorting: by latency, ascending then descending.
            def column(key: str) -> list[str]:
                index = page.locator("#results-table th").evaluate_all(
                    f"(hs) => hs.findIndex(h => h.dataset.key === '{key}')"
                )
                return page.locator("#results-table tbody tr").evaluate_all(
                    f"(rs) => rs.map(r => r.cells[{index}].dataset.value)"
                )

            page.click("th[data-key=avg_latency_seconds]")
            up = [float(v) for v in column("avg_latency_seconds")]
            assert up == sorted(up)
            page.click("th[data-key=avg_latency_seconds]")
            down = [float(v) for v in column("avg_latency_seconds")]
            assert down == sorted(up, reverse=True)

            # Run details: clicking a model opens its details with samples and config.
            link = page.locator("a.run-link").first
            run_id = link.get_attribute("data-run")
            link.click()
            details = page.locator(f"#run-{run_id}")
            assert details.evaluate("d => d.open")
            assert details.locator(".sample pre.answer").count() >= 1
            assert "max_tokens" in details.locator("pre").last.inner_text()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert not blocked, blocked
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_audit(results: Path, tmp_path: Path) -> None:
    proc = run_cli("audit", "-o", str(results), "--json", cwd=results.parent)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    findings = json.loads(proc.stdout)["findings"]
    checks = {f["check"] for f in findings}
    assert checks == {"sample count"}, findings  # 4 samples each; scores reproduce
    page = (results / "report" / "index.html").read_text()
    assert 'id="audit"' in page and "fewer than 10" in page

    proc = run_cli("audit", "-o", str(results), "--min-samples", "4", cwd=results.parent)
    assert proc.returncode == 0 and "audit: no findings" in proc.stdout, proc.stdout

    # A stored score that the stored answer does not earn (a scorer bug, an edited
    # store): rescoring finds it, on a copy of the folder.
    import shutil
    import sqlite3

    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    with sqlite3.connect(copy / "fleetbench.db") as db:
        db.execute(
            "UPDATE samples SET scores_json = json_set(scores_json, '$.correct', "
            "1 - json_extract(scores_json, '$.correct')) WHERE sample_id = 'yes'"
        )
    proc = run_cli("audit", "-o", str(copy), "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    errors = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] == "error"]
    assert len(errors) == 2 and all(f["check"] == "rescoring" for f in errors), errors
    assert all("for yes " in f["message"] for f in errors)
    proc = run_cli("audit", "-o", str(results.parent / "nowhere"), cwd=results.parent)
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("error: ")
        and "no results store" in proc.stderr
    )


def test_an_ensemble_updates_the_report(results: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    members = [r["run_id"] for r in db_rows(copy, "SELECT run_id FROM runs WHERE task = 'custom'")]
    proc = run_cli("ensemble", "--runs", ",".join(members), "--strategy", "majority",
                   "-o", str(copy), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == f"report: {copy / 'report' / 'index.html'}"
    assert (copy / "report" / "plots" / "custom-ensemble-gain.png").stat().st_size > 2000
    runs = json.loads((copy / "report" / "comparison.json").read_text())["runs"]
    (ensemble,) = [r for r in runs if r["backend"] == "ensemble"]
    assert sorted(ensemble["ensemble_members"]) == sorted(members)
