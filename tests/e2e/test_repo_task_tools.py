"""``repo_task`` with OpenAI tool calling, end to end through ``fleetbench run``: a
scripted tool-calling server (``toolserver``) solves a built-in task streamed and not,
broken calls are answered and the loop still ends cleanly, ``actions: auto`` keeps the
plain-text format for a model not known to call tools; and the real llama_cpp.server
(SmolLM2 behind its ``chatml-function-calling`` format) ends with its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from llamaserver import ALIAS, LlamaServer
from test_cli_run import read_master
from toolserver import ToolServer

from fleetbench.tasks.repo_agent import END_REASONS, TOOL_NAMES, TOOLS_SYSTEM_PROMPT

KEY = "sk-tools-0123456789abcdef"  # planted: must never reach a log or a result
FIX = [
    [("bash", json.dumps({"command": "cat README.md"}))],
    [("bash", json.dumps({"command": "sed -i 's/^## Instalation$/## Installation/' README.md"}))],
    [("ask_human", json.dumps({"question": "should I fix other words too?"}))],
    [("done", "{}")],
]
BROKEN = [
    [("bash", '{"command": "cat README.md"')],  # not valid JSON
    [("rm_everything", "{}"), ("bash", json.dumps({"cmd": "ls"}))],  # unknown; wrong key
    [("done", "")],
]
MUTE = ["I would rather not touch anything."] * 5


def _plan(tmp_path: Path, models: list[dict[str, Any]], options: dict[str, Any]) -> Path:
    plan = {
        "name": "tools",
        "models": models,
        "tasks": [{"name": "repo_task", "options": {"tasks": ["fix_typo"], **options}}],
        "generation": {"temperature": 0.0, "max_tokens": 64, "seed": 7},
        "energy": {"idle_baseline_s": 0},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def _model(name: str, base_url: str, **options: Any) -> dict[str, Any]:
    """A model entry served by the tool server's script ``name``."""
    return {"name": name, "backend": "openai",
            "options": {"base_url": base_url, "model": name, **options}}  # fmt: skip


def _sample(out: Path, run_id: str) -> dict[str, Any]:
    (line,) = (out / "runs" / run_id / "results.jsonl").read_text().splitlines()
    sample: dict[str, Any] = json.loads(line)
    return sample


