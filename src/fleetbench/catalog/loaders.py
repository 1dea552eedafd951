"""Catalogue files: the AI Energy Score CSV format and fleetbench's YAML format.

Both produce ``ModelSpec`` entries in file order. Every problem names the file, the
row (CSV: data row and line) or entry, and the field; all bad rows are reported
together so one does not hide the others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fleetbench.catalog import models_config
from fleetbench.catalog.discover import discover_checkpoints
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import CatalogError, ConfigError
from fleetbench.yamlconf import YamlDocument, describe_error, format_loc

# AI Energy Score CSV column -> ModelSpec field
CSV_COLUMNS: dict[str, str] = {
    "Models to Add": "id",
    "Priority (1=hi)": "priority",
    "Class": "model_class",
    "Task": "task",
    "Reasoning State": "reasoning_state",
    "Chat Template": "chat_template",
}


def load_catalog(path: Path) -> list[ModelSpec]:
    """Load a catalogue by its extension (``.csv``, ``.yaml``/``.yml``); a folder is a
    training output whose checkpoints are discovered."""
    if path.is_dir():
        return discover_checkpoints(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return load_csv(path)
    if suffix in (".yaml", ".yml"):
        return load_yaml(path)
    raise CatalogError(f"{path}: unknown catalogue format {suffix!r}; valid: .csv, .yaml, .yml")


def load_csv(path: Path) -> list[ModelSpec]:
    text = _read(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise CatalogError(
            f"{path}:1: missing column(s) {', '.join(map(repr, missing))}; "
            f"expected: {', '.join(CSV_COLUMNS)}"
        )
    reader.fieldnames = header
    entries: list[ModelSpec] = []
    errors: list[str] = []
    line = reader.line_num + 1
    for row_no, row in enumerate(reader, start=1):
        where = f"{path}:row {row_no} (line {line})"
        line = reader.line_num + 1
        data = {field: (row.get(col) or "") for col, field in CSV_COLUMNS.items()}
        if not data["id"].strip():
            errors.append(f"{where}: Models to Add: empty model id")
            continue
        priority = data["priority"].strip()
        data["priority"] = priority or None
        _build(data, where, entries, errors, field_names=_csv_field_name)
    return _finish(path, entries, errors)


def load_yaml(path: Path) -> list[ModelSpec]:
    """``models:`` (a list of entries) plus optional ``defaults:`` merged into each; or
    the ``models_config.yaml`` shape (entries with ``provider``; see models_config)."""
    doc = YamlDocument.read(path)
    data = doc.data
    if isinstance(data, list):
        data = {"models": data}
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise CatalogError(f"{path}:1: expected a mapping with a 'models' list, or a list")
    if models_config.is_models_config(data):
        entries: list[ModelSpec] = []
        errors: list[str] = []
        models_config.convert(
            doc, lambda d, where: _build(d, where, entries, errors, field_names=str), errors
        )
        return _finish(path, entries, errors)
    unknown = set(data) - {"models", "defaults"}
    if unknown:
        key = sorted(unknown)[0]
        raise CatalogError(
            f"{path}:{doc.line_of([key])}: unknown key {key!r}; valid: models, defaults"
        )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise CatalogError(f"{path}:{doc.line_of(['defaults'])}: defaults: expected a mapping")
    entries = []
    errors = []
    for i, raw in enumerate(data["models"]):
        where = f"{path}:{doc.line_of(['models', i])}: models[{i}]"
        if not isinstance(raw, dict):
            errors.append(f"{where}: expected a mapping, got {type(raw).__name__}")
            continue
        _build({**defaults, **raw}, where, entries, errors, field_names=str)
    return _finish(path, entries, errors)


def _build(
    data: dict[str, Any],
    where: str,
    entries: list[ModelSpec],
    errors: list[str],
    field_names: Callable[[str], str],
) -> None:
    try:
        entry = ModelSpec.model_validate({**data, "source": where})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = format_loc([field_names(str(p)) for p in err["loc"]]) if err["loc"] else "entry"
        message = describe_error(ModelSpec, err)
        if err["type"] == "value_error":
            message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        errors.append(f"{where}: {loc}: {message}")
        return
    except ConfigError as exc:
        errors.append(f"{where}: {_field_of(str(exc), field_names)}: {exc}")
        return
    entries.append(entry)


def _field_of(message: str, field_names: Callable[[str], str]) -> str:
    if "reasoning state" in message:
        return field_names("reasoning_state")
    return field_names("chat_template")


def _csv_field_name(field: str) -> str:
    reverse = {v: k for k, v in CSV_COLUMNS.items()}
    return reverse.get(field, field)


def _finish(path: Path, entries: list[ModelSpec], errors: list[str]) -> list[ModelSpec]:
    if errors:
        more = f" (and {len(errors) - 1} more: {'; '.join(errors[1:])})" if len(errors) > 1 else ""
        raise CatalogError(errors[0] + more)
    _mark_duplicates(entries)
    _unique_names(entries)
    return entries


def _settings_key(entry: ModelSpec) -> str:
    return entry.model_dump_json(
        include={
            "id",
            "backend",
            "options",
            "task",
            "reasoning",
            "reasoning_effort",
            "chat_template_kwargs",
            "system_prompt",
            "prompt_prefix",
            "prompt_suffix",
            "generation",
        }
    )


def _mark_duplicates(entries: list[ModelSpec]) -> None:
    """Rows that resolve to the same settings as an earlier row would measure it twice."""
    seen: dict[str, ModelSpec] = {}
    for entry in entries:
        key = _settings_key(entry)
        first = seen.setdefault(key, entry)
        if first is not entry and entry.supported:
            entry.supported = False
            entry.skip_reason = f"duplicate of {_short(first.source)} (same resolved settings)"
            entry.warnings.append(entry.skip_reason)


def _unique_names(entries: list[ModelSpec]) -> None:
    """Names default to the id plus the reasoning state, and must be unique."""
    names: set[str] = set()
    for entry in entries:
        if entry.name == entry.id and entry.reasoning_state.strip() not in ("", "Off (N/A)"):
            entry.name = f"{entry.id} [{entry.reasoning_state.strip()}]"
        if entry.name in names:
            entry.name = f"{entry.name} ({_short(entry.source)})"
        names.add(entry.name)


def _short(source: str) -> str:
    return source.rsplit(":", 1)[-1].split(" (")[0].strip()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalogue file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read catalogue: {exc}") from None
