"""Model specifications, catalogue files (CSV/YAML), filters and reasoning adapters."""

from fleetbench.catalog.embedded import DEFAULT_MODEL_NAME, embedded_model_path
from fleetbench.catalog.filters import ModelFilter
from fleetbench.catalog.loaders import load_catalog
from fleetbench.catalog.spec import ModelSpec, dump_yaml, normalise_id

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ModelFilter",
    "ModelSpec",
    "dump_yaml",
    "embedded_model_path",
    "load_catalog",
    "normalise_id",
]
