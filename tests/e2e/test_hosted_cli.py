"""``fleetbench run`` with a hosted (Anthropic API) model served on 127.0.0.1 by the
loopback Anthropic server (replies from the real SmolLM2): usage counts and cost end
up in the store, the planted key reaches the server and no output file, and a missing
key variable stops the batch before anything runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("any_llm", reason="needs the [hosted] extra")
from conftest import PlanWriter, db_rows, run_cli
from fake_anthropic import FakeAnthropic, Fault

KEY = "sk-ant-api03-PLANTED-e2e-0123456789abcdef"
PRICE_IN, PRICE_OUT = 3.0, 15.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


def hosted_entry(url: str, **options: Any) -> dict[str, Any]:
    return {
        "name": "claude-fake",
        "id": "claude-fake-1",
        "backend": "hosted",
        "options": {
            "provider": "anthropic",
            "api_base": url,
            "concurrency": 2,
            "backoff_base_s": 0.02,
            **options,
        },
        "price_input_per_1m": PRICE_IN,
        "price_output_per_1m": PRICE_OUT,
    }


def test_hosted_run_stores_usage_and_cost_and_never_the_key(
    tmp_path: Path, write_plan: PlanWriter, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    fake.faults[:] = [Fault(529)]  # one overloaded reply on the way: retried, counted
    fake.requests.clear()
    plan = write_plan(extra_models=[hosted_entry(fake.url)], max_tokens=8)
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "3", "-m", "claude", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout

    rows = db_rows(out, "SELECT * FROM samples ORDER BY sample_index")
    assert len(rows) == 3
    for row in rows:
        assert row["error"] is None and row["output_text"]
        assert row["token_source"] == "usage" and row["ttft_s"] > 0
        expected = (PRICE_IN * row["prompt_tokens"] + PRICE_OUT * row["completion_tokens"]) / 1e6
        assert row["cost_usd"] == pytest.approx(expected)
    assert sum(row["retries"] for row in rows) == 1

    assert {seen.headers["X-Api-Key"] for seen in fake.requests} == {KEY}
    leaks = [p for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []
    assert KEY not in proc.stdout + proc.stderr


def test_missing_key_variable_stops_the_batch_before_anything_runs(
    tmp_path: Path, write_plan: PlanWriter, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEAM_CLAUDE_KEY", raising=False)
    fake.requests.clear()
    plan = write_plan(extra_models=[hosted_entry(fake.url, api_key_env="TEAM_CLAUDE_KEY")])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--smoke", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert "environment variable TEAM_CLAUDE_KEY is not set" in message
    assert "claude-fake" in message and len(message.splitlines()) == 1
    assert not out.exists() and fake.requests == []
