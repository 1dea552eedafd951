"""``fleetbench dashboard`` in a real Chromium, offline: over a results folder written by
real runs of SmolLM2 (two tasks, two rounds, a few tokens each), every view loads and
draws its charts, a filter changes the rows, a CSV export downloads exactly the
filtered rows, a run that finishes while the page is open appears without a reload,
and a dashboard with a token refuses requests without it. Screenshots are kept in the
test's tmp_path, as for the report's browser test.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import cli_env, db_rows, run_cli

pytest.importorskip("starlette")
pytest.importorskip("altair")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)"
)
ROWS = [
    {"id": "yes", "input": "Reply with the single word yes.", "target": "yes", "category": "words"},
    {"id": "four", "input": "What is 2 + 2? Reply with the number only.", "target": "4",
     "category": "math"},
    {"id": "no", "input": "Reply with the single word no.", "target": "no", "category": "words"},
]  # fmt: skip
VIEWS = ("overview", "comparison", "over-time", "failures", "rag", "samples")
CHARTED = {"overview", "comparison", "over-time"}


def _plan(root: Path, name: str, tasks: list[dict[str, object]], label: str) -> Path:
    plan = {
        "name": name,
        "models": [{"name": "smollm2", "backend": "llamacpp", "model_class": "A"}],
        "tasks": tasks,
        "generation": {"temperature": 0.0, "max_tokens": 4, "seed": 7},
        "settings": [{"label": label}],
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard")
    data = root / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    tasks = [{"name": "custom", "options": {"file": str(data), "scorer": "includes"}},
             {"name": "textgen"}]  # fmt: skip
    _plan(root, "first", tasks, "greedy")
    _plan(root, "second", tasks[:1], "second")
    out = root / "out"
    proc = run_cli("run", "first.yaml", "-o", str(out), "--limit", "3", "--repeat", "2",
                   cwd=root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out


class Dashboard:
    def __init__(self, folder: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench", "dashboard", "-o", str(folder), "--port", "0",
             *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, line + (self.proc.stderr.read() if self.proc.stderr else "")
        self.url = found.group(0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def dashboard(folder: Path) -> Iterator[Dashboard]:
    server = Dashboard(folder)
    yield server
    server.stop()


def _browser(pw: sync_api.Playwright) -> sync_api.Browser:
    return pw.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run"],
    )  # fmt: skip


def _offline(context: sync_api.BrowserContext, blocked: list[str]) -> None:
    def route(r: sync_api.Route) -> None:
        if r.request.url.startswith("http://127.0.0.1:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)


def _loaded(page: sync_api.Page, view: str, since: str | None = None) -> None:
    """Wait until the view has been (re)fetched and every chart of it drawn."""
    page.wait_for_function(
        """([view, since]) => {
          const s = document.getElementById(`view-${view}`);
          if (!s || s.dataset.loaded !== "true" || s.dataset.version === since) return false;
          return [...s.querySelectorAll(".chart")].every((c) => c.dataset.rendered === "true");
        }""",
        arg=[view, since],
        timeout=60_000,
    )


def _rows(page: sync_api.Page, view: str, key: str) -> list[str]:
    return page.locator(f"#view-{view} table.rows > tbody > tr > td[data-key={key}]").evaluate_all(
        "(cells) => cells.map((c) => c.dataset.value)"
    )


def test_views_filters_csv_and_live(folder: Path, dashboard: Dashboard, tmp_path: Path) -> None:
    errors: list[str] = []
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          accept_downloads=True)  # fmt: skip
            _offline(context, blocked)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(dashboard.url + "?poll=700#overview")
            for view in VIEWS:
                page.click(f"#tabs a[data-view={view}]")
                _loaded(page, view)
                charts = page.locator(f"#view-{view} .chart")
                if view in CHARTED:
                    assert charts.count() >= 1, view
                for i in range(charts.count()):
                    box = charts.nth(i).locator("svg").first.bounding_box()
                    assert box and box["width"] > 100 and box["height"] > 50, view
                    assert charts.nth(i).locator("svg path, svg rect, svg line").count() > 0
                page.screenshot(path=str(tmp_path / f"dashboard-{view}.png"), full_page=True)
            stored = db_rows(folder, "SELECT COUNT(*) AS n FROM samples")[0]["n"]
            assert (
                page.locator("#view-samples .pager")
                .inner_text()
                .endswith(f"{stored} samples older →")
            )

            # A filter: only the custom task's samples, and its CSV holds exactly them.
            version = page.locator("#view-samples").get_attribute("data-version")
            page.select_option("#filters select[name=task]", "custom")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#view-samples td[data-key=task]')]"
                ".every((c) => c.dataset.value === 'custom')",
                timeout=60_000,
            )
            _loaded(page, "samples")
            custom = db_rows(
                folder,
                "SELECT s.sample_id, s.round FROM samples s JOIN runs r USING (run_id) "
                "WHERE r.task = 'custom'",
            )
            assert set(_rows(page, "samples", "task")) == {"custom"}
            assert len(_rows(page, "samples", "task")) == len(custom) == 6
            with page.expect_download() as download:
                page.click("#view-samples a.csv")
            path = tmp_path / "samples.csv"
            download.value.save_as(path)
            with path.open(newline="") as handle:
                exported = list(csv.DictReader(handle))
            assert sorted((r["sample_id"], r["round"]) for r in exported) == sorted(
                (r["sample_id"], str(r["round"])) for r in custom
            )
            assert version is not None

            # Live: a run finishing while the page is open appears without a reload.
            page.click("#filters button[type=reset]")
            page.click("#tabs a[data-view=overview]")
            _loaded(page, "overview")
            assert "smollm2 [second]" not in _rows(page, "overview", "label")
            proc = run_cli("run", "second.yaml", "-o", str(folder), "--limit", "2",
                           cwd=folder.parent)  # fmt: skip
            assert proc.returncode == 0, proc.stderr + proc.stdout
            page.wait_for_function(
                """() => [...document.querySelectorAll('#view-overview tbody tr')].some((r) =>
                  r.querySelector('td[data-key=label]')?.dataset.value === 'smollm2 [second]'
                  && r.querySelector('td[data-key=status]')?.dataset.value === 'completed')""",
                timeout=60_000,
            )
            page.screenshot(path=str(tmp_path / "dashboard-live.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert not blocked, blocked
    assert all((tmp_path / f"dashboard-{v}.png").stat().st_size > 10_000 for v in VIEWS)


def test_token_refuses_requests_without_it(folder: Path) -> None:
    token = "s3cret-dashboard-token"
    server = Dashboard(folder, "--token", token)
    try:
        for path in ("", "static/app.js", "api/meta", "api/view/overview.csv"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(server.url + path, timeout=30)
            assert refused.value.code == 401, path
        request = urllib.request.Request(
            server.url + "api/view/overview", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert json.loads(reply.read())["rows"]
        with sync_api.sync_playwright() as pw:
            browser = _browser(pw)
            try:
                page = browser.new_page()
                assert page.goto(server.url).status == 401
                assert page.goto(f"{server.url}?token={token}#overview").status == 200
                assert "token" not in page.url
                _loaded(page, "overview")
            finally:
                browser.close()
    finally:
        server.stop()
    proc = run_cli("dashboard", "-o", str(folder), "--host", "0.0.0.0", cwd=folder.parent)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --host 0.0.0.0: ")
    assert len(proc.stderr.strip().splitlines()) == 1
