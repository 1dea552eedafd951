"""``transformers``: a local HF model folder or a GGUF file in-process through PyTorch.

Only local weights are loaded (``local_files_only``, ``HF_HUB_OFFLINE=1``): a GGUF is
dequantised by transformers (``gguf_file=``). Each request runs ``model.generate`` with a
fully explicit ``GenerationConfig`` (a checkpoint's own sampling defaults would otherwise
fill whatever is left unset) and a streamer that timestamps every new token, so TTFT and
inter-token latency are measured on the decoding loop itself and token counts are exact.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import resource
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import (
    BackendContext,
    GenerationRequest,
    GenerationResult,
    GpuPlacement,
    LoadInfo,
    Message,
    Placement,
)
from fleetbench.backends.chat_template import CHATML, cut_at_stop
from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError, BackendUnavailable
from fleetbench.meters.disk import disk_bytes

log = logging.getLogger(__name__)

HF_EXTRA = "transformers backend needs the [hf] extra: pip install 'fleetbench[hf]'"
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")
_HF_FILES = ("config.json", "tokenizer_config.json", "tokenizer.json")


class TransformersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_path: Path | None = Field(None, description="HF folder or .gguf; default: SmolLM2")
    gguf_file: str | None = Field(None, description="which GGUF, in a folder holding several")
    tokenizer_path: Path | None = Field(None, description="default: the model's own")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    threads: int | None = Field(None, ge=1, description="torch threads; default: all cores")
    trust_remote_code: bool = False


class TransformersBackend:
    name: ClassVar[str] = "transformers"
    Options: ClassVar[type[BaseModel]] = TransformersOptions

    def __init__(self, options: TransformersOptions, context: BackendContext) -> None:
        self.options = options
        self.context = context
        self._model: Any = None
        self._tok: Any = None
        self._device = "cpu"
        self._torch: Any = None
        self._hf: Any = None
        self._eos: list[int] = []
        self.peak_memory: dict[str, float] = {}

    @staticmethod
    def unavailable_reason(options: TransformersOptions, model: ModelSpec) -> str | None:
        if options.model_path is None and model.id and model.id != EMBEDDED_MODEL_ID:
            return (
                f"no local weights for {model.id}: set options.model_path "
                f"(the embedded model is {EMBEDDED_MODEL_ID})"
            )
        if not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
            return HF_EXTRA
        if options.device.startswith("cuda") and (problem := _cuda_problem(options.device)):
            return problem
        try:
            folder, gguf = _resolve(options.model_path or embedded_model_path(), options.gguf_file)
        except (BackendError, BackendUnavailable):
            return None  # a wrong path is a configuration error: load() fails the run with it
        if gguf and not importlib.util.find_spec("gguf"):
            return f"loading a GGUF needs the gguf package; {HF_EXTRA}"
        if not gguf and not any(p.suffix in _WEIGHTS for p in folder.iterdir()):
            # e.g. a checkpoint of a training sweep whose weights are not on this machine
            return f"no model weights ({', '.join(_WEIGHTS)}) in {folder}"
        return None

    @staticmethod
    def placement(options: TransformersOptions) -> Placement:
        """Where the weights live, for the fit check (``auto``: GPU when a driver is
        loaded): ``cuda:N`` is that GPU; ``cuda`` and ``auto`` mean CUDA's first visible
        GPU, so the runner may pick the one with the most free memory."""
        if options.device == "cpu" or (
            options.device == "auto" and not Path("/dev/nvidiactl").exists()
        ):
            return "ram"
        index = options.device.partition(":")[2]
        return GpuPlacement(devices=(int(index),)) if index else GpuPlacement()

    def load(self) -> LoadInfo:
        os.environ["HF_HUB_OFFLINE"] = "1"  # never reach a hub, whatever the path looks like
        # The GGUF converter's tqdm bars would fill the run's log (read when tqdm is imported).
        os.environ.setdefault("TQDM_DISABLE", "1")
        self._torch, self._hf = torch, hf = _import("torch"), _import("transformers")
        opts = self.options
        path = opts.model_path or embedded_model_path()
        folder, gguf = _resolve(path, opts.gguf_file)
        tok_folder, tok_gguf = (folder, gguf)
        if opts.tokenizer_path is not None:
            tok_folder, tok_gguf = _resolve(opts.tokenizer_path, None)
        self._device = opts.device
        if opts.device == "auto":
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        elif opts.device.startswith("cuda") and (problem := _cuda_problem(opts.device)):
            raise BackendUnavailable(problem)
        if self._device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self._device)
        torch.set_num_threads(opts.threads or os.cpu_count() or 1)
        hf.utils.logging.disable_progress_bar()
        common = {"local_files_only": True, "trust_remote_code": opts.trust_remote_code}
        start = time.perf_counter()
        try:
            self._tok = hf.AutoTokenizer.from_pretrained(
                str(tok_folder), gguf_file=tok_gguf, **common
            )
            self._model = hf.AutoModelForCausalLM.from_pretrained(
                str(folder),
                gguf_file=gguf,
                dtype=opts.dtype if opts.dtype == "auto" else getattr(torch, opts.dtype),
                device_map=self._device,
                **common,
            ).eval()
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load {path}: {exc}") from exc
        load_time = time.perf_counter() - start
        eos = self._model.generation_config.eos_token_id
        eos = self._tok.eos_token_id if eos is None else eos
        self._eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        self._record_peak()
        weights = folder / gguf if gguf else folder
        return LoadInfo(
            load_time_s=load_time,
            model_path=str(weights),
            model_size_bytes=disk_bytes(weights),  # None if unknown, never 0
            details={
                "dtype": str(self._model.dtype).removeprefix("torch."),
                "device": self._device,
                "parameters": sum(p.numel() for p in self._model.parameters()),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "transformers": hf.__version__,
                "gguf_file": gguf,
                **self.peak_memory,
            },
        )

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        for request in requests:
            try:
                yield self._generate_one(request)
            # One bad request must not end the run; torch raises many exception types.
            except Exception as exc:
                log.warning("request %d failed", request.index, exc_info=True)
                if self._device.startswith("cuda"):
                    self._torch.cuda.empty_cache()
                yield GenerationResult(index=request.index, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._record_peak()

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        model, tok = self._model, self._tok
        if model is None or tok is None:
            raise BackendError("generate() called before load()")
        s = request.settings
        start = time.perf_counter()
        prompt = self.render(request.messages, **request.chat_template_kwargs)
        inputs = tok(prompt, add_special_tokens=False, return_tensors="pt").to(model.device)
        n_prompt = int(inputs["input_ids"].shape[1])
        self._torch.manual_seed(s.seed)
        clock = _TokenClock()
        out = model.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            generation_config=self._generation_config(request),
            streamer=clock,
            tokenizer=tok if s.stop else None,
        )
        latency = time.perf_counter() - start
        ids = [int(t) for t in out[0, n_prompt:]]
        finish = "length"
        if ids and ids[-1] in self._eos:
            ids, finish = ids[:-1], "stop"
        text = tok.decode(ids, skip_special_tokens=True)
        if s.stop and any(stop in text for stop in s.stop):
            text, finish = cut_at_stop(text, s.stop), "stop"
        ttft = clock.times[0] - start if clock.times else None
        itl = None
        if len(clock.times) > 1:
            itl = (clock.times[-1] - clock.times[0]) / (len(clock.times) - 1)
        return GenerationResult(
            index=request.index,
            text=text,
            prompt_tokens=n_prompt,
            completion_tokens=len(ids),
            latency_s=latency,
            ttft_s=ttft,
            itl_s=itl,
            token_source="exact",
            finish_reason=finish,
        )

    def render(self, messages: list[Message], **kwargs: Any) -> str:
        """The prompt in the tokenizer's chat template (ChatML when it has none)."""
        tok = self._tok
        return str(
            tok.apply_chat_template(
                [m.model_dump() for m in messages],
                add_generation_prompt=True,
                tokenize=False,
                chat_template=None if tok.chat_template else CHATML,
                **kwargs,
            )
        )

    def _generation_config(self, request: GenerationRequest) -> Any:
        """Every sampling field set: None would be filled from the checkpoint's defaults."""
        s = request.settings
        base = self._model.generation_config
        eos = self._eos
        sample = s.temperature > 0
        return self._hf.GenerationConfig(
            bos_token_id=base.bos_token_id,
            eos_token_id=eos or None,
            pad_token_id=base.pad_token_id if base.pad_token_id is not None else next(iter(eos), 0),
            max_new_tokens=s.max_tokens,
            min_new_tokens=s.min_tokens,
            do_sample=sample,
            # Greedy ignores these; transformers' neutral defaults avoid its warnings.
            temperature=s.temperature if sample else 1.0,
            top_p=s.top_p if sample else 1.0,
            top_k=s.top_k if sample else 50,  # 0 disables top-k (None would mean 50)
            min_p=s.min_p if sample and s.min_p > 0 else None,
            typical_p=1.0,
            repetition_penalty=s.repeat_penalty,
            no_repeat_ngram_size=0,
            num_beams=1,
            stop_strings=s.stop or None,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's tokenizer (no BOS; special tokens parsed)."""
        if self._tok is None:
            raise BackendError("count_tokens() called before load()")
        if not text:
            return 0
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def _record_peak(self) -> None:
        """Peak RSS of this process, and the CUDA allocator's peak on a GPU, in MB."""
        self.peak_memory["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self._device.startswith("cuda"):
            self.peak_memory["cuda_max_allocated_mb"] = (
                self._torch.cuda.max_memory_allocated(self._device) / 2**20
            )

    def close(self) -> None:
        if self._model is None:
            return
        self._record_peak()
        log.info("peak memory: %s", self.peak_memory)
        self._model = self._tok = None
        if self._device.startswith("cuda"):
            self._torch.cuda.empty_cache()


class _TokenClock:
    """A ``generate`` streamer that only timestamps each new token (the prompt comes first)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._puts = 0

    def put(self, value: Any) -> None:
        self._puts += 1
        if self._puts > 1:
            self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def _resolve(path: Path, gguf_file: str | None) -> tuple[Path, str | None]:
    """(folder, GGUF file name or None for an HF folder); nothing is fetched from a hub."""
    if path.is_file():
        if path.suffix != ".gguf":
            raise BackendError(f"{path} is neither a model folder nor a .gguf file")
        return path.parent, path.name
    if not path.is_dir():
        raise BackendError(
            f"model path not found: {path} (the transformers backend loads local "
            "folders and .gguf files only; nothing is downloaded from a hub)"
        )
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            raise BackendError(f"gguf_file {gguf_file!r} not found in {path}")
        return path, gguf_file
    if any((path / name).is_file() for name in _HF_FILES):
        return path, None
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if len(ggufs) == 1:
        return path, ggufs[0]
    if ggufs:
        raise BackendError(f"{path} holds several GGUF files; set options.gguf_file: {ggufs}")
    raise BackendError(f"{path} has no config.json, no tokenizer files and no .gguf file")


def _cuda_problem(device: str) -> str | None:
    try:
        torch = _import("torch")
    except BackendUnavailable as exc:
        return str(exc)
    if not torch.cuda.is_available():
        return f"device {device!r} needs a CUDA GPU; torch {torch.__version__} sees none"
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) visible"
    return None


def _import(name: str) -> Any:
    """Import torch/transformers lazily, as Any: their types are not checked here."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise BackendUnavailable(HF_EXTRA) from None
