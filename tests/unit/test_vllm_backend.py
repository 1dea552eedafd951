"""The vllm backend without vLLM or a GPU (neither exists on these machines).

What is tested: the mappings (settings -> SamplingParams keywords, RequestOutput ->
result, engine metrics of each vLLM generation -> timings), GPU detection, chunking,
the fault isolation around ``LLM.chat``, and that a plan with a vllm model is skipped
with the reason. The objects below are shaped like vLLM's (``RequestOutput``,
``CompletionOutput``, ``RequestStateStats``/``RequestMetrics``); the real engine path
needs a GPU machine and is NOT exercised here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from backendctx import make_context
from conftest import PlanWriter, run_cli
from hostmeters import host_meters

from fleetbench.backends import (
    GenerationRequest,
    GenerationSettings,
    GpuPlacement,
    Message,
    get_backend_class,
)
from fleetbench.backends import vllm_offline as vo
from fleetbench.backends.vllm_offline import (
    NEEDS_EXTRA,
    VLLMBackend,
    VLLMOptions,
    gpu_problem,
    result_from_output,
    sampling_kwargs,
    timing_from_metrics,
    vllm_dtype,
)
from fleetbench.catalog.spec import ModelSpec


def output(
    text: str = "Hi there",
    token_ids: tuple[int, ...] = (5, 6, 7, 8),
    prompt_ids: tuple[int, ...] = (1, 2, 3),
    finish: str | None = "stop",
    metrics: Any = None,
) -> SimpleNamespace:
    completion = SimpleNamespace(
        index=0, text=text, token_ids=list(token_ids), finish_reason=finish, stop_reason=None
    )
    return SimpleNamespace(
        request_id="0",
        prompt_token_ids=list(prompt_ids),
        outputs=[completion],
        finished=True,
        metrics=metrics,
    )


def test_registered_under_vllm() -> None:
    assert get_backend_class("vllm") is VLLMBackend
    assert VLLMBackend.placement(VLLMOptions()) == GpuPlacement(count=1, memory_fraction=0.9)


def test_sampling_kwargs_are_explicit_and_top_k_disabled_is_minus_one() -> None:
    s = GenerationSettings(
        temperature=0.7,
        top_p=0.9,
        min_p=0.05,
        max_tokens=64,
        min_tokens=4,
        seed=3,
        repeat_penalty=1.1,
        stop=["\n\n"],
    )
    kw = sampling_kwargs(s)
    assert kw == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": -1,
        "min_p": 0.05,
        "max_tokens": 64,
        "min_tokens": 4,
        "seed": 3,
        "repetition_penalty": 1.1,
        "stop": ["\n\n"],
    }
    assert sampling_kwargs(GenerationSettings(top_k=40))["top_k"] == 40
    assert sampling_kwargs(GenerationSettings())["stop"] is None


def test_dtype_from_option_catalogue_or_auto() -> None:
    assert vllm_dtype(VLLMOptions(dtype="half"), ModelSpec(id="a/b", dtype="bf16")) == "half"
    assert vllm_dtype(VLLMOptions(), ModelSpec(id="a/b", dtype="BF16")) == "bfloat16"
    assert vllm_dtype(VLLMOptions(), ModelSpec(id="a/b", dtype="int4")) == "auto"
    assert vllm_dtype(VLLMOptions(), ModelSpec(id="a/b")) == "auto"


def test_v1_metrics_ttft_from_frontend_decode_from_engine_clock() -> None:
    # V1 RequestStateStats: arrival is wall clock, *_ts are engine-core monotonic.
    stats = SimpleNamespace(
        arrival_time=1.7e9,
        queued_ts=100.0,
        scheduled_ts=100.1,
        first_token_ts=100.3,
        last_token_ts=100.9,
        first_token_latency=0.35,
        num_generation_tokens=4,
    )
    t = timing_from_metrics(stats, completion_tokens=4, wall_s=9.0)
    assert t.source == "engine metrics"
    assert t.ttft_s == pytest.approx(0.35)
    assert t.itl_s == pytest.approx(0.6 / 3)
    assert t.latency_s == pytest.approx(0.95)


def test_v0_metrics_share_one_clock() -> None:
    m = SimpleNamespace(
        arrival_time=50.0,
        first_scheduled_time=50.1,
        first_token_time=50.5,
        last_token_time=51.4,
        finished_time=51.5,
        time_in_queue=0.1,
    )
    t = timing_from_metrics(m, completion_tokens=10, wall_s=9.0)
    assert (t.ttft_s, t.source) == (pytest.approx(0.5), "engine metrics")
    assert t.itl_s == pytest.approx(1.0 / 9)
    assert t.latency_s == pytest.approx(1.5)


def test_no_metrics_falls_back_to_batch_wall_time() -> None:
    for metrics in (None, SimpleNamespace(first_token_latency=0.0, first_token_ts=0.0)):
        t = timing_from_metrics(metrics, completion_tokens=10, wall_s=2.5)
        assert (t.latency_s, t.ttft_s, t.itl_s, t.source) == (2.5, None, None, "batch wall time")


def test_one_token_has_ttft_but_no_itl() -> None:
    stats = SimpleNamespace(first_token_latency=0.2, first_token_ts=5.0, last_token_ts=5.0)
    t = timing_from_metrics(stats, completion_tokens=1, wall_s=1.0)
    assert (t.ttft_s, t.itl_s, t.latency_s) == (0.2, None, pytest.approx(0.2))


def test_result_from_output_counts_tokens_exactly() -> None:
    stats = SimpleNamespace(first_token_latency=0.1, first_token_ts=1.0, last_token_ts=1.3)
    result, source = result_from_output(7, output(metrics=stats), wall_s=3.0)
    assert source == "engine metrics"
    assert (result.index, result.text, result.prompt_tokens, result.completion_tokens) == (
        7,
        "Hi there",
        3,
        4,
    )
    assert (result.token_source, result.finish_reason, result.ok) == ("exact", "stop", True)
    assert result.itl_s == pytest.approx(0.1)

    length, _ = result_from_output(1, output(finish="length"), wall_s=3.0)
    assert (length.finish_reason, length.latency_s, length.ttft_s) == ("length", 3.0, None)
    aborted, _ = result_from_output(2, output(finish="abort"), wall_s=3.0)
    assert aborted.error == "aborted by the engine"
    empty, _ = result_from_output(3, SimpleNamespace(outputs=[], prompt_token_ids=[]), 1.0)
    assert empty.error and not empty.ok


def test_unavailable_without_vllm_or_a_gpu() -> None:
    reason = VLLMBackend.unavailable_reason(VLLMOptions(), ModelSpec(id="a/b"))
    if importlib.util.find_spec("vllm") is None:
        assert reason == NEEDS_EXTRA
    else:  # a GPU machine with vLLM installed
        assert reason == gpu_problem()


def test_gpu_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "CUDA_VISIBLE_DEVICES=''" in (gpu_problem({"CUDA_VISIBLE_DEVICES": ""}) or "")
    assert "CUDA_VISIBLE_DEVICES='-1'" in (gpu_problem({"CUDA_VISIBLE_DEVICES": "-1"}) or "")
    monkeypatch.setattr(vo, "visible_gpu_count", lambda env: (None, "not installed"))
    monkeypatch.setattr(vo, "_nvidia_smi_count", lambda env: 2)
    assert gpu_problem({}) is None
    monkeypatch.setattr(vo, "_nvidia_smi_count", lambda env: None)
    monkeypatch.setattr(vo, "_torch_count", lambda: 0)
    assert gpu_problem({}) == "no NVIDIA GPU visible"


def test_gpu_detection_reads_cuda_visible_devices_through_nvml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fakenvml import FakeNvml, gpu

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([gpu(0, 70), gpu(1, 70)]))
    assert gpu_problem({}) is None
    assert gpu_problem({"CUDA_VISIBLE_DEVICES": gpu(1, 0)["uuid"]}) is None
    assert gpu_problem({"CUDA_VISIBLE_DEVICES": "5"}) == (
        "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES='5' leaves no GPU visible)"
    )
    assert gpu_problem({"CUDA_VISIBLE_DEVICES": "MIG-1234"}) is None  # vLLM can use MIG
    assert gpu_problem({"CUDA_VISIBLE_DEVICES": "-1"}) == (
        "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES='-1' leaves no GPU visible)"
    )


def test_nvidia_smi_fallback_applies_the_same_visibility(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa-1111)\n"
        "  MIG 3g.40gb     Device  0: (UUID: MIG-cccc)\n"
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb-2222)\n"
    )
    monkeypatch.setattr(vo.shutil, "which", lambda exe: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(
        vo.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, listing, "")
    )
    assert vo._nvidia_smi_count({}) == 2
    assert vo._nvidia_smi_count({"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}) == 1
    assert vo._nvidia_smi_count({"CUDA_VISIBLE_DEVICES": "1,0"}) == 2
    assert vo._nvidia_smi_count({"CUDA_VISIBLE_DEVICES": "2"}) == 0


def test_model_path_runs_a_local_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint-100"
    backend = VLLMBackend(VLLMOptions(model_path=ckpt), make_context(tmp_path / "run", "a/b"))
    assert backend._model_name() == str(ckpt)
    assert VLLMBackend(VLLMOptions(), make_context(tmp_path / "r2", "a/b"))._model_name() == "a/b"
    with pytest.raises(ValueError, match="not both"):
        VLLMOptions(model="a/b", model_path=ckpt)


def test_gpu_detection_agrees_with_the_meters() -> None:
    # Whichever probe answers, it must agree with what the energy meters see.
    if host_meters().gpu:
        assert gpu_problem() is None
    elif not Path("/proc/driver/nvidia").exists():  # no driver: no probe can find a GPU
        assert gpu_problem({}) == "no NVIDIA GPU visible"
    else:
        pytest.skip("an NVIDIA driver without NVML: only nvidia-smi or torch can tell")


def request(index: int, content: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(
        index=index,
        messages=[Message(role="user", content=content)],
        settings=GenerationSettings(max_tokens=8),
        **kwargs,
    )


def test_chunks_group_by_template_kwargs_then_size() -> None:
    reqs = [request(i, "x", chat_template_kwargs={"t": i % 2}) for i in range(5)]
    chunks = vo._chunks(reqs, 2)
    assert [[r.index for r in c] for c in chunks] == [[0, 2], [4], [1, 3]]
    assert [[r.index for r in c] for c in vo._chunks(reqs[:3], None)] == [[0, 2], [1]]


class _FaultyLLM:
    """Injects a fault: chat() fails whenever a prompt says BOOM (as vLLM does for a
    prompt longer than the context); everything else gets a canned output."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def chat(self, conversations: list[Any], params: list[Any], **kw: Any) -> list[Any]:
        assert kw["use_tqdm"] is False and len(params) == len(conversations)
        self.calls.append(len(conversations))
        if any("BOOM" in c[0]["content"] for c in conversations):
            raise ValueError("prompt is longer than the maximum model length")
        return [output(text=c[0]["content"].upper()) for c in conversations]


