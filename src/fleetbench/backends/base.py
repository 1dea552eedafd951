"""The backend interface: load a model, generate a batch of requests, close.

A backend measures what only it can see (time to first token, token counts) and
classifies its own errors as retryable or not. The runner never imports a backend
module directly: it asks the registry (``fleetbench.backends.get_backend``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

if TYPE_CHECKING:
    from fleetbench.catalog.spec import ModelSpec

# Where a result's token counts come from, most trustworthy first: the backend's own
# tokenizer/decoder loop, the server's ``usage``, the server's tokenize endpoint, or
# the model's tokenizer applied client-side to the returned text.
TokenSource = Literal["exact", "usage", "tokenize", "tokenizer"]

# What a backend can do with OpenAI tool calling (its optional ``tool_calling`` hook):
# the model is known to call tools; the backend can send tools, but whether the model
# calls them is not known; the backend cannot send them at all (the hook's absence).
ToolSupport = Literal["supported", "untested", "unavailable"]

# A managed server's process group, in the run folder (backends/managed.py): the batch
# kills it after a worker that could not (runner/process.py).
PGID_FILE = "server.pgid"


class GenerationSettings(BaseModel):
    """Sampling parameters, always passed explicitly: backends' defaults differ."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k")
    min_p: float = Field(0.0, ge=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1)
    min_tokens: int = Field(0, ge=0, description="end-of-generation is suppressed before this")
    seed: int = 42
    repeat_penalty: float = Field(1.0, gt=0.0)
    stop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _min_le_max(self) -> GenerationSettings:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) > max_tokens ({self.max_tokens})")
        return self


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: str  # the model's JSON text, as it wrote it (may not parse)