def test_tool_calls_solve_a_task_streamed_and_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FB_TOOLS_KEY", KEY)
    scripts = {"streamed": FIX, "plain": FIX, "broken": BROKEN, "mute": MUTE,
               "untested": ["DONE"]}  # fmt: skip
    with ToolServer(scripts) as server:
        models = [
            _model("streamed", server.base_url, tool_calling=True, api_key_env="FB_TOOLS_KEY"),
            _model("plain", server.base_url, tool_calling=True, stream=False),
            _model("broken", server.base_url, tool_calling=True),
            _model("mute", server.base_url, tool_calling=True),
            _model("untested", server.base_url),  # generic preset: tool calling unknown
        ]
        plan = _plan(tmp_path, models, {"actions": "auto", "max_turns": 8})
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
        requests = list(server.requests)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = {r["model_name"]: r for r in read_master(out)}
    assert {r["status"] for r in rows.values()} == {"completed"}
    for name in ("streamed", "plain"):
        sample = _sample(out, rows[name]["run_id"])
        s = sample["scores"]
        assert (s["solved"], s["end_reason"], s["actions"]) == (1, "done", "tools"), name
        assert (s["turns"], s["tool_calls"], s["human_interventions"]) == (4, 2, 1)
        assert (s["files_modified"], s["lines_added"], s["lines_removed"]) == (1, 1, 1)
        assert [t["action"] for t in s["trace"]] == ["bash", "bash", "ask_human", "done"]
        assert s["trace"][1]["exit_code"] == 0 and s["trace"][0]["tool"] == "bash"
        # The conversation: each call is answered by a tool message naming its id.
        messages = sample["messages"]
        assert messages[0]["content"].startswith(TOOLS_SYSTEM_PROMPT[:60])
        assert "```bash" not in messages[0]["content"]
        roles = [m["role"] for m in messages]
        assert roles == ["system", "user"] + ["assistant", "tool"] * 3 + ["assistant"]
        first_call = messages[2]["tool_calls"][0]
        assert first_call == {"id": "call_1_0", "type": "function", "function": {
            "name": "bash", "arguments": FIX[0][0][1]}}  # fmt: skip
        assert messages[3]["tool_call_id"] == "call_1_0"
        assert messages[3]["content"].startswith("exit code 0\n# greetlib")
        assert "decide yourself" in messages[7]["content"]
        assert s["completion_tokens"] == sample["completion_tokens"] > 0  # from usage
    # What the server received: the tools, and the replies to its calls.
    fix = [r for r in requests if r["model"] == "streamed"]
    assert len(fix) == 4 and all(r["stream"] for r in fix)
    assert all(r["tool_choice"] == "auto" for r in fix)
    assert [t["function"]["name"] for t in fix[0]["tools"]] == list(TOOL_NAMES)
    assert fix[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_1_0",
                                      "content": fix[1]["messages"][-1]["content"]}  # fmt: skip
    plain = [r for r in requests if r["model"] == "plain"]
    assert len(plain) == 4 and not any(r["stream"] for r in plain)

    # Broken calls are answered with what was wrong; the loop goes on and ends cleanly.
    b = _sample(out, rows["broken"]["run_id"])
    s = b["scores"]
    assert (s["end_reason"], s["turns"], s["tool_calls"], s["solved"]) == ("done", 3, 0, 0)
    assert [(t["action"], t["tool"]) for t in s["trace"]] == [
        ("none", "bash"), ("none", "rm_everything"), ("none", "bash"), ("done", "done")
    ]  # fmt: skip
    answers = [m for m in b["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in answers] == ["call_1_0", "call_2_0", "call_2_1"]
    assert answers[0]["content"].startswith("error: the arguments of bash are not valid JSON")
    assert answers[1]["content"] == (
        "error: unknown tool 'rm_everything'; the tools are bash, done, ask_human"
    )
    assert answers[2]["content"] == "error: bash needs a non-empty string 'command'"
    # A model that never calls a tool is reminded, then the loop ends: no_action.
    m = _sample(out, rows["mute"]["run_id"])["scores"]
    assert (m["end_reason"], m["turns"], m["actions"]) == ("no_action", 3, "tools")
    # Not known to call tools (no tool_calling, generic preset): auto keeps plain text.
    u = _sample(out, rows["untested"]["run_id"])
    assert (u["scores"]["actions"], u["scores"]["end_reason"]) == ("text", "done")
    untested = [r for r in requests if r["model"] == "untested"]
    assert untested and not any("tools" in r for r in untested)
    # The API key went to the server, and nowhere else.
    assert f"Bearer {KEY}" in server.authorization
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".jsonl", ".json", ".csv", ".html"):
            assert KEY not in path.read_text(errors="replace"), path
    assert KEY not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_llama_cpp_server_with_tools_ends_cleanly(tmp_path: Path) -> None:
    """SmolLM2 behind llama_cpp.server's chatml-function-calling format: the tools are
    accepted; the small model mostly fails, the loop ends with its reason. Not streamed:
    that format refuses streamed requests with tool_choice auto ("Automatic streaming
    tool choice is not supported")."""
    server = LlamaServer(
        tmp_path / "server.log", extra=("--chat_format", "chatml-function-calling")
    )
    base_url = server.start()
    try:
        model = {"name": "smollm2-tools", "backend": "openai", "model_class": "A",
                 "reasoning_state": "Off (N/A)",
                 "options": {"base_url": base_url, "model": ALIAS, "preset": "llamacpp-server",
                             "tool_calling": True, "stream": False}}  # fmt: skip
        plan = _plan(tmp_path, [model], {"max_turns": 3})
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = read_master(out)
    assert row["status"] == "completed" and row["quality_metric"] == "success_rate"
    sample = _sample(out, row["run_id"])
    s = sample["scores"]
    assert s["actions"] == "tools"
    assert s["end_reason"] in END_REASONS and s["end_reason"] != "backend_error", s
    assert 1 <= s["turns"] <= 3 and s["check_status"] in ("passed", "failed")
    replies = [m for m in sample["messages"] if m["role"] == "assistant"]
    assert len(replies) == s["turns"]
