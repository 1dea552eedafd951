"""Backends, registered by name.

Built-in backends are listed in ``_BUILTIN`` as ``module:Class`` strings so that
looking one up never imports another's heavy SDK. A model may also name an installed
plugin or any importable class as ``backend: package.module:ClassName`` (see
``fleetbench.plugins``).
"""

from __future__ import annotations

from fleetbench.backends.base import (
    CLIENT_ONLY,
    IN_PROCESS,
    MANAGED_SERVER,
    REMOTE_API,
    Backend,
    BackendContext,
    EnergyScope,
    FunctionCall,
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    GpuPlacement,
    LoadInfo,
    Message,
    Placement,
    ToolCall,
    ToolSupport,
    server_scope,
)
from fleetbench.plugins import PlugPoint

__all__ = [
    "BACKENDS",
    "CLIENT_ONLY",
    "IN_PROCESS",
    "MANAGED_SERVER",
    "REMOTE_API",
    "Backend",
    "BackendContext",
    "EnergyScope",
    "FunctionCall",
    "GenerationRequest",
    "GenerationResult",
    "GenerationSettings",
    "GpuPlacement",
    "LoadInfo",
    "Message",
    "Placement",
    "ToolCall",
    "ToolSupport",
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


BACKENDS: PlugPoint[Backend] = PlugPoint(
    kind="backend",
    group="fleetbench.backends",
    builtin=_BUILTIN,
    required=("name", "Options", "load", "generate", "close"),
    protocol="fleetbench.backends.Backend",
)


def backend_names() -> list[str]:
    return BACKENDS.names()


def get_backend_class(name: str) -> type[Backend]:
    """Resolve a backend name (or ``module:Class``) to its class; ConfigError if unknown."""
    return BACKENDS.resolve(name)
