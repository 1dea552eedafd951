"""A model entry: what to run and how, from a plan (inline) or a catalogue file.

The same model serves both, so a catalogue row and an inline plan entry resolve the
same way. ``resolve_entry`` turns what the user wrote into exact settings: family,
reasoning mechanism, warnings, and whether the entry can run at all.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from fleetbench.catalog import families as fam
from fleetbench.catalog.reasoning import (
    TemplateHints,
    parse_state,
    parse_template_text,
    resolve,
)
from fleetbench.urlauth import hide_userinfo_in
from fleetbench.yamlconf import DERIVED

MODEL_CLASSES = ("A", "B", "C")
TEXT_TASKS = ("text_gen",)
_HF_URL = re.compile(r"^https?://(www\.)?huggingface\.co/", re.IGNORECASE)


def normalise_id(raw: str) -> str:
    """``https://huggingface.co/ORG/NAME `` -> ``ORG/NAME``."""
    return _HF_URL.sub("", raw.strip()).strip().strip("/")


class ModelSpec(BaseModel):
    """One model of the fleet, fully resolved after validation."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="display name, unique in a plan; default: the id")
    id: str = Field("", description="model id, e.g. ORG/NAME; URL forms are normalised")
    backend: str = "llamacpp"
    options: dict[str, Any] = Field(default_factory=dict, description="backend options")
    family: str = Field("", description="reasoning family; detected from the id when empty")
    model_class: str = Field("", description="size class: A, B or C (AI Energy Score)")
    task: str = Field("text_gen", description="what the model does: text_gen, image_gen, ...")
    priority: int | None = Field(None, ge=1)
    reasoning_state: str = Field("", description="On, Off, On (High), Off (N/A), ...")
    reasoning: bool | None = Field(None, description="derived from the state when empty")
    reasoning_effort: str | None = None
    chat_template: str = Field("", description="free-text hints (catalogue CSV column)")
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str | None = None
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    generation: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the plan's generation settings"
    )
    tags: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("tags", "categories", "category"),
        description="categories, e.g. fast, coding; YAML 'tags', 'categories' or 'category'",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="facts reported by the model's server (Ollama: size on disk, quantisation, "
        "context length); informational, not part of a run's identity",
    )
    params_b: float | None = Field(None, gt=0, description="parameters, in billions")
    dtype: str | None = None
    price_input_per_1m: float | None = Field(None, ge=0)
    price_output_per_1m: float | None = Field(None, ge=0)
    supported: bool = Field(True, json_schema_extra=DERIVED)
    skip_reason: str | None = Field(None, json_schema_extra=DERIVED)
    warnings: list[str] = Field(default_factory=list, json_schema_extra=DERIVED)
    source: str = Field(
        "", description="where the entry was read: file:row", json_schema_extra=DERIVED
    )

    @field_validator("id")
    @classmethod
    def _normalise_id(cls, value: str) -> str:
        return normalise_id(value)

    @field_validator("options")
    @classmethod
    def _no_url_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The entry is stored with every run: a base_url's user:password@ is set
        # aside for the backend instead (fleetbench.urlauth).
        return hide_userinfo_in(value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, value: Any) -> Any:
        # ``category: fast`` and ``tags: "fast, coding"`` are lists of one or more.
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return list(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
        return value

    @field_validator("model_class")
    @classmethod
    def _check_class(cls, value: str) -> str:
        value = value.strip()
        if value and value not in MODEL_CLASSES:
            raise ValueError(f"unknown class {value!r}; valid: {', '.join(MODEL_CLASSES)}")
        return value

    @field_validator("family")
    @classmethod
    def _check_family(cls, value: str) -> str:
        if value and value not in fam.BY_NAME:
            raise ValueError(f"unknown family {value!r}; valid: {', '.join(fam.family_names())}")
        return value

    @field_validator("reasoning_effort")
    @classmethod
    def _check_effort(cls, value: str | None) -> str | None:
        if value is not None and value not in ("low", "medium", "high"):
            raise ValueError(f"invalid reasoning_effort {value!r}; valid: low, medium, high")
        return value

    @model_validator(mode="after")
    def _resolve(self) -> ModelSpec:
        if not self.name and not self.id:
            raise ValueError("an entry needs a 'name' or an 'id'")
        resolve_entry(self)
        return self


def _explicit_hints(spec: ModelSpec, hints: TemplateHints) -> None:
    """Mechanism fields written in the entry count as explicit, like Chat Template text.

    This makes resolution idempotent: a dumped, resolved entry loads back unchanged.
    """
    thinking = spec.chat_template_kwargs.get("enable_thinking")
    if isinstance(thinking, bool) and hints.thinking is None:
        hints.thinking = thinking
    hints.effort = hints.effort or spec.reasoning_effort
    hints.prefix = hints.prefix or spec.prompt_prefix or None
    hints.system_prompt = hints.system_prompt or spec.system_prompt


def resolve_entry(spec: ModelSpec) -> None:
    """Fill family, reasoning and mechanism fields; explicit values in the entry win."""
    family = fam.BY_NAME[spec.family] if spec.family else fam.detect_family(spec.id or spec.name)
    spec.family = family.name
    if not spec.name:
        spec.name = spec.id
    if spec.task not in TEXT_TASKS:
        spec.supported = False
        spec.skip_reason = spec.skip_reason or (
            f"task {spec.task!r} is not supported (fleetbench runs text generation: "
            f"{', '.join(TEXT_TASKS)})"
        )
    state = parse_state(spec.reasoning_state)
    hints = parse_template_text(spec.chat_template)
    _explicit_hints(spec, hints)
    if state.reasoning is None and spec.reasoning is not None:
        state.reasoning = spec.reasoning
    if state.reasoning is None and hints.thinking is None and not spec.chat_template.strip():
        spec.reasoning = bool(spec.reasoning)
        return  # nothing to resolve: a plain entry
    resolution = resolve(family, state, hints)
    spec.reasoning = resolution.reasoning
    spec.reasoning_effort = spec.reasoning_effort or resolution.reasoning_effort
    spec.chat_template_kwargs = {**resolution.chat_template_kwargs, **spec.chat_template_kwargs}
    spec.system_prompt = spec.system_prompt or resolution.system_prompt
    spec.prompt_prefix = spec.prompt_prefix or resolution.prompt_prefix
    if hints.note and spec.supported and spec.family == "other":
        resolution.warnings.append(f"Chat Template text not understood: {hints.note!r}")
    spec.warnings = list(dict.fromkeys([*spec.warnings, *resolution.warnings]))


def dump_yaml(entries: list[ModelSpec]) -> str:
    """A YAML catalogue that loads back into the same entries."""
    fields = set(ModelSpec.model_fields) - {"source", "warnings", "chat_template"}
    models = []
    defaults = ModelSpec(name="x")
    for entry in entries:
        item = {
            k: v
            for k, v in entry.model_dump(mode="json", include=fields).items()
            if v != getattr(defaults, k) or k in ("name", "id")
        }
        models.append(item)
    return yaml.safe_dump({"models": models}, sort_keys=False, allow_unicode=True)
