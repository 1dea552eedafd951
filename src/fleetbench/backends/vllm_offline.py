"""``vllm``: offline batched generation with vLLM's ``LLM`` class, on NVIDIA GPUs.

All requests of a run go to ``LLM.chat`` in one call (or in chunks of ``batch``):
vLLM schedules them itself (continuous batching), which is how it is meant to be
benchmarked offline. Per-request timings come from vLLM's own request metrics
(``RequestOutput.metrics``, engine clock): time to first token from arrival, and
inter-token latency over the decode phase. The engine only fills them when stats are
enabled, so the backend asks for them (``disable_log_stats=False``); where a vLLM
version still leaves them empty, every request of a chunk gets the chunk's wall time
as its latency and no TTFT, and the run log says so.

UNTESTED ON A GPU HERE: the machines this was written on have no GPU and cannot
install vLLM. The pure parts (settings -> ``SamplingParams`` keywords, request output
-> result, metrics -> timings) are unit-tested on objects shaped like vLLM's; the
calls into vLLM follow its public API (``LLM(...)``, ``LLM.chat(...)``,
``SamplingParams``, ``RequestOutput``) and need a GPU machine to be exercised.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleetbench.backends.base import (
    BackendContext,
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    GpuPlacement,
    LoadInfo,
)
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError, BackendUnavailable
from fleetbench.meters.nvml import select_by_uuid, visible_gpu_count

log = logging.getLogger("fleetbench.backends.vllm")

NEEDS_EXTRA = (
    "vllm backend needs the [vllm] extra and an NVIDIA GPU: pip install 'fleetbench[vllm]'"
)
NO_GPU = "no NVIDIA GPU visible"

# Catalogue spellings -> vLLM's dtype names; anything else (int4, awq, ...) is "auto":
# vLLM then reads the checkpoint's own dtype and quantisation config.
_DTYPES = {
    "auto": "auto", "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "f16": "float16", "half": "float16",
    "float32": "float32", "fp32": "float32", "f32": "float32", "float": "float32",
}  # fmt: skip


class VLLMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="HF id or local folder; default: the model id")
    model_path: Path | None = Field(
        None,
        description="local HF folder or .gguf file (e.g. a discovered checkpoint); "
        "excludes 'model'",
    )
    dtype: str | None = Field(None, description="default: the catalogue dtype, else auto")
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=16)
    enforce_eager: bool = False
    trust_remote_code: bool = False
    batch: int | None = Field(None, ge=1, description="requests per chat() call; default all")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="more LLM(...) args")

    @model_validator(mode="after")
    def _one_model(self) -> VLLMOptions:
        if self.model and self.model_path:
            raise ValueError("give 'model' or 'model_path', not both")
        return self

    def gpus(self) -> int:
        """GPUs one engine uses: tensor x pipeline parallel (engine_args may set them)."""
        tp = self.engine_args.get("tensor_parallel_size", self.tensor_parallel_size)
        pp = self.engine_args.get("pipeline_parallel_size", 1)
        return max(1, int(tp) * int(pp))


# -- pure mappings (unit-tested without vLLM) ------------------------------------------


def vllm_dtype(options: VLLMOptions, model: ModelSpec) -> str:
    """The ``dtype`` for ``LLM(...)``: explicit option, else the catalogue's, else auto."""
    if options.dtype:
        return options.dtype
    return _DTYPES.get((model.dtype or "auto").strip().lower(), "auto")


def sampling_kwargs(settings: GenerationSettings) -> dict[str, Any]:
    """``SamplingParams`` keywords for fleetbench's settings.

    ``top_k`` disabled is sent as -1: vLLM before 0.8 rejects 0, later versions take
    -1 ("quietly accepted as disabled"). ``repeat_penalty`` is vLLM's
    ``repetition_penalty`` (the same multiplicative penalty as llama.cpp's).
    """
    return {
        "n": 1,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "top_k": settings.top_k if settings.top_k > 0 else -1,
        "min_p": settings.min_p,
        "max_tokens": settings.max_tokens,
        "min_tokens": settings.min_tokens,
        "seed": settings.seed,
        "repetition_penalty": settings.repeat_penalty,
        "stop": list(settings.stop) or None,
    }


@dataclass(frozen=True)
class Timing:
    latency_s: float | None
    ttft_s: float | None
    itl_s: float | None
    source: str  # "engine metrics" or "batch wall time"


