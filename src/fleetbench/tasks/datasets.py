"""Dataset rows for tasks, from wherever the user keeps them.

A source is one of:

* a local file: ``.jsonl``/``.ndjson`` (one JSON object per line), ``.json`` (a list of
  objects), ``.csv``/``.tsv`` (header row), ``.parquet`` (needs ``pyarrow``);
* a file shipped in an installed package: ``package:PKG/relative/path`` (``PKG`` is the
  importable package name, e.g. ``package:fleetbench.tasks.data/textgen_prompts.jsonl``);
* a Hugging Face hub dataset: ``hf://ORG/NAME[:split]`` (needs ``datasets`` and a reachable
  hub; offline, or with ``HF_HUB_OFFLINE=1``, a one-line error says to download it).

Every row remembers where it came from (``FILE:LINE``) so a task can report a bad field
as ``ConfigError("FILE:LINE: field 'x' ...")``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fleetbench.errors import ConfigError
from fleetbench.safeparse import loads_json

HF_PREFIX = "hf://"
PACKAGE_PREFIX = "package:"
DATASETS_HINT = "pip install 'fleetbench[datasets]'"
PARQUET_HINT = "pip install 'fleetbench[parquet]'"
HUB_CONNECT_TIMEOUT_S = 2.0
FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")


@dataclass(frozen=True)
class Row:
    where: str
    """``FILE:LINE`` (CSV/JSONL line, parquet/hub row number) for error messages."""
    data: dict[str, Any]

    def error(self, field: str, what: str) -> ConfigError:
        return ConfigError(f"{self.where}: field {field!r} {what}")


def load_rows(source: str | Path) -> list[Row]:
    """All rows of a source (see the module docstring); errors are one-line ConfigErrors."""
    text = str(source)
    if text.startswith(HF_PREFIX):
        return _hub_rows(text)
    if text.startswith(PACKAGE_PREFIX):
        return _package_rows(text)
    path = Path(text)
    try:
        if path.suffix.lower() == ".parquet":
            return _parquet_rows(path.read_bytes(), text)
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{text}: cannot read dataset file: {why}") from None
    return parse_rows(content, text, path.suffix.lower())


def parse_rows(content: str, origin: str, suffix: str) -> list[Row]:
    """Rows of a text file's content; ``suffix`` picks the format."""
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(content, origin)
    if suffix == ".json":
        return _json_rows(content, origin)
    if suffix in (".csv", ".tsv"):
        return _csv_rows(content, origin, "\t" if suffix == ".tsv" else ",")
    raise ConfigError(f"{origin}: unknown dataset format {suffix or '(none)'!r}; valid: "
                      f"{', '.join(FORMATS)}, package:PKG/PATH, hf://ORG/NAME[:split]")  # fmt: skip


def _jsonl_rows(content: str, origin: str) -> list[Row]:
    rows = []
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = loads_json(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{origin}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"{origin}:{lineno}: expected a JSON object")
        rows.append(Row(f"{origin}:{lineno}", obj))
    return rows


def _json_rows(content: str, origin: str) -> list[Row]:
    try:
        data = loads_json(content)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, list) or not all(isinstance(obj, dict) for obj in data):
        raise ConfigError(f"{origin}: expected a JSON list of objects (or use .jsonl)")
    return [Row(f"{origin}:item {i + 1}", obj) for i, obj in enumerate(data)]


def _csv_rows(content: str, origin: str, delimiter: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    rows = []
    try:
        for obj in reader:
            # line_num is the reader's physical line after the row (rows may span lines).
            where = f"{origin}:{reader.line_num}"
            if None in obj:
                raise ConfigError(f"{where}: more values than header columns")
            if all(v is None or not v.strip() for v in obj.values()):
                continue
            rows.append(Row(where, {k.strip(): v for k, v in obj.items()}))
    except csv.Error as exc:
        raise ConfigError(f"{origin}:{reader.line_num}: bad CSV ({exc})") from None
    return rows


def _parquet_rows(data: bytes, origin: str) -> list[Row]:
    if importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(f"{origin}: reading Parquet needs pyarrow; run: {PARQUET_HINT}")
    import pyarrow as pa  # type: ignore[import-not-found, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(f"{origin}: cannot read Parquet: {exc}") from None
    return [Row(f"{origin}:row {i + 1}", obj) for i, obj in enumerate(table.to_pylist())]


def _package_rows(source: str) -> list[Row]:
    spec = source[len(PACKAGE_PREFIX) :]
    package, _, relative = spec.partition("/")
    if not package or not relative:
        raise ConfigError(f"{source}: expected package:PKG/relative/path")
    try:
        resource = resources.files(package).joinpath(relative)
        if Path(relative).suffix.lower() == ".parquet":
            return _parquet_rows(resource.read_bytes(), source)
        content = resource.read_text(encoding="utf-8-sig")
    except ModuleNotFoundError:
        raise ConfigError(f"{source}: no installed package {package!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{source}: cannot read file in package {package!r}: {why}") from None
    return parse_rows(content, source, Path(relative).suffix.lower())


def parse_hub_source(source: str) -> tuple[str, str]:
    """``hf://ORG/NAME[:split]`` -> (``ORG/NAME``, split; default ``train``)."""
    name, _, split = source[len(HF_PREFIX) :].partition(":")
    if name.count("/") > 1 or not name.strip("/") or name.startswith("/"):
        raise ConfigError(f"{source}: expected hf://ORG/NAME[:split]")
    return name, split or "train"


def _hub_offline() -> bool:
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
               for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))  # fmt: skip


def _hub_reachable() -> bool:
    """A quick TCP connect to the hub (2 s) so an offline machine fails fast, not after
    the datasets library's retries."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), HUB_CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _hub_rows(source: str) -> list[Row]:
    name, split = parse_hub_source(source)
    unreachable = (f"{source}: cannot reach the Hugging Face hub for {name}; "
                   "download the dataset and pass a local file")  # fmt: skip
    if _hub_offline():
        raise ConfigError(unreachable + " (HF_HUB_OFFLINE is set)")
    if importlib.util.find_spec("datasets") is None:
        raise ConfigError(
            f"{source}: hub datasets need the datasets package; run: "
            f"{DATASETS_HINT} (or download the dataset and pass a local file)"
        )
    if not _hub_reachable():
        raise ConfigError(unreachable)
    import datasets  # type: ignore[import-not-found, unused-ignore]

    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as exc:  # the library raises many kinds; one line out
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{source}: cannot load dataset: {first}") from None
    return [Row(f"{source}:row {i + 1}", dict(obj)) for i, obj in enumerate(dataset)]


def row_category(row: Row, field: str) -> str | None:
    """A row's category (``category_field``, e.g. ``industry: retail``), kept per sample
    and exported; None when the row has none. A list or mapping there is an error."""
    value = row.data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool | dict | list):
        raise row.error(field, "must be a string or a number (the sample's category)")
    return str(value).strip()
