"""The fit check: memory need vs free memory, before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PlanWriter, run_cli

from fleetbench.catalog.spec import ModelSpec
from fleetbench.runner.fit import OVERHEAD, bytes_per_param, estimate_need, fit_reason

GIB = 2**30


def test_need_from_params_and_dtype() -> None:
    need = estimate_need(ModelSpec(name="m", params_b=7, dtype="bfloat16"), {})
    assert need is not None and need.bytes == pytest.approx(7e9 * 2 * OVERHEAD)
    assert bytes_per_param("float32") == 4 and bytes_per_param("MXFP4") == 0.5
    assert bytes_per_param(None) == 2 and bytes_per_param("unheard-of") == 2
    assert estimate_need(ModelSpec(name="unknown size"), {}) is None


def test_need_from_weights_on_disk_wins(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    (folder / "config.json").write_text("{}")  # not weights: not counted
    need = estimate_need(ModelSpec(name="m", params_b=70), {"model_path": str(folder)})
    assert need is not None and need.bytes == pytest.approx(1000 * OVERHEAD)


def test_fit_reason_compares_with_free_memory() -> None:
    model = ModelSpec(name="m", params_b=8, dtype="fp16")
    assert fit_reason(model, {}, "ram", free=64 * GIB) is None
    reason = fit_reason(model, {}, "gpu", free=8 * GIB)
    assert reason is not None
    assert reason.startswith("does not fit: needs ~17.9 GiB (8B params x fp16")
    assert "free GPU memory is 8.0 GiB" in reason
    assert fit_reason(model, {}, None, free=1) is None  # remote: nothing to check


def test_run_skips_a_model_that_cannot_fit(tmp_path: Path, write_plan: PlanWriter) -> None:
    # A sparse file: 4 TiB by size, nothing on disk; no machine here has that much RAM.
    huge = tmp_path / "huge.gguf"
    with open(huge, "wb") as f:
        f.truncate(4 * 2**40)
    plan = write_plan(
        extra_models=[{"name": "huge", "backend": "llamacpp", "options": {"model_path": str(huge)}}]
    )
    proc = run_cli("run", str(plan), "-o", str(tmp_path / "out"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "does not fit: needs ~4915.2 GiB" in " ".join(proc.stdout.split())
    unchecked = write_plan(
        extra_models=[
            {"name": "huge", "backend": "llamacpp", "options": {"model_path": str(huge)}}
        ],
        fit_check=False,
        name="nocheck.yaml",
    )
    proc = run_cli("run", str(unchecked), "-o", str(tmp_path / "o2"), "--dry-run", cwd=tmp_path)
    assert "does not fit" not in proc.stdout