def _stamp(metrics: Any, *names: str) -> float | None:
    """The first of ``names`` that ``metrics`` carries as a positive number."""
    for name in names:
        value = getattr(metrics, name, None)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def timing_from_metrics(metrics: Any, completion_tokens: int, wall_s: float) -> Timing:
    """Per-request timings from a ``RequestOutput.metrics`` of any vLLM generation.

    * V1 (``RequestStateStats``): ``first_token_latency`` is TTFT measured by the
      frontend from arrival; ``first_token_ts``/``last_token_ts`` are engine-core
      monotonic stamps (a different clock from ``arrival_time``, so they are only
      subtracted from each other).
    * Early V1 and V0 (``RequestMetrics``): ``arrival_time``, ``first_token_time``,
      ``last_token_time`` and ``finished_time`` share one clock.

    Without any usable stamp (``metrics`` is None: stats disabled) the chunk's wall
    time ``wall_s`` is the latency, and TTFT and ITL are unknown.
    """
    ttft = decode = None
    if metrics is not None:
        ttft = _stamp(metrics, "first_token_latency")
        first = _stamp(metrics, "first_token_ts")
        last = _stamp(metrics, "last_token_ts")
        if first is None or last is None:  # one-clock generations
            arrival = _stamp(metrics, "arrival_time")
            first = _stamp(metrics, "first_token_time")
            last = _stamp(metrics, "finished_time", "last_token_time")
            if ttft is None and arrival is not None and first is not None:
                ttft = first - arrival
        if first is not None and last is not None and last >= first:
            decode = last - first
    if ttft is None:
        return Timing(latency_s=wall_s, ttft_s=None, itl_s=None, source="batch wall time")
    itl = decode / (completion_tokens - 1) if decode is not None and completion_tokens > 1 else None
    latency = ttft + decode if decode is not None else None
    return Timing(latency_s=latency, ttft_s=ttft, itl_s=itl, source="engine metrics")


def result_from_output(index: int, output: Any, wall_s: float) -> tuple[GenerationResult, str]:
    """A ``GenerationResult`` (and where its timings came from) for one ``RequestOutput``."""
    if not output.outputs:
        return GenerationResult(index=index, error="vLLM returned no completion"), "none"
    completion = output.outputs[0]
    n_out = len(completion.token_ids)
    timing = timing_from_metrics(getattr(output, "metrics", None), n_out, wall_s)
    prompt_ids = getattr(output, "prompt_token_ids", None)
    finish = completion.finish_reason
    error = "aborted by the engine" if finish == "abort" else None
    result = GenerationResult(
        index=index,
        text=completion.text,
        prompt_tokens=len(prompt_ids) if prompt_ids is not None else None,
        completion_tokens=n_out,
        latency_s=timing.latency_s,
        ttft_s=timing.ttft_s,
        itl_s=timing.itl_s,
        finish_reason=None if finish is None else str(finish),
        token_source="exact",
        error=error,
    )
    return result, timing.source


def gpu_problem(env: dict[str, str] | None = None) -> str | None:
    """None if an NVIDIA GPU is visible to this process: NVML if importable, else
    ``nvidia-smi -L``, else torch's CUDA check if torch is importable. Which GPUs
    ``CUDA_VISIBLE_DEVICES`` leaves visible is decided in ``meters.nvml`` only."""
    env = dict(os.environ) if env is None else env
    count, reason = visible_gpu_count(env)
    if count is None:  # no NVML here: ask the other tools, which give no reason
        reason = None
        count = _nvidia_smi_count(env)
    if count is None:
        count = _torch_count()
    if count:
        return None
    return f"{NO_GPU} ({reason})" if reason else NO_GPU


def _nvidia_smi_count(env: dict[str, str]) -> int | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5f3c...)"; MIG lines are indented.
    uuids = [
        line.rsplit("UUID:", 1)[-1].strip(" )")
        for line in out.stdout.splitlines()
        if line.startswith("GPU ")
    ]
    return len(select_by_uuid(uuids, env))


def _torch_count() -> int | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


# -- the backend (needs vLLM and a GPU) ------------------------------------------------


