"""Runs without a plan file: a catalogue as is, or one model from command-line flags.

``fleetbench run models.csv`` runs a catalogue (AI Energy Score CSV, YAML catalogue,
models_config.yaml, checkpoint folder) with the ``textgen`` task, whose AI Energy
Score token protocol then applies; ``fleetbench run --model-id ID --backend B ...``
runs one model. Either way the command line becomes an ordinary plan (a mapping
validated and expanded by runner/plan.py), so it resolves exactly like a plan file,
and ``--save-plan`` writes that mapping: the saved plan gives the same run ids.
Paths are made absolute, since the saved plan may live in another folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetbench.errors import ConfigError
from fleetbench.fsutil import atomic_write_text
from fleetbench.safeparse import load_yaml

DEFAULT_TASK = "textgen"
CATALOG_KEYS = frozenset({"models", "defaults", "categories"})


@dataclass
class AdHoc:
    """The flags that describe a run without a plan (all optional)."""

    model_id: str | None = None
    backend: str | None = None
    base_url: str | None = None
    model_path: Path | None = None
    prompts_file: Path | None = None
    tasks: list[str] = field(default_factory=list)

    def model_flags(self) -> list[str]:
        return [
            flag
            for flag, value in (
                ("--model-id", self.model_id),
                ("--backend", self.backend),
                ("--base-url", self.base_url),
                ("--model-path", self.model_path),
                ("--prompts-file", self.prompts_file),
            )
            if value is not None
        ]


def is_catalog(path: Path) -> bool:
    """A CSV, a folder, or a YAML file with only catalogue keys (models, defaults,
    categories)."""
    if path.is_dir() or path.suffix.lower() == ".csv":
        return True
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError):
        return False  # the plan loader reports what is wrong with it
    # Only catalogue keys: a plan that forgot its tasks still fails as a plan.
    return isinstance(data, dict) and "models" in data and set(data) <= CATALOG_KEYS


def adhoc_plan(catalog: Path | None, flags: AdHoc) -> dict[str, Any]:
    """The plan the command line describes, as plan-file data."""
    options: dict[str, Any] = {}
    if flags.prompts_file is not None:
        options["prompts_file"] = str(_existing(flags.prompts_file, "--prompts-file"))
    tasks = [{"name": t, **({"options": options} if options else {})}
             for t in (flags.tasks or [DEFAULT_TASK])]  # fmt: skip
    model_options: dict[str, Any] = {}
    if flags.base_url is not None:
        model_options["base_url"] = flags.base_url
    if flags.model_path is not None:
        model_options["model_path"] = str(_existing(flags.model_path, "--model-path"))
    if catalog is not None:
        if flags.model_id is not None:
            raise ConfigError("--model-id runs one model without a catalogue; drop one of them")
        defaults: dict[str, Any] = {}
        if flags.backend is not None:
            defaults["backend"] = flags.backend
        if model_options:
            defaults["options"] = model_options
        ref: dict[str, Any] = {"path": str(catalog.resolve())}
        if defaults:
            ref["defaults"] = defaults
        return {"name": catalog.stem, "catalog": ref, "tasks": tasks}
    if flags.model_id is None and flags.model_path is None:
        raise ConfigError(
            "give a PLAN file, a catalogue (fleetbench run models.csv), or a model: "
            "--model-id ID (with --backend openai --base-url URL, or --backend llamacpp "
            "--model-path X.gguf)"
        )
    backend = flags.backend or ("openai" if flags.base_url is not None else "llamacpp")
    if backend == "openai" and flags.model_id is not None:
        model_options.setdefault("model", flags.model_id)
    model: dict[str, Any] = {"backend": backend}
    if flags.model_id is not None:
        model["id"] = flags.model_id
    else:
        model["name"] = Path(model_options["model_path"]).stem
    if model_options:
        model["options"] = model_options
    return {"name": "adhoc", "models": [model], "tasks": tasks}


def save_plan(path: Path, data: dict[str, Any]) -> None:
    header = "# Written by fleetbench run --save-plan: the same runs as that command.\n"
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _existing(path: Path, flag: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{flag} {path}: file not found")
    return path.resolve()
