"""A backend context for tests that construct a backend directly."""

from __future__ import annotations

from pathlib import Path

from fleetbench.backends import BackendContext
from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID
from fleetbench.catalog.spec import ModelSpec


def make_context(
    run_dir: Path, model_id: str = EMBEDDED_MODEL_ID, **fields: object
) -> BackendContext:
    run_dir.mkdir(parents=True, exist_ok=True)
    model = ModelSpec.model_validate({"id": model_id, **fields})
    return BackendContext(model=model, run_dir=run_dir)
