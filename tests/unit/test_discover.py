"""Checkpoint sweeps: discovering training checkpoints as catalogue entries."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleetbench.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from fleetbench.catalog.discover import (
    discover_checkpoints,
    discovered_catalog_yaml,
    step_of,
)
from fleetbench.catalog.loaders import load_yaml
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import CatalogError, UserError


def hf(folder: Path, config: object = None, *, raw: str | None = None) -> Path:
    folder.mkdir(parents=True)
    text = raw if raw is not None else json.dumps(config or {"model_type": "llama"})
    (folder / "config.json").write_text(text)
    (folder / "model.safetensors").write_bytes(b"\0")
    return folder


def gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "sft-run"
    hf(root / "checkpoint-49", {"torch_dtype": "bfloat16"})
    gguf(root / "checkpoint-49" / "export" / "model-q4.gguf")  # inside a checkpoint: not listed
    hf(root / "checkpoint-7", {"torch_dtype": "float16"})
    hf(root / "checkpoint-1000", {"dtype": "float32"})
    hf(root / "checkpoint-300", raw="{not json")
    gguf(root / "step_98.gguf")
    gguf(root / "step_5" / "model.gguf")
    hf(root / "final", {"torch_dtype": "bfloat16"})
    hf(root / ".cache" / "checkpoint-3")
    hf(root / "runs" / "a" / "checkpoint-2")
    gguf(root / "model.gguf")
    logs = root / "logs"
    logs.mkdir()
    (logs / "events.out.tfevents").write_bytes(b"\1\2")
    (logs / "notes.txt").write_text("lr=1e-5\n")
    (logs / "step_4.json").write_text("{}")  # a step name, but not a checkpoint
    (root / "trainer_state.json").write_text("{}")
    return root


def names(entries: list[ModelSpec]) -> list[str]:
    return [e.name for e in entries]


def test_orders_by_step_then_unstepped_by_name(run: Path) -> None:
    assert names(discover_checkpoints(run)) == [
        "sft-run/runs/a/checkpoint-2",
        "sft-run/step_5/model.gguf",
        "sft-run/checkpoint-7",
        "sft-run/checkpoint-49",
        "sft-run/step_98.gguf",
        "sft-run/checkpoint-300",
        "sft-run/checkpoint-1000",
        "sft-run/final",
        "sft-run/model.gguf",
    ]


def test_backends_options_and_fields(run: Path) -> None:
    by_name = {e.name: e for e in discover_checkpoints(run)}
    base = run.resolve()
    ckpt = by_name["sft-run/checkpoint-49"]
    assert ckpt.backend == "transformers"
    assert ckpt.options == {"model_path": str(base / "checkpoint-49")}
    assert ckpt.id == ""
    assert ckpt.task == "text_gen"
    assert ckpt.dtype == "bfloat16"
    assert ckpt.source == str(base / "checkpoint-49")
    assert ckpt.warnings == []
    assert ckpt.supported
    assert by_name["sft-run/checkpoint-7"].dtype == "float16"
    assert by_name["sft-run/checkpoint-1000"].dtype == "float32"  # newer "dtype" key
    nested = by_name["sft-run/step_5/model.gguf"]
    assert nested.backend == "llamacpp"
    assert nested.options == {"model_path": str(base / "step_5" / "model.gguf")}
    assert nested.dtype is None
    assert Path(nested.options["model_path"]).is_absolute()
    assert by_name["sft-run/step_98.gguf"].options == {"model_path": str(base / "step_98.gguf")}


def test_gguf_entries_pass_the_embedded_model_guard(run: Path) -> None:
    for entry in discover_checkpoints(run):
        if entry.backend == "llamacpp":
            options = LlamaCppOptions.model_validate(entry.options)
            assert LlamaCppBackend.unavailable_reason(options, entry) is None


def test_unstepped_entries_say_so(run: Path) -> None:
    by_name = {e.name: e for e in discover_checkpoints(run)}
    for name in ("sft-run/final", "sft-run/model.gguf"):
        assert len(by_name[name].warnings) == 1
        assert "no training step" in by_name[name].warnings[0]
    assert by_name["sft-run/step_98.gguf"].warnings == []


def test_broken_config_is_a_warning(run: Path) -> None:
    entry = {e.name: e for e in discover_checkpoints(run)}["sft-run/checkpoint-300"]
    assert entry.dtype is None
    assert entry.backend == "transformers"
    [warning] = entry.warnings
    assert str(run.resolve() / "checkpoint-300" / "config.json") in warning
    assert "not valid JSON" in warning
    assert "\n" not in warning


def test_non_object_config_is_a_warning(tmp_path: Path) -> None:
    hf(tmp_path / "checkpoint-1", raw="[1, 2]")
    [entry] = discover_checkpoints(tmp_path)
    assert entry.dtype is None
    assert "expected a JSON object" in entry.warnings[0]


def test_hidden_and_plain_folders_are_ignored(run: Path) -> None:
    found = names(discover_checkpoints(run))
    assert not any(".cache" in n or "logs" in n or "export" in n for n in found)
    assert not any(n.endswith("checkpoint-3") for n in found)


def test_ties_broken_by_path(tmp_path: Path) -> None:
    gguf(tmp_path / "step_5" / "model.gguf")
    hf(tmp_path / "checkpoint-5")
    gguf(tmp_path / "b" / "step-5.gguf")
    gguf(tmp_path / "a" / "global_step5.gguf")
    assert [e.options["model_path"] for e in discover_checkpoints(tmp_path)] == [
        str(tmp_path.resolve() / p)
        for p in ("a/global_step5.gguf", "b/step-5.gguf", "checkpoint-5", "step_5/model.gguf")
    ]


def test_gguf_file_step_wins_over_parent(tmp_path: Path) -> None:
    gguf(tmp_path / "step_900" / "step_10.gguf")
    gguf(tmp_path / "step_50" / "weights.gguf")
    assert [e.name.split("/", 1)[1] for e in discover_checkpoints(tmp_path)] == [
        "step_900/step_10.gguf",
        "step_50/weights.gguf",
    ]


def test_root_itself_a_checkpoint(tmp_path: Path) -> None:
    root = hf(tmp_path / "checkpoint-12", {"torch_dtype": "bfloat16"})
    hf(root / "checkpoint-1")  # not descended into
    [entry] = discover_checkpoints(root)
    assert entry.name == "checkpoint-12"
    assert entry.options == {"model_path": str(root.resolve())}
    assert entry.dtype == "bfloat16"


def test_relative_root(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(run)
    entries = discover_checkpoints(Path("."))
    assert entries[0].name == "sft-run/runs/a/checkpoint-2"
    assert entries[0].options["model_path"] == str(run.resolve() / "runs/a/checkpoint-2")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinked_folders_are_not_followed(tmp_path: Path) -> None:
    hf(tmp_path / "checkpoint-10")
    try:
        (tmp_path / "latest").symlink_to(tmp_path / "checkpoint-10", target_is_directory=True)
    except OSError:
        pytest.skip("cannot create symlinks here")
    assert names(discover_checkpoints(tmp_path)) == [f"{tmp_path.name}/checkpoint-10"]


@pytest.mark.parametrize(
    ("name", "step"),
    [
        ("checkpoint-49", 49),
        ("checkpoint_49", 49),
        ("Checkpoint-49", 49),
        ("step_98", 98),
        ("step-98", 98),
        ("step98", 98),
        ("STEP98", 98),
        ("global_step1200", 1200),
        ("iter_0000500", 500),
        ("iteration-7", 7),
        ("epoch-3", 3),
        ("ckpt_8", 8),
        ("model-step_98-Q4_K_M", 98),
        ("epoch3_step500", 500),
        ("final", None),
        ("model", None),
        ("laststep5", None),
        ("step5b", None),
        ("checkpoint", None),
        ("llama-3-8b", None),
    ],
)
def test_step_of(name: str, step: int | None) -> None:
    assert step_of(name) == step


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CatalogError, match="not found") as exc:
        discover_checkpoints(missing)
    assert str(exc.value).startswith(f"{missing}: ")
    assert isinstance(exc.value, UserError)


def test_root_is_a_file(tmp_path: Path) -> None:
    file = gguf(tmp_path / "step_1.gguf")
    with pytest.raises(CatalogError, match="not a folder") as exc:
        discover_checkpoints(file)
    assert str(exc.value).startswith(f"{file}: ")


@pytest.mark.parametrize("contents", ["empty", "junk"])
def test_nothing_found(tmp_path: Path, contents: str) -> None:
    root = tmp_path / "out"
    root.mkdir()
    if contents == "junk":
        (root / "logs").mkdir()
        (root / "logs" / "train.log").write_text("loss 1.0\n")
        hf(root / ".hidden" / "checkpoint-1")
    with pytest.raises(CatalogError) as exc:
        discover_checkpoints(root)
    message = str(exc.value)
    assert message.startswith(f"{root}: no checkpoints found")
    for wanted in ("config.json", ".gguf", "checkpoint-N", "step_N"):
        assert wanted in message
    assert "\n" not in message


def test_yaml_round_trip(run: Path, tmp_path: Path) -> None:
    entries = discover_checkpoints(run)
    catalog = tmp_path / "sweep.yaml"
    catalog.write_text(discovered_catalog_yaml(run))
    loaded = load_yaml(catalog)
    assert [(e.name, e.backend, e.options, e.dtype) for e in loaded] == [
        (e.name, e.backend, e.options, e.dtype) for e in entries
    ]
    assert all(e.id == "" and e.supported for e in loaded)
