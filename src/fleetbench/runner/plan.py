"""Plans: which models, which tasks, which settings; and their expansion into runs.

A plan is YAML validated here. Every run is fully resolved (backend and task options
validated, generation settings merged) before anything is loaded, so a typo anywhere
fails fast with the plan's file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends import get_backend_class
from fleetbench.backends.base import GenerationSettings
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import ConfigError, PlanError
from fleetbench.tasks import get_task_class
from fleetbench.yamlconf import YamlDocument

DEFAULT_TIMEOUT_S = 1800.0
DEMO_PLAN = "demo.yaml"


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    generation: dict[str, Any] = Field(default_factory=dict)


class SettingsVariant(BaseModel):
    """One point of a settings sweep: a label plus generation overrides."""

    model_config = ConfigDict(extra="forbid")

    label: str = ""
    generation: dict[str, Any] = Field(default_factory=dict)


class EnergySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    watts_per_core: float = Field(
        10.0, gt=0, description="CPU power per fully busy core for the CPU-time estimate"
    )
    carbon_intensity_g_per_kwh: float = Field(
        475.0, ge=0, description="grid intensity; default: IEA world average"
    )


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "plan"
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    generation: GenerationSettings = Field(default_factory=lambda: GenerationSettings())
    settings: list[SettingsVariant] = Field(default_factory=lambda: [SettingsVariant()])
    limit: int | None = Field(None, ge=1, description="samples per run (default: all)")
    output: Path | None = None
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    energy: EnergySettings = Field(default_factory=lambda: EnergySettings())


class RunSpec(BaseModel):
    """A fully resolved run: everything a worker process needs, and nothing else."""

    run_id: str
    model: ModelSpec
    backend_options: dict[str, Any]
    task: TaskSpec
    task_options: dict[str, Any]
    settings_label: str
    generation: GenerationSettings
    energy: EnergySettings

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run (limit, output and timeout do not)."""
        return self.model_dump(
            mode="json", exclude={"run_id": True, "energy": True, "model": {"source", "warnings"}}
        )


class LoadedPlan(BaseModel):
    plan: Plan
    source: str
    runs: list[RunSpec]


def load_plan(path: Path | None) -> LoadedPlan:
    """Read, validate and expand a plan file; ``None`` gives the built-in demo plan."""
    if path is None:
        text = resources.files("fleetbench.plans").joinpath(DEMO_PLAN).read_text()
        doc = YamlDocument(Path(f"<built-in {DEMO_PLAN}>"), text)
        base = Path.cwd()
        source = f"built-in {DEMO_PLAN}"
    else:
        doc = YamlDocument.read(path)
        base = path.resolve().parent
        source = str(path)
    if not isinstance(doc.data, dict):
        kind = "empty file" if doc.data is None else type(doc.data).__name__
        raise PlanError(f"{doc.path}:1: expected a mapping with 'models' and 'tasks', got {kind}")
    plan = doc.validate(Plan)
    if plan.output is not None and not plan.output.is_absolute():
        plan.output = base / plan.output
    return LoadedPlan(plan=plan, source=source, runs=_expand(plan, doc, base))


def _expand(plan: Plan, doc: YamlDocument, base: Path) -> list[RunSpec]:
    _check_unique([m.name for m in plan.models], doc, "models", "name")
    _check_unique([v.label for v in plan.settings], doc, "settings", "label")
    runs: list[RunSpec] = []
    for mi, model in enumerate(plan.models):
        backend_options = _validate_options(
            doc,
            ("models", mi, "options"),
            _rebase(model.options, base),
            _backend_options(doc, mi, model),
        )
        for ti, task in enumerate(plan.tasks):
            task_cls = _task_class(doc, ti, task)
            task_options = _validate_options(
                doc, ("tasks", ti, "options"), _rebase(task.options, base), task_cls.Options
            )
            for si, variant in enumerate(plan.settings):
                merged = {
                    **plan.generation.model_dump(),
                    **task.generation,
                    **model.generation,
                    **variant.generation,
                }
                generation = doc.validate(
                    GenerationSettings, merged, loc=_generation_loc(mi, ti, si, plan)
                )
                spec = RunSpec(
                    run_id="",
                    model=model,
                    backend_options=backend_options,
                    task=task,
                    task_options=task_options,
                    settings_label=variant.label,
                    generation=generation,
                    energy=plan.energy,
                )
                spec.run_id = make_run_id(spec)
                runs.append(spec)
    return runs


def make_run_id(spec: RunSpec) -> str:
    """Readable and stable: ``<model>__<task>[__<label>]__<hash of the resolved config>``."""
    digest = hashlib.sha256(json.dumps(spec.identity(), sort_keys=True).encode()).hexdigest()[:10]
    parts = [spec.model.name, spec.task.name, spec.settings_label]
    slug = "__".join(_slug(p) for p in parts if p)
    return f"{slug}__{digest}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:48] or "x"


def _backend_options(doc: YamlDocument, index: int, model: ModelSpec) -> type[BaseModel]:
    try:
        return get_backend_class(model.backend).Options  # type: ignore[no-any-return]
    except ConfigError as exc:
        raise doc.error(("models", index, "backend"), str(exc)) from None


def _task_class(doc: YamlDocument, index: int, task: TaskSpec) -> Any:
    try:
        return get_task_class(task.name)
    except ConfigError as exc:
        raise doc.error(("tasks", index, "name"), str(exc)) from None


def _validate_options(
    doc: YamlDocument, loc: tuple[int | str, ...], options: dict[str, Any], model: type[BaseModel]
) -> dict[str, Any]:
    return doc.validate(model, options, loc=loc).model_dump(mode="json")


def _rebase(options: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative ``*_file``/``*_path`` options are relative to the plan file's folder."""
    out = dict(options)
    for key, value in options.items():
        is_path = key.endswith(("_file", "_path", "_dir")) and isinstance(value, str)
        if is_path and not Path(value).is_absolute():
            out[key] = str(base / value)
    return out


def _generation_loc(mi: int, ti: int, si: int, plan: Plan) -> tuple[int | str, ...]:
    # Report against the most specific place that overrides generation settings.
    if plan.settings[si].generation:
        return ("settings", si, "generation")
    if plan.models[mi].generation:
        return ("models", mi, "generation")
    if plan.tasks[ti].generation:
        return ("tasks", ti, "generation")
    return ("generation",)


def _check_unique(values: list[str], doc: YamlDocument, section: str, field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise doc.error((section, i, field), f"duplicate {field} {value!r}")
        seen.add(value)
