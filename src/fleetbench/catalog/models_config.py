"""``models_config.yaml``: the common shape of a commercial-model list, read as a catalogue.

    models:
      - name: gpt-4o-mini            # the provider's model id
        provider: openai             # -> backend and preset (PROVIDERS)
        display_name: GPT-4o mini    # -> the entry's name
        enabled: true                # false: listed, never run
        api_key: ${OPENAI_API_KEY}   # -> options.api_key_env: OPENAI_API_KEY
        settings: {temperature: 0.2, max_tokens: 256}   # -> generation
        category: fast               # or categories: [fast, coding_specialized]
    categories:                      # optional definitions; then every use must be one
      fast: {description: quick and cheap}

The key itself is never read: ``api_key`` must be a ``${VAR}`` placeholder, and only
the variable's name is kept (a missing variable stops a batch before anything runs,
through the backend's preflight check). A literal key is refused without echoing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fleetbench.backends.base import GenerationSettings
from fleetbench.errors import CatalogError
from fleetbench.yamlconf import YamlDocument

# provider -> (backend, options naming the provider)
_OPENAI_PRESETS = ("openai", "openrouter", "groq", "together", "ollama", "vllm", "tgi",
                   "llamacpp-server")  # fmt: skip
PROVIDERS: dict[str, tuple[str, dict[str, str]]] = {
    **{p: ("openai", {"preset": p}) for p in _OPENAI_PRESETS},
    "anthropic": ("hosted", {"provider": "anthropic"}),
    "google": ("hosted", {"provider": "gemini"}),
    "gemini": ("hosted", {"provider": "gemini"}),
    "mistral": ("hosted", {"provider": "mistral"}),
    "cohere": ("hosted", {"provider": "cohere"}),
    "bedrock": ("hosted", {"provider": "bedrock"}),
}
ENTRY_KEYS = (
    "name", "provider", "display_name", "description", "enabled", "api_key", "base_url",
    "settings", "category", "categories", "tags", "model_class", "priority", "params_b",
    "price_input_per_1m", "price_output_per_1m",
)  # fmt: skip
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$|^\$([A-Za-z_][A-Za-z0-9_]*)$")

Build = Callable[[dict[str, Any], str], None]


def is_models_config(data: Any) -> bool:
    """The shape is recognised by ``provider`` keys or a ``categories:`` section."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return False
    return "categories" in data or any(
        isinstance(m, dict) and "provider" in m for m in data["models"]
    )


def convert(doc: YamlDocument, build: Build, errors: list[str]) -> None:
    """Each entry as ModelSpec data, handed to ``build(data, where)``; problems go to
    ``errors`` (file, line, entry and field, with the valid values)."""
    path, data = doc.path, doc.data
    unknown = sorted(set(data) - {"models", "categories"})
    if unknown:
        raise CatalogError(
            f"{path}:{doc.line_of([unknown[0]])}: unknown key {unknown[0]!r}; "
            "valid: models, categories"
        )
    defined = _categories(doc)
    for i, raw in enumerate(data["models"]):
        where = f"{path}:{doc.line_of(['models', i])}: models[{i}]"
        if not isinstance(raw, dict):
            errors.append(f"{where}: expected a mapping, got {type(raw).__name__}")
            continue
        try:
            entry = _entry(raw, defined)
        except ValueError as exc:
            line = doc.line_of(["models", i, *exc.args[1:2]])
            errors.append(f"{path}:{line}: models[{i}]: {exc.args[0]}")
            continue
        build(entry, where)


def _categories(doc: YamlDocument) -> list[str] | None:
    value = doc.data.get("categories")
    if value is None:
        return None
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list) and all(isinstance(v, str | dict) for v in value):
        return [v if isinstance(v, str) else str(v.get("name", "")) for v in value]
    raise CatalogError(
        f"{doc.path}:{doc.line_of(['categories'])}: categories: expected a mapping "
        "(name: {description: ...}) or a list of names"
    )


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"{field}: {message}", field)


def _entry(raw: dict[str, Any], defined: list[str] | None) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        raise _fail(unknown[0], f"unknown field; valid: {', '.join(ENTRY_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail("name", "the provider's model id is required, e.g. gpt-4o-mini")
    provider = raw.get("provider")
    if provider not in PROVIDERS:
        raise _fail("provider", f"unknown provider {provider!r}; valid: {', '.join(PROVIDERS)}")
    backend, options = PROVIDERS[provider]
    options = {**options, "model": name}
    if "api_key" in raw:
        options["api_key_env"] = _key_variable(raw["api_key"])
    if raw.get("base_url") is not None:
        options["base_url" if backend == "openai" else "api_base"] = raw["base_url"]
    entry: dict[str, Any] = {
        "name": raw.get("display_name") or name,
        "id": name,
        "backend": backend,
        "options": options,
        "generation": _settings(raw.get("settings")),
        "tags": _tags(raw, defined),
    }
    for key in ("model_class", "priority", "params_b", "price_input_per_1m",
                "price_output_per_1m"):  # fmt: skip
        if raw.get(key) is not None:
            entry[key] = raw[key]
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail("enabled", f"expected true or false, got {enabled!r}")
    if not enabled:
        entry["supported"] = False
        entry["skip_reason"] = "disabled (enabled: false)"
    return entry


def _key_variable(value: Any) -> str:
    if value is None or value == "":
        return ""
    match = _PLACEHOLDER.match(value) if isinstance(value, str) else None
    if match is None:  # never echo the value: it is most likely the key itself
        raise _fail(
            "api_key",
            "expected a ${VARIABLE} placeholder (e.g. ${OPENAI_API_KEY}); the key itself "
            "never belongs in a file",
        )
    return match.group(1) or match.group(2)


def _settings(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail("settings", "expected a mapping, e.g. {temperature: 0.2, max_tokens: 256}")
    valid = list(GenerationSettings.model_fields)
    for key in value:
        if key not in valid:
            raise _fail(f"settings.{key}", f"unknown setting; valid: {', '.join(valid)}")
    return dict(value)


def _tags(raw: dict[str, Any], defined: list[str] | None) -> list[str]:
    tags: list[str] = []
    for key in ("category", "categories", "tags"):
        value = raw.get(key)
        if value is None:
            continue
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise _fail(key, "expected a name or a list of names")
        for item in items:
            tag = str(item).strip()
            if defined is not None and tag not in defined:
                raise _fail(key, f"undefined category {tag!r}; defined: {', '.join(defined)}")
            if tag and tag not in tags:
                tags.append(tag)
    return tags
