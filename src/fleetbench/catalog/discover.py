"""Checkpoint sweeps: catalogue entries for the checkpoints of a training run.

``discover_checkpoints`` walks a training output folder and returns one ``ModelSpec``
per checkpoint, ordered by training step, so that a plan can measure how a model
changes over training. A checkpoint is

* an HF-format folder: a directory holding ``config.json`` (run with the
  ``transformers`` backend; the walk does not descend into it), or
* a ``.gguf`` file (run with the ``llamacpp`` backend).

Hidden folders and files (``.cache``, ``.git``, ...) are skipped, and so are symlinked
folders (a ``latest -> checkpoint-1000`` link would list a checkpoint twice).

The step is the trailing number of a recognised name in the checkpoint's own name
(for a ``.gguf`` file, else in its parent folder's name): ``checkpoint-49``,
``checkpoint_49``, ``step_98``, ``step-98``, ``step98``, ``global_step1200``,
``iter_0000500``, ``epoch-3`` (an epoch number counts as a step), case-insensitive.
Checkpoints without one (``final``, ``model.gguf``) come after all stepped ones, in
name order, with a warning.

Entries have no ``id`` (they are local files, so the llamacpp backend's guard against
running the embedded model in place of a missing GGUF does not apply) and are named
``<root folder name>/<path relative to root>``, which contains the step.

The backend and task are only guessed from the file kind (``GUESSED``): a plan's
``catalog: {path: <folder>, defaults: {backend: vllm}}`` replaces them, and every
backend that loads local weights takes the checkpoint as ``options.model_path``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fleetbench.catalog.spec import ModelSpec, dump_yaml
from fleetbench.errors import CatalogError
from fleetbench.safeparse import loads_json

HF_CONFIG = "config.json"
GGUF_SUFFIX = ".gguf"

# A recognised step marker, not glued to a preceding letter or digit ("laststep5" and
# "step5b" are not steps); "global_step" and "step" both match through "step".
_STEP = re.compile(
    r"(?<![a-z0-9])(?:checkpoint|ckpt|step|iteration|iter|epoch)[-_]?(\d+)(?![a-z0-9])",
    re.IGNORECASE,
)

# Fields an entry gets from the kind of file found, not from the checkpoint itself.
GUESSED = frozenset({"backend", "task"})

_LOOKED_FOR = (
    "HF-format folders holding config.json and .gguf files, "
    "named like checkpoint-N, step_N, global_stepN, iter_N or epoch-N"
)


@dataclass
class _Found:
    path: Path  # absolute
    rel: str  # relative to the root, '/'-separated; '.' for the root itself
    kind: str  # "hf" or "gguf"
    step: int | None


def step_of(name: str) -> int | None:
    """The training step in a file or folder name, or None: ``checkpoint-49`` -> 49.

    With several markers (``epoch3_step500``) the last one wins.
    """
    matches = _STEP.findall(name)
    return int(matches[-1]) if matches else None


def discover_checkpoints(root: Path) -> list[ModelSpec]:
    """Catalogue entries for the checkpoints under ``root``, ordered by training step."""
    if not root.exists():
        raise CatalogError(f"{root}: training output folder not found")
    if not root.is_dir():
        raise CatalogError(f"{root}: not a folder; expected a training output folder")
    base = root.resolve()
    found: list[_Found] = []
    if (base / HF_CONFIG).is_file():
        found.append(_hf(base, ".", base.name))
    else:
        _walk(base, base, found)
    if not found:
        raise CatalogError(f"{root}: no checkpoints found; looked for {_LOOKED_FOR}")
    found.sort(key=_order)
    root_name = base.name or str(base)
    return [_entry(f, root_name) for f in found]


def discovered_catalog_yaml(root: Path) -> str:
    """A YAML catalogue of the checkpoints under ``root``, usable in a plan."""
    return dump_yaml(discover_checkpoints(root))


def _walk(base: Path, folder: Path, found: list[_Found]) -> None:
    try:
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise CatalogError(f"{folder}: cannot read folder: {exc.strerror or exc}") from None
    for child in children:
        if child.name.startswith("."):
            continue
        path = Path(child.path)
        rel = path.relative_to(base).as_posix()
        if child.is_dir(follow_symlinks=False):
            if (path / HF_CONFIG).is_file():
                found.append(_hf(path, rel, child.name))
            else:
                _walk(base, path, found)
        elif child.name.lower().endswith(GGUF_SUFFIX) and child.is_file():
            step = step_of(child.name[: -len(GGUF_SUFFIX)])
            if step is None and path.parent != base:
                step = step_of(path.parent.name)
            found.append(_Found(path, rel, "gguf", step))


def _order(found: _Found) -> tuple[bool, int, str]:
    """By step, ties by path; checkpoints without a step last, by path."""
    return (found.step is None, found.step or 0, found.rel)


def _hf(path: Path, rel: str, name: str) -> _Found:
    return _Found(path, rel, "hf", step_of(name))


def _read_dtype(config: Path, warnings: list[str]) -> str | None:
    """``torch_dtype`` (or ``dtype``) from an HF config.json; a warning if unreadable."""
    try:
        data = loads_json(config.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        warnings.append(f"{config}: not valid JSON (line {exc.lineno}: {exc.msg}); dtype unknown")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{config}: cannot read: {exc}; dtype unknown")
        return None
    if not isinstance(data, dict):
        warnings.append(f"{config}: expected a JSON object; dtype unknown")
        return None
    for key in ("torch_dtype", "dtype"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _entry(found: _Found, root_name: str) -> ModelSpec:
    name = root_name if found.rel == "." else f"{root_name}/{found.rel}"
    warnings: list[str] = []
    dtype = None
    if found.kind == "hf":
        dtype = _read_dtype(found.path / HF_CONFIG, warnings)
    if found.step is None:
        warnings.append(
            f"no training step in the name {found.path.name!r} "
            "(expected e.g. checkpoint-N or step_N); listed after the stepped checkpoints"
        )
    return ModelSpec(
        name=name,
        id="",
        backend="transformers" if found.kind == "hf" else "llamacpp",
        options={"model_path": str(found.path)},
        task="text_gen",
        dtype=dtype,
        warnings=warnings,
        source=str(found.path),
    )
