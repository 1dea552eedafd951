"""Model specifications. Catalogue files (CSV/YAML) with filters plug in here."""

from fleetbench.catalog.embedded import DEFAULT_MODEL_NAME, embedded_model_path
from fleetbench.catalog.spec import ModelSpec

__all__ = ["DEFAULT_MODEL_NAME", "ModelSpec", "embedded_model_path"]
