"""Backends, registered by name.

Built-in backends are listed in ``_BUILTIN`` as ``module:Class`` strings so that
looking one up never imports another's heavy SDK. A model may also name any
importable class as ``backend: package.module:ClassName`` (a plugin).
"""

from __future__ import annotations

import importlib
from typing import Any

from fleetbench.backends.base import (
    CLIENT_ONLY,
    IN_PROCESS,
    MANAGED_SERVER,
    REMOTE_API,
    Backend,
    BackendContext,
    EnergyScope,
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    GpuPlacement,
    LoadInfo,
    Message,
    Placement,
    server_scope,
)
from fleetbench.errors import ConfigError

__all__ = [
    "CLIENT_ONLY",
    "IN_PROCESS",
    "MANAGED_SERVER",
    "REMOTE_API",
    "Backend",
    "BackendContext",
    "EnergyScope",
    "GenerationRequest",
    "GenerationResult",
    "GenerationSettings",
    "GpuPlacement",
    "LoadInfo",
    "Message",
    "Placement",
    "backend_names",
    "get_backend_class",
    "server_scope",
]

_BUILTIN: dict[str, str] = {
    "llamacpp": "fleetbench.backends.llamacpp:LlamaCppBackend",
    "openai": "fleetbench.backends.openai_http:OpenAIBackend",
    "transformers": "fleetbench.backends.transformers_local:TransformersBackend",
    "vllm": "fleetbench.backends.vllm_offline:VLLMBackend",
    "hosted": "fleetbench.backends.hosted:HostedBackend",
}


def backend_names() -> list[str]:
    return sorted(_BUILTIN)


def get_backend_class(name: str) -> Any:
    """Resolve a backend name (or ``module:Class``) to its class; ConfigError if unknown."""
    target = _BUILTIN.get(name, name)
    if ":" not in target:
        raise ConfigError(
            f"unknown backend {name!r}; valid: {', '.join(backend_names())} "
            "or an importable 'package.module:ClassName'"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import backend {name!r}: {exc}") from None
    for attr in ("name", "Options", "load", "generate", "close"):
        if not hasattr(cls, attr):
            raise ConfigError(f"backend {name!r} lacks {attr!r}; see fleetbench.backends.Backend")
    return cls
