"""``llamacpp``: a GGUF model in-process through llama-cpp-python.

Prompts are rendered with the model's own chat template, tokenised once, and decoded
token by token through ``Llama.generate`` so that token counts are exact and the time
to first token is the time until the first sampled token, prompt processing included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import (
    BackendContext,
    GenerationRequest,
    GenerationResult,
    GpuPlacement,
    LoadInfo,
    Placement,
)
from fleetbench.backends.chat_template import CHATML, ChatTemplate, cut_at_stop
from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError, BackendUnavailable
from fleetbench.meters.host import CpuContention, available_cores

log = logging.getLogger(__name__)


class LlamaCppOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_path: Path | None = Field(None, description="GGUF file; default: embedded SmolLM2")
    n_ctx: int = Field(2048, ge=64)
    n_threads: int | None = Field(
        None, ge=1, description="default: the physical cores available to the run"
    )
    n_batch: int = Field(512, ge=1)
    n_gpu_layers: int = 0


class LlamaCppBackend:
    name: ClassVar[str] = "llamacpp"
    Options: ClassVar[type[BaseModel]] = LlamaCppOptions

    def __init__(self, options: LlamaCppOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self._llm: Any = None
        self._template: ChatTemplate | None = None
        self._eog_ids: list[int] = []
        self._contention: CpuContention | None = None

    @staticmethod
    def unavailable_reason(options: LlamaCppOptions, model: ModelSpec) -> str | None:
        """Never run the embedded SmolLM2 in place of another model that has no GGUF."""
        if options.model_path is None and model.id and model.id != EMBEDDED_MODEL_ID:
            return (
                f"no GGUF for {model.id}: set options.model_path "
                f"(the embedded model is {EMBEDDED_MODEL_ID})"
            )
        return None

    @staticmethod
    def placement(options: LlamaCppOptions) -> Placement:
        """Where the weights live, for the fit check before loading: with GPU layers,
        llama.cpp splits them over every visible GPU (its default layer split)."""
        return GpuPlacement(spread=True) if options.n_gpu_layers != 0 else "ram"

    def load(self) -> LoadInfo:
        try:
            import llama_cpp
            from llama_cpp import Llama
        except ImportError:
            raise BackendUnavailable(
                "llama-cpp-python is not installed; run: pip install llama-cpp-python==0.3.36"
            ) from None
        path = self.options.model_path or embedded_model_path()
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        start = time.perf_counter()
        self._llm = Llama(
            model_path=str(path),
            n_ctx=self.options.n_ctx,
            n_threads=self.options.n_threads or available_cores(),
            n_batch=self.options.n_batch,
            n_gpu_layers=self.options.n_gpu_layers,
            verbose=False,
        )
        load_time = time.perf_counter() - start
        self._contention = CpuContention()
        self._template = self._chat_template()
        vocab = self._llm._model.vocab
        self._eog_ids = [
            t for t in range(self._llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
        ]
        return LoadInfo(
            load_time_s=load_time,
            model_path=str(path),
            model_size_bytes=path.stat().st_size,
            details={"n_ctx": self._llm.n_ctx(), "n_threads": self._llm.n_threads},
        )

    def _chat_template(self) -> ChatTemplate:
        llm = self._llm
        meta: dict[str, str] = llm.metadata
        template = meta.get("tokenizer.chat_template") or CHATML
        return ChatTemplate(
            template,
            bos_token=_token_text(llm, llm.token_bos()),
            eos_token=_token_text(llm, llm.token_eos()),
        )

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for request in requests:
            try:
                yield self._generate_one(request)
            except (ValueError, RuntimeError) as exc:  # e.g. prompt longer than the context
                yield GenerationResult(index=request.index, error=f"{type(exc).__name__}: {exc}")

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        import llama_cpp

        llm, template = self._llm, self._template
        if llm is None or template is None:
            raise BackendError("generate() called before load()")
        s = request.settings
        start = time.perf_counter()
        prompt = template.render(request.messages, **request.chat_template_kwargs)
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) + s.max_tokens > llm.n_ctx():
            raise ValueError(
                f"prompt ({len(tokens)} tokens) + max_tokens ({s.max_tokens}) "
                f"exceeds n_ctx ({llm.n_ctx()})"
            )
        llm.set_seed(s.seed)
        out: list[int] = []
        ttft: float | None = None
        finish = "length"
        stream = llm.generate(
            tokens,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            temp=s.temperature,
            repeat_penalty=s.repeat_penalty,
            reset=True,
            logits_processor=self._min_tokens_processor(out, s.min_tokens),
        )
        vocab = llm._model.vocab
        for token in stream:
            if ttft is None:
                ttft = time.perf_counter() - start
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            out.append(token)
            if s.stop and _hit_stop(llm, out, s.stop):
                finish = "stop"
                break
            if len(out) >= s.max_tokens:
                break
        latency = time.perf_counter() - start
        text = llm.detokenize(out).decode("utf-8", errors="replace")
        if s.stop:
            text = cut_at_stop(text, s.stop)
        return GenerationResult(
            index=request.index,
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=len(out),
            latency_s=latency,
            ttft_s=ttft,
            itl_s=(latency - ttft) / (len(out) - 1) if ttft is not None and len(out) > 1 else None,
            token_source="exact",
            finish_reason=finish,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as this model tokenizes it (for reasoning-token counts)."""
        if self._llm is None:
            raise BackendError("count_tokens() called before load()")
        if not text:
            return 0
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _min_tokens_processor(self, out: list[int], min_tokens: int) -> Any:
        """Forbid end-of-generation tokens until ``min_tokens`` have been produced."""
        if min_tokens <= 0 or not self._eog_ids:
            return None
        eog = self._eog_ids

        def suppress(_input_ids: Any, scores: Any) -> Any:
            if len(out) < min_tokens:
                scores[eog] = -float("inf")
            return scores

        from llama_cpp import LogitsProcessorList

        return LogitsProcessorList([suppress])

    def close(self) -> None:
        if self._llm is not None:
            if self._contention is not None:
                warning = self._contention.busy_warning(self._llm.n_threads)
                if warning:
                    log.warning("%s", warning)
            self._llm.close()
            self._llm = None


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    return str(llm.detokenize([token], special=True).decode("utf-8", errors="ignore"))


def _hit_stop(llm: Any, out: list[int], stops: list[str]) -> bool:
    tail = llm.detokenize(out[-16:]).decode("utf-8", errors="ignore")
    return any(stop in tail for stop in stops)
