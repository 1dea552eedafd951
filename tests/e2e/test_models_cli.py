"""``fleetbench models`` and catalogue plans through the CLI (no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import AES_OCT as OCT
from conftest import run_cli

REQUIRED = {
    "id": str, "family": str, "task": str, "model_class": str, "priority": int,
    "reasoning_state": str, "reasoning": bool, "chat_template_kwargs": dict,
    "prompt_prefix": str, "prompt_suffix": str, "supported": bool, "warnings": list,
}  # fmt: skip


def test_models_list_json_is_one_object_per_row(tmp_path: Path) -> None:
    proc = run_cli("models", "list", "--catalog", str(OCT), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 56
    for row in rows:
        for key, kind in REQUIRED.items():
            assert isinstance(row[key], kind), (key, row)
        for key in ("reasoning_effort", "system_prompt", "skip_reason"):
            assert key in row and (row[key] is None or isinstance(row[key], str))
    assert rows[0]["reasoning_effort"] == "high"
    assert rows[0]["chat_template_kwargs"] == {"reasoning_effort": "high"}
    assert [r["supported"] for r in rows].count(False) == 5  # 3 image rows, 2 duplicates
    assert rows[50]["skip_reason"].startswith("task 'image_gen' is not supported")

    filtered = run_cli("models", "list", "-c", str(OCT), "--json", "--class", "B",
                       "--reasoning", "high", cwd=tmp_path)  # fmt: skip
    assert [r["name"] for r in json.loads(filtered.stdout)] == ["openai/gpt-oss-20b [On (High)]"]


def test_models_list_table_and_show(tmp_path: Path) -> None:
    table = run_cli("models", "list", "-c", str(OCT), "--priority", "1", cwd=tmp_path)
    assert table.returncode == 0
    assert "reasoning_effort=high" in table.stdout and "27 entries" in table.stdout
    show = run_cli("models", "show", "https://huggingface.co/Qwen/Qwen3-0.6B", "-c", str(OCT),
                   cwd=tmp_path)  # fmt: skip
    assert show.returncode == 0
    assert show.stdout.count("id: Qwen/Qwen3-0.6B") == 2  # both rows of that id
    assert "enable_thinking: false" in show.stdout
    missing = run_cli("models", "show", "nope", "-c", str(OCT), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no entry named 'nope'")
    demo = run_cli("models", "list", cwd=tmp_path)
    assert "SmolLM2-135M-Instruct" in demo.stdout


def test_bad_catalogue_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "cat.csv"
    bad.write_text(",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
                   ",a/b,1,Z,text_gen,Off,N/A\n")  # fmt: skip
    proc = run_cli("models", "list", "-c", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1 and "row 1 (line 2): Class: unknown class 'Z'" in proc.stderr
    )


def test_dry_run_of_a_catalogue_plan_says_why_rows_are_skipped(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"catalog: {{path: {OCT}}}\ntasks: [{{name: textgen}}]\n")
    proc = run_cli("run", str(plan), "--dry-run", "--catalog-task", "image_gen", "-o",
                   str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("is not supported") == 3
    assert "53 more run(s) filtered out" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_discover_checkpoints_and_run_the_gguf_one(tmp_path: Path) -> None:
    from fleetbench.catalog import embedded_model_path

    root = tmp_path / "train"
    for step in (300, 20):
        (root / f"checkpoint-{step}").mkdir(parents=True)
        (root / f"checkpoint-{step}" / "config.json").write_text('{"torch_dtype": "bfloat16"}')
    (root / "step_100.gguf").symlink_to(embedded_model_path())
    out = run_cli("models", "discover", str(root), "-o", str(tmp_path / "ckpt.yaml"),
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "ckpt.yaml").read_text()
    order = [text.index(f"train/{name}") for name in
             ("checkpoint-20", "step_100.gguf", "checkpoint-300")]  # fmt: skip
    assert order == sorted(order)

    plan = tmp_path / "plan.yaml"
    plan.write_text("catalog: {path: ckpt.yaml}\ntasks: [{name: textgen}]\n")
    dry = run_cli("run", str(plan), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    # HF checkpoints go to the transformers backend: skipped here (fake weights, or no
    # [hf] extra installed), with the reason.
    assert dry.stdout.count("no model weights") + dry.stdout.count("needs the [hf] extra") == 2
    smoke = run_cli("run", str(plan), "--smoke", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert smoke.returncode == 0, smoke.stderr  # the GGUF checkpoint ran; HF ones skipped
    assert "completed train/step_100.gguf" in smoke.stdout


def test_discovered_checkpoints_follow_the_catalogue_defaults(tmp_path: Path) -> None:
    root = tmp_path / "train"
    for step in (20, 300):
        ckpt = root / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "config.json").write_text('{"torch_dtype": "bfloat16"}')
        (ckpt / "model.safetensors").write_bytes(b"\0" * 1024)
    (root / "step_100.gguf").write_bytes(b"GGUF")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "catalog: {path: train, defaults: {backend: vllm, options: {max_model_len: 2048}}}\n"
        "tasks: [{name: textgen}]\n"
    )
    dry = run_cli("run", str(plan), "--dry-run", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    rows = [line for line in dry.stdout.splitlines() if "train/" in line]
    assert len(rows) == 3, dry.stdout  # the GGUF one too: vLLM loads a .gguf file
    from fleetbench.backends.vllm_offline import VLLMBackend, VLLMOptions
    from fleetbench.catalog.spec import ModelSpec

    why = VLLMBackend.unavailable_reason(VLLMOptions(), ModelSpec(name="x"))
    for row in rows:
        assert " vllm " in row
        if why is not None:  # e.g. "vllm backend needs the [vllm] extra" without vLLM
            assert "skip" in row and why[:36] in row  # (the table folds long reasons)
    # The checkpoint reaches vLLM as its model_path, with the defaults' own options.
    from fleetbench.runner.plan import load_plan

    specs = load_plan(plan).runs
    assert [s.model.backend for s in specs] == ["vllm"] * 3
    order = ("checkpoint-20", "step_100.gguf", "checkpoint-300")
    paths = [str((root / name).resolve()) for name in order]
    assert [s.backend_options["model_path"] for s in specs] == paths
    assert {s.backend_options["max_model_len"] for s in specs} == {2048}
    # Without defaults, each checkpoint keeps the backend its file kind suggests.
    plain = tmp_path / "plain.yaml"
    plain.write_text("catalog: {path: train}\ntasks: [{name: textgen}]\n")
    assert [s.model.backend for s in load_plan(plain).runs] == [
        "transformers", "llamacpp", "transformers"
    ]  # fmt: skip
