"""Options of the ``openai`` backend, resolved against its preset, and the API-key rules.

``api_key_env`` names the environment variable that holds the key; the key itself
never appears in options, so a dumped plan or a stored run holds no secret. A value
that is not a variable name (a pasted key, most likely) is replaced before anything
can echo it, and ``key_problem`` explains. A ``base_url`` with ``user:password@``
keeps only the bare URL; the backend gets the credentials back (``apikeys``).
Concurrency and retries are the request engine's (``EngineOptions``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fleetbench.backends.apikeys import NOT_A_NAME, hide_non_name, not_a_name_problem
from fleetbench.backends.engine import EngineOptions
from fleetbench.backends.managed import ManagedServerOptions
from fleetbench.backends.presets import GENERIC, PRESETS, SAMPLING_EXTRAS, ReasoningParam
from fleetbench.catalog.spec import ModelSpec
from fleetbench.urlauth import hide_userinfo


class OpenAIOptions(EngineOptions):
    preset: str | None = Field(None, description="openai, openrouter, groq, together, ...")
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(None, description="served model name; default: the model id")
    api_key_env: str | None = Field(
        None, description="NAME of the variable holding the key; '' for none"
    )
    stream: bool = True
    connect_timeout_s: float = Field(10.0, gt=0)
    # A request queued in a server that generates one at a time (llama_cpp.server)
    # hears nothing until its turn: keep this above concurrency x one generation.
    read_timeout_s: float = Field(300.0, gt=0, description="longest silence from the server")
    request_timeout_s: float = Field(600.0, gt=0, description="longest one attempt")
    reasoning_param: ReasoningParam | None = Field(None, description="default: the preset's")
    sampling_extras: dict[str, str] | None = Field(
        None, description="top_k/min_p/repeat_penalty/min_tokens -> request field"
    )
    extra_body: dict[str, Any] = Field(default_factory=dict)
    tokenizer_path: Path | None = Field(None, description="GGUF to count tokens without usage")
    server: ManagedServerOptions | None = Field(None, description="start this server first")
    tool_calling: bool | None = Field(
        None,
        description="the model calls OpenAI tools (agentic tasks' actions: auto uses "
        "them); default: the preset's (openai, openrouter, groq, together: true)",
    )
    api: Literal["native"] | None = Field(
        None,
        description="native: Ollama's own /api/chat instead of /v1 (preset ollama only): "
        "the server's load, prompt-eval and eval durations are recorded",
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; valid: {', '.join(PRESETS)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return hide_userinfo(value)

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _hide_non_names(cls, value: Any) -> Any:
        return hide_non_name(value)

    @field_validator("sampling_extras")
    @classmethod
    def _known_extras(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            if key not in SAMPLING_EXTRAS:
                raise ValueError(f"unknown setting {key!r}; valid: {', '.join(SAMPLING_EXTRAS)}")
        return value

    @model_validator(mode="after")
    def _fill_from_preset(self) -> OpenAIOptions:
        """Resolve preset defaults into the fields, so a dumped copy validates the same."""
        preset = PRESETS.get(self.preset or "", GENERIC)
        if self.base_url is None and self.preset is not None:
            self.base_url = preset.base_url
        if self.base_url is None and self.server is None:
            raise ValueError(
                "set base_url (e.g. http://127.0.0.1:8000/v1), a preset "
                f"({', '.join(PRESETS)}) or a managed server"
            )
        if self.api_key_env is None:
            self.api_key_env = preset.api_key_env or ""
        if self.reasoning_param is None:
            self.reasoning_param = preset.reasoning_param
        if self.sampling_extras is None:
            self.sampling_extras = dict(preset.extras)
        if self.api == "native" and self.preset != "ollama":
            raise ValueError("api: native is Ollama's API: it needs preset: ollama")
        return self


def key_problem(options: OpenAIOptions, model: ModelSpec) -> str | None:
    name = options.api_key_env
    if not name:
        return None
    if name == NOT_A_NAME:
        return not_a_name_problem("OPENAI_API_KEY")
    if not os.environ.get(name):
        return (
            f"environment variable {name} is not set (needed for the API key of model "
            f"{model.name}); export it, e.g. export {name}=..., or set options.api_key_env"
        )
    return None
