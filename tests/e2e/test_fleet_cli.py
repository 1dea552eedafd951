"""Finding the fleet: Ollama discovery, models_config.yaml, categories, comma lists."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from conftest import run_cli
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)
from ollamaserver import OllamaServer


def test_ollama_discovery_lists_models_with_details(tmp_path: Path) -> None:
    with OllamaServer() as server:
        proc = run_cli("models", "discover", "--ollama", server.url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    models = yaml.safe_load(proc.stdout)["models"]
    assert [m["name"] for m in models] == ["smollm2:135m", "qwen3:0.6b"]
    first = models[0]
    assert first["backend"] == "openai"
    assert first["options"] == {
        "preset": "ollama", "base_url": f"{server.url}/v1", "model": "smollm2:135m"
    }  # fmt: skip
    assert first["params_b"] == 0.13452
    assert first["details"]["quantization"] == "F16"
    assert first["details"]["context_length"] == 8192
    assert first["details"]["size_bytes"] == 270898672
    assert models[1]["details"]["ollama_family"] == "qwen3"
    assert "POST /api/show" in server.seen


def test_ollama_down_is_one_line_naming_the_url(tmp_path: Path) -> None:
    with OllamaServer() as server:
        url = server.url  # a port that was just free, now closed
    proc = run_cli("models", "discover", "--ollama", url, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and f"Ollama is not reachable at {url}" in proc.stderr
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"catalog: {{ollama: '{url}'}}\ntasks: [{{name: textgen}}]\n")
    run = run_cli("run", str(plan), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert run.returncode == 2 and url in run.stderr and not (tmp_path / "out").exists()


def test_plan_with_ollama_catalog_runs_a_discovered_model(
    tmp_path: Path,
    prompts_file: Path,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    prompts = prompts_file
    with OllamaServer(upstream=llama_server.base_url, upstream_model=ALIAS) as server:
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump({
            "catalog": {"ollama": server.url, "defaults": {"tags": ["local", "fast"]}},
            "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
            "generation": {"temperature": 0.0, "max_tokens": 8, "seed": 7},
        }))  # fmt: skip
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--models",
                       "smollm2,nothing-else", "--category", "local", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    with open(out / "master_results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model_name"], r["status"], r["successful_prompts"]) for r in rows] == [
        ("smollm2:135m", "completed", "2")
    ]
    assert rows[0]["categories"] == "local;fast"
    assert any(s.startswith("POST /v1/chat/completions") for s in server.seen)


MODELS_CONFIG = """\
categories:
  fast: {description: quick and cheap}
  powerful: {description: large}
  coding_specialized: {description: code}
models:
  - name: gpt-4o-mini
    provider: openai
    display_name: GPT-4o mini
    enabled: true
    api_key: ${FLEETBENCH_TEST_UNSET_KEY}
    settings: {temperature: 0.2, max_tokens: 64}
    category: fast
  - name: claude-3-5-sonnet
    provider: anthropic
    enabled: false
    api_key: ${ANTHROPIC_API_KEY}
    categories: [powerful, coding_specialized]
"""


def test_models_config_yaml_entries_categories_and_enabled(tmp_path: Path) -> None:
    config = tmp_path / "models_config.yaml"
    config.write_text(MODELS_CONFIG)
    proc = run_cli("models", "list", "-c", str(config), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    gpt, claude = json.loads(proc.stdout)
    assert (gpt["name"], gpt["id"], gpt["backend"]) == ("GPT-4o mini", "gpt-4o-mini", "openai")
    assert gpt["options"]["preset"] == "openai" and gpt["options"]["model"] == "gpt-4o-mini"
    assert gpt["options"]["api_key_env"] == "FLEETBENCH_TEST_UNSET_KEY"
    assert gpt["generation"] == {"temperature": 0.2, "max_tokens": 64}
    assert gpt["tags"] == ["fast"] and gpt["supported"] is True
    assert claude["backend"] == "hosted" and claude["options"]["provider"] == "anthropic"
    assert claude["tags"] == ["powerful", "coding_specialized"]
    assert (claude["supported"], claude["skip_reason"]) == (False, "disabled (enabled: false)")
    table = run_cli("models", "list", "-c", str(config), "--category", "coding_specialized",
                    cwd=tmp_path)  # fmt: skip
    assert "powerful,coding_specialized" in table.stdout and "GPT-4o" not in table.stdout
    both = run_cli("models", "list", "-c", str(config), "--json", "--models", "gpt,claude",
                   cwd=tmp_path)  # fmt: skip
    assert len(json.loads(both.stdout)) == 2
    every = run_cli("models", "list", "-c", str(config), "--json", "-m", "all", cwd=tmp_path)
    assert len(json.loads(every.stdout)) == 2

    # The placeholder's variable is unset: one line before anything runs.
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"catalog: {{path: {config}}}\ntasks: [{{name: textgen}}]\n")
    out = tmp_path / "out"
    run = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "FLEETBENCH_TEST_UNSET_KEY" in run.stderr
    assert "models_config.yaml:6: models[0]" in run.stderr
    assert not out.exists()
    # The disabled entry alone is listed, not run, and asks for no key.
    dry = run_cli("run", str(plan), "--dry-run", "--category", "powerful", "-o", str(out),
                  cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0 and "disabled (enabled: false)" in dry.stdout, dry.stderr


def test_models_config_bad_inputs_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "models_config.yaml"
    cases = {
        "provider: nosuch": "models[1]: provider: unknown provider 'nosuch'; valid: openai,",
        "api_key: sk-live-abcdef123456": "api_key: expected a ${VARIABLE} placeholder",
        "category: slow": "category: undefined category 'slow'; defined: fast, powerful",
        "settings: {temprature: 1}": "settings.temprature: unknown setting; valid: temperature",
    }
    for change, expected in cases.items():
        key = change.split(":")[0]
        text = _replace_in_second(MODELS_CONFIG, key, change)
        config.write_text(text)
        proc = run_cli("models", "list", "-c", str(config), cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (change, proc.stderr)
        assert expected in proc.stderr, (change, proc.stderr)
        assert "sk-live" not in proc.stderr


def _replace_in_second(text: str, key: str, change: str) -> str:
    """Set ``key`` of the second entry to ``change`` (replace it, or add it)."""
    head, tail = text.split("  - name: claude-3-5-sonnet\n")
    lines = [ln for ln in tail.splitlines() if not ln.strip().startswith(f"{key}:")]
    return head + "  - name: claude-3-5-sonnet\n" + "\n".join([f"    {change}", *lines]) + "\n"