class VLLMBackend:
    """vLLM in-process. See the module docstring: the GPU path is untested here."""

    name: ClassVar[str] = "vllm"
    Options: ClassVar[type[BaseModel]] = VLLMOptions

    def __init__(self, options: VLLMOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self._llm: Any = None
        self._timing_sources: set[str] = set()

    @staticmethod
    def unavailable_reason(options: VLLMOptions, model: ModelSpec) -> str | None:
        if importlib.util.find_spec("vllm") is None:
            return NEEDS_EXTRA
        return gpu_problem()

    @staticmethod
    def placement(options: VLLMOptions) -> GpuPlacement:
        """vLLM takes the first ``tensor x pipeline parallel`` visible GPUs, and claims
        ``gpu_memory_utilization`` of each GPU's memory up front."""
        fraction = options.engine_args.get("gpu_memory_utilization", options.gpu_memory_utilization)
        return GpuPlacement(count=options.gpus(), memory_fraction=float(fraction))

    def _model_name(self) -> str:
        o = self.options
        name = str(o.model_path) if o.model_path else (o.model or self.context.model.id)
        if not name:
            raise BackendError(
                "vllm needs a model: set options.model, options.model_path or the entry's id"
            )
        return name

    def load(self) -> LoadInfo:
        try:
            from vllm import LLM
        except ImportError:
            raise BackendUnavailable(NEEDS_EXTRA) from None
        o = self.options
        args: dict[str, Any] = {
            "model": self._model_name(),
            "dtype": vllm_dtype(o, self.context.model),
            "tensor_parallel_size": o.tensor_parallel_size,
            "gpu_memory_utilization": o.gpu_memory_utilization,
            "enforce_eager": o.enforce_eager,
            "trust_remote_code": o.trust_remote_code,
            "disable_log_stats": False,  # else RequestOutput.metrics stays None
            **({"max_model_len": o.max_model_len} if o.max_model_len else {}),
            **o.engine_args,
        }
        start = time.perf_counter()
        self._llm = LLM(**args)
        load_time = time.perf_counter() - start
        import vllm

        return LoadInfo(
            load_time_s=load_time,
            model_path=args["model"],
            details={
                "vllm_version": getattr(vllm, "__version__", "unknown"),
                "engine_args": {k: v for k, v in args.items() if k != "model"},
                "batch": o.batch or "all",
            },
        )

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        if self._llm is None:
            raise BackendError("generate() called before load()")
        for chunk in _chunks(list(requests), self.options.batch):
            yield from self._run_chunk(chunk)
        if self._timing_sources:
            log.info("vllm timings from: %s", ", ".join(sorted(self._timing_sources)))

    def _run_chunk(self, chunk: list[GenerationRequest]) -> Iterator[GenerationResult]:
        """One ``chat()`` call; if it fails as a whole, each request alone, so that one
        bad request (e.g. longer than the context) fails only its own sample."""
        from vllm import SamplingParams

        ready: list[tuple[GenerationRequest, Any]] = []
        for request in chunk:
            try:
                ready.append((request, SamplingParams(**sampling_kwargs(request.settings))))
            except Exception as exc:  # vLLM's own validation, e.g. temperature > 2
                yield _failed(request, exc)
        if not ready:
            return
        try:
            yield from self._chat(ready)
        except Exception as exc:
            if len(ready) == 1:
                yield _failed(ready[0][0], exc)
                return
            log.warning("vllm batch of %d failed (%s); retrying one by one", len(ready), exc)
            for pair in ready:
                try:
                    yield from self._chat([pair])
                except Exception as one_exc:
                    yield _failed(pair[0], one_exc)

    def _chat(self, batch: list[tuple[GenerationRequest, Any]]) -> list[GenerationResult]:
        """All results of one ``chat()`` call, or an exception before any is handed out."""
        kwargs = batch[0][0].chat_template_kwargs  # a chunk shares them (see _chunks)
        start = time.perf_counter()
        outputs = self._llm.chat(
            [[m.model_dump() for m in r.messages] for r, _ in batch],
            [params for _, params in batch],
            use_tqdm=False,
            chat_template_kwargs=kwargs or None,
        )
        wall = time.perf_counter() - start
        if len(outputs) != len(batch):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(batch)} requests")
        results = []
        for (request, _), output in zip(batch, outputs, strict=True):
            result, source = result_from_output(request.index, output, wall)
            self._timing_sources.add(source)
            results.append(result)
        return results

    def count_tokens(self, text: str) -> int:
        if self._llm is None:
            raise BackendError("count_tokens() called before load()")
        if not text:
            return 0
        return len(self._llm.get_tokenizer().encode(text, add_special_tokens=False))

    def close(self) -> None:
        # vLLM frees GPU memory when its engine is garbage-collected; the worker
        # process exits right after close() in any case.
        self._llm = None


def _chunks(requests: list[GenerationRequest], size: int | None) -> list[list[GenerationRequest]]:
    """Requests grouped by chat-template kwargs (one ``chat()`` call takes one set),
    then cut into chunks of ``size`` (all at once when None), in the given order."""
    groups: dict[str, list[GenerationRequest]] = {}
    for request in requests:
        key = json.dumps(request.chat_template_kwargs, sort_keys=True, default=str)
        groups.setdefault(key, []).append(request)
    chunks: list[list[GenerationRequest]] = []
    for group in groups.values():
        step = size or len(group)
        chunks.extend(group[i : i + step] for i in range(0, len(group), step))
    return chunks


def _failed(request: GenerationRequest, exc: BaseException) -> GenerationResult:
    return GenerationResult(index=request.index, error=f"{type(exc).__name__}: {exc}")
