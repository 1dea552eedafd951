"""Finding the fleet: Ollama discovery, models_config.yaml, categories, comma lists."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from conftest import PlanWriter, run_cli
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)
from ollamaserver import OllamaServer

from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.runner.batches import default_name


def test_ollama_discovery_lists_models_with_details(tmp_path: Path) -> None:
    with OllamaServer() as server:
        proc = run_cli("models", "discover", "--ollama", server.url, cwd=tmp_path)
        native = run_cli("models", "discover", "--ollama", server.url, "--native", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert native.returncode == 0, native.stderr
    assert {m["options"]["api"] for m in yaml.safe_load(native.stdout)["models"]} == {"native"}
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


def test_ollama_native_api_records_load_and_eval_speeds(
    tmp_path: Path,
    prompts_file: Path,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    """``api: native`` on the discovered entries: the server's own timings per sample
    (results.jsonl) and per run (summary.json, master CSV)."""
    with OllamaServer(upstream=llama_server.base_url, upstream_model=ALIAS) as server:
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump({
            "catalog": {"ollama": server.url, "defaults": {"options": {"api": "native"}}},
            "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts_file)}}],
            "generation": {"temperature": 0.0, "max_tokens": 8, "seed": 7},
        }))  # fmt: skip
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--models",
                       "smollm2", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "POST /api/chat" in server.seen and not any("/v1/chat" in s for s in server.seen)
    finals = server.finals
    assert len(finals) == 2
    (run_dir,) = (out / "runs").iterdir()
    samples = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    timings = sorted((json.loads(s["server_timing_json"]) for s in samples),
                     key=lambda t: t["total_s"])  # fmt: skip
    assert [t["eval_tokens"] for t in timings] == [
        f["eval_count"] for f in sorted(finals, key=lambda f: f["total_duration"])]  # fmt: skip
    assert [s["completion_tokens"] for s in samples] == [
        json.loads(s["server_timing_json"])["eval_tokens"] for s in samples]  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    load = sum(f["load_duration"] for f in finals) / 1e9
    evals = sum(f["eval_count"] for f in finals) / (sum(f["eval_duration"] for f in finals) / 1e9)
    prompt = sum(f["prompt_eval_count"] for f in finals) / (
        sum(f["prompt_eval_duration"] for f in finals) / 1e9)  # fmt: skip
    assert summary["server_load_seconds"] == pytest.approx(load, rel=1e-6)
    assert summary["server_eval_tokens_per_second"] == pytest.approx(evals, rel=1e-6)
    assert summary["server_prompt_eval_tokens_per_second"] == pytest.approx(prompt, rel=1e-6)
    with open(out / "master_results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["server_eval_tokens_per_second"]) == pytest.approx(evals, rel=1e-5)
    assert float(row["server_load_seconds"]) == pytest.approx(load, rel=1e-5)


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


def test_named_batches_listing_resume_and_per_run_files(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    plan = write_plan()
    out = tmp_path / "out"
    first = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "--name", "first",
                    "--batch-dir", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr + first.stdout
    (row,) = _master(out)
    run_dir = out / "runs" / row["run_id"]
    with open(run_dir / "samples.csv", newline="") as f:
        samples = list(csv.DictReader(f))
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [s["output_text"] for s in samples] == [r["output_text"] for r in results]
    assert [s["sample_index"] for s in samples] == ["0", "1"]
    assert samples[0]["error"] == "" and float(samples[0]["latency_s"]) > 0
    emissions = json.loads((run_dir / "emissions.json").read_text())
    assert emissions["run_id"] == row["run_id"] and emissions["energy_scope"] == "in-process"
    assert emissions["energy_method"] == row["energy_method"]
    assert len(emissions["attempts"]) == 1 and emissions["attempts"][0]["attempt"] == 1
    assert [r["run_id"] for r in _master(out / "batches" / "first")] == [row["run_id"]]
    assert json.loads((out / "batches" / "first" / "batch.json").read_text())["name"] == "first"

    listing = run_cli("batches", "-o", str(out), "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    (batch,) = json.loads(listing.stdout)
    assert (batch["name"], batch["status"], batch["runs"], batch["done"]) == (
        "first", "completed", 1, 1
    )  # fmt: skip
    assert batch["plan"] == str(plan) and batch["batch_id"].startswith("b-")

    # A plan with one more model: resuming "first" runs exactly that batch's run.
    plan2 = write_plan(
        extra_models=[{"name": "other", "backend": "llamacpp", "generation": {"seed": 3}}],
        name="plan2.yaml",
    )
    dry = run_cli("run", str(plan2), "-o", str(out), "--resume", "first", "--limit", "3",
                  "--dry-run", cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "2/3 stored" in dry.stdout and "1 more run(s) filtered out" in dry.stdout
    assert "other" not in dry.stdout
    # Without a plan: the batch's own plan file, by id.
    again = run_cli("run", "-o", str(out), "--resume", batch["batch_id"], "--limit", "3",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr + again.stdout
    assert [r["successful_prompts"] for r in _master(out)] == ["3"]
    names = [b["name"] for b in json.loads(run_cli("batches", "-o", str(out), "--json",
                                                   cwd=tmp_path).stdout)]  # fmt: skip
    assert names == ["first", "first"]

    for args, expected in [
        (("--resume", "nosuch"), "--resume 'nosuch': no such batch in"),
        (("--name", "a/b"), "--name 'a/b': use letters, digits"),
    ]:
        bad = run_cli("run", str(plan), "-o", str(out), *args, cwd=tmp_path)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert expected in bad.stderr
    empty = run_cli("batches", "-o", str(tmp_path / "none"), cwd=tmp_path)
    assert empty.returncode == 2 and "no results store here" in empty.stderr


def test_default_batch_name() -> None:
    assert default_name(datetime(2026, 1, 2, 3, 4, 5)) == "batch_20260102_030405"


def _master(folder: Path) -> list[dict[str, str]]:
    with open(folder / "master_results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_catalogue_without_a_plan_and_save_plan_round_trip(
    tmp_path: Path, prompts_file: Path
) -> None:
    catalogue = tmp_path / "models.csv"
    catalogue.write_text(
        ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
        f",https://huggingface.co/{EMBEDDED_MODEL_ID},1,A,text_gen,Off (N/A),N/A\n"
        ",Qwen/Qwen3-0.6B,1,A,text_gen,Off,N/A\n"
    )
    out, saved = tmp_path / "out", tmp_path / "saved" / "plan.yaml"
    saved.parent.mkdir()
    proc = run_cli("run", str(catalogue), "--prompts-file", str(prompts_file), "--limit", "2",
                   "-o", str(out), "--save-plan", str(saved), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = _master(out)
    assert [(r["model_name"], r["status"], r["total_completion_tokens"]) for r in rows] == [
        (EMBEDDED_MODEL_ID, "completed", "20")  # the AI Energy Score protocol: 10 each
    ]
    assert "no GGUF for Qwen/Qwen3-0.6B" in proc.stdout
    data = yaml.safe_load(saved.read_text())
    assert data["catalog"] == {"path": str(catalogue)}
    assert data["tasks"] == [{"name": "textgen", "options": {"prompts_file": str(prompts_file)}}]
    again = run_cli("run", str(saved), "-o", str(out), "--limit", "2", "--dry-run",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert rows[0]["run_id"][:20] in again.stdout and "completed (2/2 stored)" in again.stdout
    # The plan-less batch resumes by id, from the plan its command line amounted to.
    (batch,) = json.loads(run_cli("batches", "-o", str(out), "--json", cwd=tmp_path).stdout)
    resume = run_cli("run", "-o", str(out), "--resume", batch["batch_id"], "--limit", "3",
                     "--dry-run", cwd=tmp_path)  # fmt: skip
    assert resume.returncode == 0 and "2/3 stored" in resume.stdout, resume.stderr


def test_one_model_without_a_plan(tmp_path: Path, prompts_file: Path) -> None:
    gguf = embedded_model_path()
    out, saved = tmp_path / "out", tmp_path / "adhoc.yaml"
    proc = run_cli("run", "--model-path", str(gguf), "--prompts-file", str(prompts_file),
                   "--limit", "1", "-o", str(out), "--save-plan", str(saved),
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (row,) = _master(out)
    assert (row["model_name"], row["backend"], row["status"]) == (gguf.stem, "llamacpp",
                                                                 "completed")  # fmt: skip
    model = yaml.safe_load(saved.read_text())["models"][0]
    assert model == {"backend": "llamacpp", "name": gguf.stem,
                     "options": {"model_path": str(gguf)}}  # fmt: skip
    replay = run_cli("run", str(saved), "-o", str(out), "--limit", "1", cwd=tmp_path)
    assert replay.returncode == 0 and [r["run_id"] for r in _master(out)] == [row["run_id"]]

    plan = tmp_path / "plan.yaml"
    plan.write_text("models: [{name: m}]\ntasks: [{name: textgen}]\n")
    for args, expected in [
        ((str(plan), "--base-url", "http://127.0.0.1:1/v1"), "--base-url: only for a run"),
        ((str(plan), "--save-plan", "x.yaml"), "--save-plan: only for a run without"),
        (("--model-id", "a/b", "--prompts-file", "nope.jsonl"), "--prompts-file nope.jsonl"),
        (("--model-id", "a/b", "--backend", "nosuch"), "unknown backend 'nosuch'"),
    ]:
        bad = run_cli("run", *args, "-o", str(tmp_path / "bad"), cwd=tmp_path)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, (args, bad.stderr)
        assert expected in bad.stderr, (args, bad.stderr)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "x.yaml").exists()