def test_a_failing_request_fails_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=dict))
    backend = VLLMBackend(VLLMOptions(), make_context(tmp_path, model_id="a/b"))
    backend._llm = _FaultyLLM()
    results = {
        r.index: r for r in backend.generate([request(0, "a"), request(1, "BOOM"), request(2, "c")])
    }
    assert sorted(results) == [0, 1, 2]
    assert (results[0].text, results[2].text) == ("A", "C")
    assert results[1].error == "ValueError: prompt is longer than the maximum model length"
    assert backend._llm.calls == [3, 1, 1, 1]  # the batch, then one by one


def test_dry_run_skips_a_vllm_model_with_the_reason(tmp_path: Path, write_plan: PlanWriter) -> None:
    entry = {
        "name": "qwen-vllm",
        "id": "Qwen/Qwen3-0.6B",
        "backend": "vllm",
        "options": {"dtype": "bfloat16"},
    }
    plan = write_plan(extra_models=[entry])
    proc = run_cli("run", str(plan), "-o", str(tmp_path / "out"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "qwen-vllm" in ln)
    if importlib.util.find_spec("vllm") is None:
        assert "skip" in line and "vllm backend needs the" in line, proc.stdout
        assert "NVIDIA GPU: pip install 'fleetbench[vllm]'" in line
    elif (problem := gpu_problem()) is not None:
        assert "skip" in line and problem in line
    else:  # vLLM and a GPU: the 0.6B model is planned to run
        assert " run " in line, proc.stdout
    assert not (tmp_path / "out").exists()


def test_importing_the_module_does_not_import_vllm() -> None:
    code = "import fleetbench.backends.vllm_offline, sys; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