class ToolCall(BaseModel):
    """One OpenAI tool call of an assistant reply, in the wire's own shape."""

    model_config = ConfigDict(extra="forbid")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    """One chat turn. ``tool_calls`` (an assistant reply's) and ``tool_call_id`` (a
    ``role: tool`` answer's) exist only with OpenAI tool calling; unset, they are left
    out of every dump, so plain conversations keep the ``{role, content}`` shape."""

    model_config = ConfigDict(extra="forbid")

    role: str
    content: str
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_tool_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("tool_calls", "tool_call_id"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class GenerationRequest(BaseModel):
    """One prompt to generate for; ``index`` ties the result back to its sample."""

    index: int
    messages: list[Message]
    settings: GenerationSettings
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    # OpenAI ``tools`` (function schemas) offered to the model; only backends whose
    # ``tool_calling`` hook says they can send them do.
    tools: list[dict[str, Any]] | None = None


class GenerationResult(BaseModel):
    """What a backend measured for one request. Times are seconds, client side."""

    index: int
    text: str = ""
    tool_calls: list[ToolCall] | None = None  # the reply's tool calls (request had tools)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    finish_reason: str | None = None
    itl_s: float | None = Field(None, description="mean inter-token latency, client side")
    token_source: TokenSource | None = None
    retries: int = Field(0, ge=0, description="attempts beyond the first")
    # Wall clock (time.time()) of the final attempt's request sent and last byte
    # received. Optional: the runner falls back to its own clock when the result
    # reaches it (received) minus latency_s (sent). A backend that does work between
    # the reply and yielding the result (counting tokens) should set them.
    sent_at: float | None = None
    received_at: float | None = None
    # Wall clock at which the engine meant to send the request (open-loop load
    # profiles; None closed loop) and at which it did send the first attempt.
    intended_send_at: float | None = None
    actual_send_at: float | None = None
    error: str | None = None
    retryable: bool = False
    # What the server measured itself, seconds and counts (Ollama's native API:
    # load_s, prompt_eval_tokens, prompt_eval_s, eval_tokens, eval_s, total_s); None
    # where the server reports no timing. Stored per sample as ``server_timing_json``.
    server_timing: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class LoadInfo(BaseModel):
    """Facts a backend learns while loading, recorded with the run."""

    load_time_s: float
    startup_s: float | None = Field(None, description="managed server start to ready")
    model_path: str | None = None
    model_size_bytes: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class GpuPlacement:
    """The GPUs a local model is loaded on, as a backend's ``placement`` hook says.

    ``count`` GPUs (e.g. vLLM's ``tensor_parallel_size``); ``devices`` when the options
    fix which (CUDA indices among the visible GPUs, e.g. ``cuda:1``), else the runner
    picks the visible GPUs with the most free memory and pins the run to them;
    ``spread``: the backend spreads the model over every visible GPU (llama.cpp's layer
    split), so their free memory adds up; ``memory_fraction``: the backend claims this
    share of each GPU's total memory up front and refuses to start with less free
    (vLLM's ``gpu_memory_utilization``).
    """

    count: int = 1
    devices: tuple[int, ...] | None = None
    spread: bool = False
    memory_fraction: float | None = None


# Where a backend places a model, for the fit check: RAM, GPU(s), or None (remote: no
# local memory to check). A plain "gpu" is one GPU, any.
Placement = Literal["ram", "gpu"] | GpuPlacement | None


# What a run's energy figures cover (the backend's ``energy_scope`` hook says which):
# the model runs in the worker's process tree (metered); a server fleetbench started
# (its process tree is metered too); a local server someone else started (only the
# client is metered); or a remote host (nothing of the model's work is metered).
EnergyScope = Literal["in-process", "client + managed server", "client only", "remote API"]
IN_PROCESS: EnergyScope = "in-process"
MANAGED_SERVER: EnergyScope = "client + managed server"
CLIENT_ONLY: EnergyScope = "client only"
REMOTE_API: EnergyScope = "remote API"


def server_scope(url: str | None) -> EnergyScope:
    """The scope of a server fleetbench did not start: on this machine (a loopback
    host) only the client is metered; anywhere else (no URL: a provider's default
    endpoint) the model runs remotely."""
    host = urlsplit(url or "").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return CLIENT_ONLY
    try:
        return CLIENT_ONLY if ipaddress.ip_address(host).is_loopback else REMOTE_API
    except ValueError:  # a host name: resolving it could reach the network
        return REMOTE_API


@dataclass(frozen=True)
class BackendContext:
    """What a backend may know about the run it serves, besides its options."""

    model: ModelSpec
    run_dir: Path  # the run's folder: server logs and other backend files go here


@runtime_checkable
class Backend(Protocol):
    """What every backend implements. ``Options`` validates the model's ``options:``;
    the constructor is ``Backend(options, context: BackendContext)``.

    Optional, looked up with ``getattr`` so that plugins need not define them:

    * ``count_tokens(text: str) -> int``: tokens of ``text`` in the model's own
      tokenizer (no BOS; special tokens parsed), callable after ``load()``. The runner
      uses it for reasoning tokens; without it they are unknown.
    * ``unavailable_reason(options, model) -> str | None`` (static): why the model
      cannot run on this machine at all (a missing SDK, no GPU); the run is skipped
      with that reason, before anything loads.
    * ``placement(options) -> Placement`` (static): where the weights go (``"ram"``,
      a ``GpuPlacement``, ``"gpu"`` for one GPU, None for a remote model); the fit
      check compares the estimated need with free memory there, per GPU, and skips a
      model that cannot fit.
    * ``preflight_error(options, model) -> str | None`` (static): a configuration
      problem the user must fix (e.g. an API key variable that is not set); the whole
      batch stops with that one-line error before anything runs.
    * ``energy_scope() -> EnergyScope``, called after ``load()``: what the run's energy
      meters can see of the model's work. Without it a backend is ``"in-process"``
      (it generates in the worker's process tree, as llamacpp, transformers and vLLM
      offline do). ``"client only"`` and ``"remote API"`` runs report no energy, CO2
      or tokens per joule (the meters would see only fleetbench's own process) unless
      the plan's ``energy.client_only: true`` asks for that client figure.
    * ``tool_calling() -> ToolSupport``, called after ``load()``: whether requests'
      ``tools`` are sent and the replies' ``tool_calls`` returned (``"supported"``:
      known to work for this model; ``"untested"``: sent, the model may ignore them).
      Without it: ``"unavailable"`` (multi-turn tasks use their plain-text actions).

    ``options`` is an instance of ``Options``; ``model`` the ``ModelSpec`` (catalogue
    entry). A plugin names its class in a plan as ``backend: package.module:Class`` or
    registers a name as an entry point (see ``fleetbench.plugins``).
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: Any, context: BackendContext) -> None: ...

    def load(self) -> LoadInfo: ...

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        """Yield one result per request as each completes (order may differ)."""
        ...

    def close(self) -> None: ...
