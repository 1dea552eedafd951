"""The fit check: memory need vs free memory, before anything loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PlanWriter, cli_env, db_rows, run_cli
from fakenvml import FakeNvml, gpu, stub_env

from fleetbench.backends.base import GpuPlacement
from fleetbench.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from fleetbench.backends.transformers_local import TransformersBackend, TransformersOptions
from fleetbench.backends.vllm_offline import VLLMBackend, VLLMOptions
from fleetbench.catalog.spec import ModelSpec
from fleetbench.meters.nvml import GpuMemory, gpu_memory
from fleetbench.runner.fit import OVERHEAD, bytes_per_param, check_fit, estimate_need
from fleetbench.runner.plan import load_plan, make_run_id

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


def test_fit_compares_with_free_memory() -> None:
    model = ModelSpec(name="m", params_b=8, dtype="fp16")
    assert check_fit(model, {}, "ram", ram=64 * GIB).reason is None
    reason = check_fit(model, {}, "ram", ram=8 * GIB).reason
    assert reason is not None
    assert reason.startswith("does not fit: needs ~17.9 GiB (8B params x fp16")
    assert reason.endswith("available RAM is 8.0 GiB")
    gpu_reason = check_fit(model, {}, "gpu", gpus=nvml_gpus(8)).reason
    assert gpu_reason is not None and "free GPU memory is 8.0 GiB on GPU 0" in gpu_reason
    assert check_fit(model, {}, None, ram=1).reason is None  # remote: nothing to check
    assert check_fit(model, {}, "gpu", gpus=[]).reason is None  # no GPU seen: not checked


# -- per GPU (the GPUs are injected: a stand-in NVML module) --------------------------


def nvml_gpus(*free_gib: float, env: dict[str, str] | None = None) -> list[GpuMemory]:
    gpus, reason = gpu_memory(FakeNvml([gpu(i, f) for i, f in enumerate(free_gib)]), env or {})
    assert gpus or reason
    return gpus


SEVEN_B = ModelSpec(name="m", params_b=7, dtype="bf16")  # ~15.6 GiB with the allowance


def test_a_model_on_one_gpu_is_checked_against_that_gpu_not_the_sum() -> None:
    # 3 x 10 GiB free is 30 GiB in all, but no single GPU holds 15.6 GiB.
    fit = check_fit(SEVEN_B, {}, GpuPlacement(), gpus=nvml_gpus(10, 10, 10))
    assert fit.reason is not None and "free GPU memory is 10.0 GiB on GPU 0" in fit.reason
    # llama.cpp spreads its layers over every GPU: there the sum is what counts.
    spread = LlamaCppBackend.placement(LlamaCppOptions(n_gpu_layers=-1))
    assert check_fit(SEVEN_B, {}, spread, gpus=nvml_gpus(10, 10, 10)).reason is None
    small = check_fit(SEVEN_B, {}, spread, gpus=nvml_gpus(5, 5, 5)).reason
    assert small is not None and "free GPU memory is 15.0 GiB over GPUs 0, 1, 2" in small


def test_without_a_fixed_gpu_the_one_with_most_free_memory_is_chosen_and_named() -> None:
    fit = check_fit(SEVEN_B, {}, GpuPlacement(), gpus=nvml_gpus(10, 70, 40))
    assert fit.reason is None
    assert [g.index for g in fit.gpus] == [1]  # the run is pinned to it
    assert fit.note == "on GPU 1 (most free memory: 70.0 GiB free)"
    tight = check_fit(SEVEN_B, {}, GpuPlacement(), gpus=nvml_gpus(10, 12, 4))
    assert tight.reason is not None
    assert tight.reason.endswith("free GPU memory is 12.0 GiB on GPU 1; "
                                 "on GPU 1 (most free memory: 12.0 GiB free)")  # fmt: skip


def test_tensor_parallel_takes_that_many_gpus_each_holding_its_share() -> None:
    options = VLLMOptions(tensor_parallel_size=2, gpu_memory_utilization=0.5)
    placement = VLLMBackend.placement(options)
    assert placement == GpuPlacement(count=2, memory_fraction=0.5)
    seventy = ModelSpec(name="big", params_b=70, dtype="bf16")  # ~156 GiB: 78 GiB per GPU
    fit = check_fit(seventy, {}, placement, gpus=nvml_gpus(80, 80, 80, 80))
    assert fit.reason is not None
    assert "= 78.2 GiB per GPU, more than the 40.0 GiB claimed on GPU 0" in fit.reason
    roomy = VLLMBackend.placement(VLLMOptions(tensor_parallel_size=4, gpu_memory_utilization=0.9))
    fit = check_fit(seventy, {}, roomy, gpus=nvml_gpus(80, 80, 80, 80))
    assert fit.reason is None and len(fit.gpus) == 4
    # vLLM claims gpu_memory_utilization of the whole GPU and will not start with less free.
    busy = check_fit(SEVEN_B, {}, VLLMBackend.placement(VLLMOptions()), gpus=nvml_gpus(60))
    assert busy.reason is not None
    assert "claims 0.9 x 80.0 GiB = 72.0 GiB of GPU 0 (gpu_memory_utilization), 60.0 GiB" in (
        busy.reason
    )
    too_few = check_fit(SEVEN_B, {}, GpuPlacement(count=4), gpus=nvml_gpus(80, 80))
    assert too_few.reason == "does not fit: needs 4 GPUs, 2 visible (GPUs 0, 1)"
    pp = VLLMOptions(tensor_parallel_size=2, engine_args={"pipeline_parallel_size": 2})
    assert VLLMBackend.placement(pp).count == 4


def test_a_fixed_device_is_checked_and_not_re_pinned() -> None:
    placement = TransformersBackend.placement(TransformersOptions(device="cuda:1"))
    assert placement == GpuPlacement(devices=(1,))
    fit = check_fit(SEVEN_B, {}, placement, gpus=nvml_gpus(70, 10))
    assert fit.reason is not None and "on GPU 1 (given: 10.0 GiB free)" in fit.reason
    ok = check_fit(SEVEN_B, {}, placement, gpus=nvml_gpus(10, 70))
    assert ok.reason is None and ok.gpus == ()  # the options already say where
    assert TransformersBackend.placement(TransformersOptions(device="cpu")) == "ram"


def test_visible_devices_decide_which_gpus_are_checked() -> None:
    # CUDA_VISIBLE_DEVICES=2,0: CUDA index 0 is physical GPU 2 (by index or UUID).
    by_index = nvml_gpus(70, 10, 20, env={"CUDA_VISIBLE_DEVICES": "2,0"})
    assert [(g.index, g.free // GIB) for g in by_index] == [(0, 20), (1, 70)]
    uuid = gpu(2, 0)["uuid"][:12]
    assert [g.free // GIB for g in nvml_gpus(70, 10, 20, env={"CUDA_VISIBLE_DEVICES": uuid})] == [
        20
    ]
    fit = check_fit(SEVEN_B, {}, GpuPlacement(), gpus=by_index)
    assert fit.note == "on GPU 1 (most free memory: 70.0 GiB free)"
    assert fit.gpus[0].uuid == gpu(0, 0)["uuid"]  # pinned by UUID: physical GPU 0
    for hidden in ("", "-1", "none"):
        gpus, reason = gpu_memory(FakeNvml([gpu(0, 70)]), {"CUDA_VISIBLE_DEVICES": hidden})
        assert gpus == [] and reason == f"CUDA_VISIBLE_DEVICES={hidden!r} leaves no GPU visible"
    mig, why = gpu_memory(FakeNvml([gpu(0, 70)]), {"CUDA_VISIBLE_DEVICES": "MIG-1234"})
    assert mig == [] and why is not None and why.startswith("MIG instances")
    # No GPU measured: nothing to compare with, so the check does not block the run.
    assert check_fit(SEVEN_B, {}, GpuPlacement(), gpus=[]).reason is None


def test_the_plan_reads_the_gpus_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeNvml([gpu(0, 10), gpu(1, 70)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    plan = tmp_path / "plan.yaml"
    models = [
        {"name": f"m{i}", "backend": "fakebackends:GpuEchoBackend", "params_b": 7 * i}
        for i in (1, 2, 5)
    ]
    plan.write_text(yaml.safe_dump({"models": models, "tasks": [{"name": "textgen"}]}))
    runs = {r.model.name: r for r in load_plan(plan).runs}
    assert fake.inits == 1
    assert runs["m1"].gpus == [gpu(1, 0)["uuid"]]
    assert runs["m1"].skip_reason is None and runs["m2"].skip_reason is None
    assert runs["m5"].skip_reason is not None and runs["m5"].gpus == []
    # The GPU a run was pinned to is not part of what the run is.
    assert make_run_id(runs["m1"].model_copy(update={"gpus": []})) == runs["m1"].run_id


def test_a_run_is_pinned_to_the_chosen_gpu_and_metered_there(tmp_path: Path) -> None:
    # Three imaginary GPUs (NVML stand-in on PYTHONPATH for the batch and its workers).
    gpus = [gpu(0, 10), gpu(1, 70, name="H200"), gpu(2, 40)]
    plan = tmp_path / "plan.yaml"
    model = {"name": "echo", "backend": "fakebackends:GpuEchoBackend", "params_b": 7}
    plan.write_text(yaml.safe_dump({"models": [model], "tasks": [{"name": "textgen"}], "limit": 2}))
    env = stub_env(gpus, cli_env())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleetbench", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    dry = cli("run", str(plan), "--dry-run", "-o", str(tmp_path / "out"))
    assert dry.returncode == 0, dry.stderr
    assert "on GPU 1 (most free memory: 70.0 GiB free)" in " ".join(dry.stdout.split())
    proc = cli("run", str(plan), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    samples = db_rows(tmp_path / "out", "SELECT output_text, energy_method FROM samples")
    assert [s["output_text"] for s in samples] == [gpus[1]["uuid"]] * 2
    (attempt,) = db_rows(tmp_path / "out", "SELECT energy_json FROM attempts")
    devices = json.loads(attempt["energy_json"])["devices"]
    gpu_devices = [d for d in devices if d["kind"] == "gpu"]
    assert [(d["uuid"], d["name"]) for d in gpu_devices] == [(gpus[1]["uuid"], "H200")]


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
