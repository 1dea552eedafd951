"""``backend: openai`` through the CLI, against a real llama_cpp.server on 127.0.0.1."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PlanWriter, db_rows, run_cli
from faultproxy import FaultProxy, Status
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)

from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID

PLANTED_KEY = "sk-planted-0123456789"


def read_master(output: Path) -> dict[str, dict[str, str]]:
    with open(output / "master_results.csv", newline="") as f:
        return {row["model_name"]: row for row in csv.DictReader(f)}


def served(base_url: str, **options: Any) -> dict[str, Any]:
    return {
        "name": "smollm2-served",
        "id": EMBEDDED_MODEL_ID,
        "backend": "openai",
        "model_class": "A",
        "reasoning_state": "Off (N/A)",
        "options": {"preset": "llamacpp-server", "base_url": base_url, "model": ALIAS, **options},
    }


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[FaultProxy]:  # noqa: F811
    with FaultProxy(llama_server.root_url) as p:
        yield p


def test_served_model_runs_beside_the_in_process_one(
    tmp_path: Path,
    write_plan: PlanWriter,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    plan = write_plan(
        extra_models=[served(llama_server.base_url, concurrency=2)],
        generation={"temperature": 0.0, "max_tokens": 12, "seed": 7, "repeat_penalty": 1.0},
    )
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = read_master(out)
    local, remote = rows["smollm2"], rows["smollm2-served"]
    assert remote["status"] == "completed" and remote["backend"] == "openai"
    assert (remote["successful_prompts"], remote["failed_prompts"]) == ("4", "0")
    assert remote["token_count_source"] == "tokenizer"  # the embedded GGUF, client side
    assert float(remote["avg_itl_seconds"]) > 0
    assert float(remote["avg_ttft_seconds"]) < float(remote["avg_latency_seconds"])
    # Greedy on the same GGUF and template: same answers and token totals as in-process.
    for column in ("total_prompt_tokens", "total_completion_tokens"):
        assert remote[column] == local[column]
    texts = {
        name: [
            r["output_text"]
            for r in db_rows(
                out,
                "SELECT output_text FROM samples WHERE run_id = ? ORDER BY sample_index",
                rows[name]["run_id"],
            )
        ]
        for name in rows
    }
    assert texts["smollm2"] == texts["smollm2-served"]
    attempt = db_rows(out, "SELECT details_json FROM attempts WHERE run_id = ?", remote["run_id"])
    details = json.loads(attempt[0]["details_json"])["details"]
    assert details["base_url"] == llama_server.base_url and details["model"] == ALIAS


def test_missing_api_key_stops_before_anything_runs(
    tmp_path: Path, write_plan: PlanWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FB_ABSENT_KEY", raising=False)
    entry = served("http://127.0.0.1:9/v1", api_key_env="FB_ABSENT_KEY")
    plan = write_plan(extra_models=[entry])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "FB_ABSENT_KEY is not set" in lines[0]
    assert "smollm2-served" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_planted_key_never_reaches_any_output(
    tmp_path: Path,
    write_plan: PlanWriter,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FB_TEST_KEY", PLANTED_KEY)
    # One server error echoes the Authorization header back: the client must scrub it.
    echo = '{"error": {"message": "invalid credentials {auth}"}}'
    proxy.script({"Name a colour": [Status(401, body=echo)], "Say hello": [Status(500, body=echo)]})
    entry = served(proxy.base_url, api_key_env="FB_TEST_KEY", stream=False, backoff_base_s=0.05)
    plan = write_plan(lead_models=[entry], extra_models=[])
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "3", "-m", "served", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout  # 1 of 3 failed: with errors
    # the key was really sent, as a Bearer header only
    chats = [s for s in proxy.seen if s.path == "/v1/chat/completions"]
    assert chats and all(s.authorization == f"Bearer {PLANTED_KEY}" for s in chats)
    row = read_master(out)["smollm2-served"]
    assert (row["successful_prompts"], row["failed_prompts"]) == ("2", "1")
    errors = [r["error"] for r in db_rows(out, "SELECT error FROM samples WHERE error IS NOT NULL")]
    assert errors == ["HTTP 401: invalid credentials Bearer ***"]
    needle = PLANTED_KEY.encode()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "run.log" for p in files) and any(p.suffix == ".db" for p in files)
    for path in files:
        assert needle not in path.read_bytes(), path
    assert PLANTED_KEY not in proc.stdout + proc.stderr
