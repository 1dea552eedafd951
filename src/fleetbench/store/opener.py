"""Opening the store of an existing results folder (readers: report, matrix, ensemble)."""

from __future__ import annotations

from pathlib import Path

from fleetbench.errors import ConfigError
from fleetbench.store.sqlite import DB_NAME, Store


def open_store(output: Path) -> Store:
    """The store of an existing results folder; never creates one."""
    if not (output / DB_NAME).is_file():
        raise ConfigError(
            f"{output}: no results store ({DB_NAME}); run `fleetbench run` there first "
            "or pass the results folder with --output"
        )
    return Store.in_dir(output)
