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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fleetbench.backends import get_backend_class
from fleetbench.backends.base import GenerationSettings
from fleetbench.backends.load import LoadProfile, SloTargets
from fleetbench.catalog import ModelFilter, ModelSpec, load_catalog
from fleetbench.catalog.discover import GUESSED
from fleetbench.errors import CatalogError, ConfigError, PlanError, UserError
from fleetbench.meters.carbon import DEFAULT_REGION, normalise_region
from fleetbench.meters.monitor import MeterSettings
from fleetbench.meters.nvml import GpuMemory, gpu_memory
from fleetbench.report.stars import load_reference
from fleetbench.runner.fit import Fit, as_gpu_placement, check_fit
from fleetbench.tasks import Task, get_task_class
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


class ExecutorSettings(BaseModel):
    """``kind: local`` runs several worker processes on this machine; ``ray`` runs each
    run as a Ray task on a cluster. Without an ``executor:`` block (and without
    ``--parallel``) runs execute one after another."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sequential", "local", "ray"] = "local"
    workers: int = Field(
        1, ge=1, description="runs computing on this machine at once (CPU or GPU slots)"
    )
    network_workers: int = Field(
        8, ge=0, description="network-bound runs (HTTP/hosted APIs) running alongside"
    )
    gpus: Literal["auto"] | list[int | str] = Field(
        "auto", description="GPU pool: 'auto' (the visible GPUs) or CUDA indices/UUIDs"
    )
    gpu_share: bool = Field(
        False, description="place two runs on one GPU when both fit in its free memory"
    )
    address: str = Field("auto", description="ray: 'auto', 'local' or ray://host:10001")


class EnergySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    watts_per_core: float | None = Field(
        None,
        gt=0,
        description="CPU power per fully busy core for the CPU-time estimate; default: the "
        "CPU model's TDP / cores where known, else default_watts_per_core",
    )
    default_watts_per_core: float = Field(
        MeterSettings.default_watts_per_core,
        gt=0,
        description="per-core power for CPU models not in the TDP table",
    )
    idle_baseline_s: float = Field(
        MeterSettings.idle_baseline_s,
        ge=0,
        description="seconds of idle power measured before the samples (measured meters "
        "only; 0: none); energy net of idle is reported next to gross",
    )
    poll_hz: float = Field(
        MeterSettings.poll_hz,
        ge=10,
        le=1000,
        description="power polling rate for GPUs without an energy counter",
    )
    carbon_region: str = Field(
        DEFAULT_REGION,
        description="country code (ISO 3166-1 alpha-2, WORLD, EU) for the grid's carbon "
        "intensity (Ember 2024 figures)",
    )
    carbon_intensity_g_per_kwh: float | None = Field(
        None, ge=0, description="explicit grid intensity in gCO2e/kWh; overrides the region's"
    )
    client_only: bool = Field(
        False,
        description="report the client's own energy for runs whose server fleetbench did "
        "not start (energy_scope 'client only' or 'remote API'); by default their energy, "
        "CO2 and tokens per joule are empty, since the model's work is not metered",
    )
    stars_reference: Path | None = Field(
        None,
        description="CSV of reference runs (task, model_class, wh_per_1000_queries) whose "
        "energy range sets the star bands; default: the runs of the output folder",
    )

    @field_validator("carbon_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return normalise_region(value)


class CatalogRef(BaseModel):
    """Models from a catalogue file (CSV or YAML) and/or a local Ollama, narrowed by
    filters."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(None, description="catalogue file (.csv, .yaml) or folder")
    ollama: bool | str = Field(
        False,
        description="the models installed in Ollama: true (OLLAMA_HOST or "
        "http://127.0.0.1:11434) or the server's URL",
    )
    filter: ModelFilter = Field(default_factory=lambda: ModelFilter())
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="fields applied to every entry, e.g. backend"
    )


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "plan"
    models: list[ModelSpec] = Field(default_factory=list)
    catalog: CatalogRef | None = None
    tasks: list[TaskSpec] = Field(min_length=1)
    generation: GenerationSettings = Field(default_factory=lambda: GenerationSettings())
    settings: list[SettingsVariant] = Field(default_factory=lambda: [SettingsVariant()])
    limit: int | None = Field(None, ge=1, description="samples per run (default: all)")
    output: Path | None = None
    fit_check: bool = Field(
        True, description="skip local models whose estimated memory need exceeds free memory"
    )
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    max_failed_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of failed samples a run may have and still count as completed "
        "(0: any failure makes it completed_with_errors; all failed is always failed)",
    )
    energy: EnergySettings = Field(default_factory=lambda: EnergySettings())
    executor: ExecutorSettings | None = Field(
        None, description="how many runs execute at once, and where (default: one by one)"
    )
    load: LoadProfile | None = Field(
        None,
        description="load profile of the HTTP backends' runs (an entry's options.load wins)",
    )
    slo: SloTargets | None = Field(
        None, description="latency targets for goodput (an entry's options.slo wins)"
    )
    upload: str | None = Field(
        None,
        description="fsspec URL the results are copied to after every round and batch, "
        "e.g. s3://bucket/prefix, gs://..., az://..., file:///path",
    )


class RunSpec(BaseModel):
    """A fully resolved run: everything a worker process needs, and nothing else."""

    run_id: str
    model: ModelSpec
    skip_reason: str | None = None
    preflight_error: str | None = None  # stops the batch if this run is to execute
    gpus: list[str] = Field(
        default_factory=list,
        description="UUIDs of the GPUs the fit check chose; the worker sees only these",
    )
    placement_note: str | None = None  # where the fit check put it, for the dry run
    backend_options: dict[str, Any]
    task: TaskSpec
    task_options: dict[str, Any]
    settings_label: str
    generation: GenerationSettings
    energy: EnergySettings

    def request_cap(self) -> int | None:
        """The most requests the run's load profile sends (None: one per sample)."""
        load = self.backend_options.get("load")
        return LoadProfile.model_validate(load).request_cap() if load else None

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run (limit, output and timeout do not)."""
        return self.model_dump(
            mode="json",
            exclude={
                "run_id": True,
                "energy": True,
                "skip_reason": True,
                "preflight_error": True,
                "gpus": True,
                "placement_note": True,
                # Categories and server-reported facts label a run; they do not change it.
                "model": {"source", "warnings", "tags", "details"},
            },
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
    return _load(doc, base, source)


def plan_from_data(data: dict[str, Any], source: str, base: Path) -> LoadedPlan:
    """A plan assembled on the command line (runner/adhoc.py), validated and expanded
    exactly like a plan file; its errors name ``<source>`` and the field."""
    doc = YamlDocument(Path(f"<{source}>"), yaml.safe_dump(data, sort_keys=False))
    return _load(doc, base, source)


def _load(doc: YamlDocument, base: Path, source: str) -> LoadedPlan:
    if not isinstance(doc.data, dict):
        kind = "empty file" if doc.data is None else type(doc.data).__name__
        raise PlanError(f"{doc.path}:1: expected a mapping with 'models' and 'tasks', got {kind}")
    plan = doc.validate(Plan)
    if plan.output is not None and not plan.output.is_absolute():
        plan.output = base / plan.output
    _check_stars_reference(plan, doc, base)
    models = [*plan.models, *_catalog_models(plan, doc, base)]
    if not models:
        raise doc.error(("models",), "no models: give 'models' or a 'catalog' that matches some")
    return LoadedPlan(plan=plan, source=source, runs=_Expander(plan, doc, base).expand(models))


def _check_stars_reference(plan: Plan, doc: YamlDocument, base: Path) -> None:
    """Rebase the reference CSV on the plan's folder and read it now: a bad file fails
    before anything runs."""
    ref = plan.energy.stars_reference
    if ref is None:
        return
    if not ref.is_absolute():
        plan.energy.stars_reference = ref = base / ref
    try:
        load_reference(ref)
    except ConfigError as exc:
        raise doc.error(("energy", "stars_reference"), str(exc)) from None


def _catalog_models(plan: Plan, doc: YamlDocument, base: Path) -> list[ModelSpec]:
    """The seam for catalogue files: entries in file order, defaults applied, filtered."""
    ref = plan.catalog
    if ref is None:
        return []
    if ref.path is None and ref.ollama is False:
        raise doc.error(("catalog",), "give 'path' (a catalogue file or folder) or 'ollama'")
    entries: list[ModelSpec] = []
    guessed: frozenset[str] = frozenset()
    if ref.path is not None:
        path = ref.path if ref.path.is_absolute() else base / ref.path
        entries = load_catalog(path)
        # A discovered checkpoint's backend and task are guesses: the defaults win there.
        guessed = GUESSED if path.is_dir() else frozenset()
    if ref.ollama is not False:
        from fleetbench.catalog.ollama import discover_ollama

        url = ref.ollama if isinstance(ref.ollama, str) else None
        entries += discover_ollama(url)
    if ref.defaults:
        entries = [_with_defaults(e, ref.defaults, doc, guessed) for e in entries]
    return [e for e in entries if ref.filter.matches(e)]


def _with_defaults(
    entry: ModelSpec, defaults: dict[str, Any], doc: YamlDocument, guessed: frozenset[str]
) -> ModelSpec:
    """``defaults`` under what the entry says, except over the fields it only guessed."""
    data = {
        k: v for k, v in entry.model_dump(exclude_unset=True).items()
        if not (k in guessed and k in defaults)
    }  # fmt: skip
    merged = {**defaults, **data, "options": {**defaults.get("options", {}), **entry.options}}
    return doc.validate(ModelSpec, merged, loc=("catalog", "defaults"))


class _Expander:
    """Plan x models -> fully validated runs; errors point at the plan line or catalogue row."""

    def __init__(self, plan: Plan, doc: YamlDocument, base: Path) -> None:
        self.plan, self.doc, self.base = plan, doc, base
        self._gpus: list[GpuMemory] | None = None

    def _gpu_memory(self) -> list[GpuMemory]:
        """The visible GPUs' free memory, read once per plan (NVML init is not free)."""
        if self._gpus is None:
            self._gpus = gpu_memory()[0]
        return self._gpus

    def expand(self, models: list[ModelSpec]) -> list[RunSpec]:
        plan = self.plan
        self._check_unique([m.name for m in models], "models", "name", models)
        self._check_unique([v.label for v in plan.settings], "settings", "label", None)
        tasks = [self._task(ti, task) for ti, task in enumerate(plan.tasks)]
        runs: list[RunSpec] = []
        for mi, model in enumerate(models):
            backend_options, skip, preflight, fit = self._backend(mi, model)
            for ti, (task, task_cls, task_options) in enumerate(tasks):
                protocol = _protocol_defaults(task_cls, task_options, bool(model.reasoning))
                for si, variant in enumerate(plan.settings):
                    generation = self._generation(mi, ti, si, model, protocol)
                    for options, label in _load_steps(backend_options, variant.label):
                        spec = RunSpec(
                            run_id="",
                            model=model,
                            skip_reason=skip,
                            preflight_error=preflight,
                            gpus=[g.uuid for g in fit.gpus] if skip is None else [],
                            placement_note=fit.note,
                            backend_options=options,
                            task=task,
                            task_options=task_options,
                            settings_label=label,
                            generation=generation,
                            energy=plan.energy,
                        )
                        spec.run_id = make_run_id(spec)
                        runs.append(spec)
        return runs

    def _task(self, ti: int, task: TaskSpec) -> tuple[TaskSpec, type[Task], dict[str, Any]]:
        try:
            task_cls = get_task_class(task.name)
        except ConfigError as exc:
            raise self.doc.error(("tasks", ti, "name"), str(exc)) from None
        options = self.doc.validate(
            task_cls.Options, _rebase(task.options, self.base), loc=("tasks", ti, "options")
        ).model_dump(mode="json")
        return task, task_cls, options

    def _backend(
        self, mi: int, model: ModelSpec
    ) -> tuple[dict[str, Any], str | None, str | None, Fit]:
        """Validated backend options, why the model cannot run here (None if it can), a
        configuration error that must stop the batch if it is to run, and the fit check."""
        options = _rebase(model.options, self.base)
        if not model.supported:
            return options, model.skip_reason or "unsupported", None, Fit()
        try:
            backend_cls = get_backend_class(model.backend)
        except ConfigError as exc:
            if mi >= len(self.plan.models):  # a catalogue may list more than runs here
                return options, f"backend not available: {exc}", None, Fit()
            raise self._model_error(mi, model, "backend", str(exc)) from None
        options = self._plan_load(backend_cls.Options, options)
        try:
            validated = backend_cls.Options.model_validate(options)
        except ValidationError as exc:
            if mi < len(self.plan.models):
                self.doc.validate(backend_cls.Options, options, loc=("models", mi, "options"))
            err = exc.errors()[0]
            field = "options." + ".".join(str(p) for p in err["loc"])
            raise self._model_error(mi, model, field, err["msg"]) from None
        checked = validated.model_dump(mode="json")
        for name in ("load", "slo", "api"):  # unset: absent, older runs keep their identity
            if checked.get(name) is None:
                checked.pop(name, None)
        reason = getattr(backend_cls, "unavailable_reason", None)
        skip = reason(validated, model) if reason else None
        placement = getattr(backend_cls, "placement", None)
        fit = Fit()
        if skip is None and placement is not None and self.plan.fit_check:
            where = placement(validated)
            gpus = self._gpu_memory() if as_gpu_placement(where) else None
            fit = check_fit(model, checked, where, gpus=gpus)
            skip = fit.reason
        preflight = getattr(backend_cls, "preflight_error", None)
        error = preflight(validated, model) if preflight else None
        if error is not None:
            error = f"{model.source or self.doc.path}: model {model.name!r}: {error}"
        return checked, skip, error, fit

    def _plan_load(self, options_cls: type[BaseModel], options: dict[str, Any]) -> dict[str, Any]:
        """The plan's ``load`` and ``slo`` for a backend that has them (the HTTP ones),
        unless the entry's options give their own."""
        out = dict(options)
        for name in ("load", "slo"):
            value = getattr(self.plan, name)
            if value is not None and name in options_cls.model_fields and name not in out:
                out[name] = value.model_dump(exclude_unset=True)
        return out

    def _generation(
        self, mi: int, ti: int, si: int, model: ModelSpec, protocol: dict[str, Any]
    ) -> GenerationSettings:
        plan = self.plan
        merged: dict[str, Any] = {
            **GenerationSettings().model_dump(),
            **protocol,
            **plan.generation.model_dump(exclude_unset=True),
            **plan.tasks[ti].generation,
            **model.generation,
            **plan.settings[si].generation,
        }
        # A protocol minimum yields to an explicit, smaller maximum.
        if "min_tokens" in protocol and merged["min_tokens"] == protocol["min_tokens"]:
            merged["min_tokens"] = min(merged["min_tokens"], merged["max_tokens"])
        if mi >= len(plan.models) and model.generation:
            try:
                return GenerationSettings.model_validate(merged)
            except ValidationError as exc:
                err = exc.errors()[0]
                field = "generation." + ".".join(str(p) for p in err["loc"])
                raise self._model_error(mi, model, field, err["msg"]) from None
        return self.doc.validate(GenerationSettings, merged, loc=self._generation_loc(mi, ti, si))

    def _generation_loc(self, mi: int, ti: int, si: int) -> tuple[int | str, ...]:
        # Report against the most specific place that overrides generation settings.
        plan = self.plan
        if plan.settings[si].generation:
            return ("settings", si, "generation")
        if mi < len(plan.models) and plan.models[mi].generation:
            return ("models", mi, "generation")
        if plan.tasks[ti].generation:
            return ("tasks", ti, "generation")
        return ("generation",)

    def _model_error(self, mi: int, model: ModelSpec, field: str, message: str) -> UserError:
        if mi < len(self.plan.models):
            return self.doc.error(("models", mi, *field.split(".")), message)
        return CatalogError(f"{model.source}: {field}: {message}")

    def _check_unique(
        self, values: list[str], section: str, field: str, models: list[ModelSpec] | None
    ) -> None:
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                message = f"duplicate {field} {value!r}"
                if models is not None:
                    raise self._model_error(i, models[i], field, message)
                raise self.doc.error((section, i, field), message)
            seen.add(value)


def _load_steps(options: dict[str, Any], label: str) -> list[tuple[dict[str, Any], str]]:
    """Backend options and settings label of each run: one run, or one per step of a
    ``sweep`` load profile (labelled ``<label>@<rate>rps``, so reports and exports show
    every step as a run of its own)."""
    load = options.get("load")
    if not load or load.get("profile") != "sweep":
        return [(options, label)]
    steps = LoadProfile.model_validate(load).steps_profiles()
    out = []
    for step in steps:
        assert step.sweep is not None and step.rate_rps is not None
        step.sweep.label = label
        dumped = step.model_dump(mode="json", exclude_none=True)
        out.append(({**options, "load": dumped}, f"{label}@{step.rate_rps:g}rps".lstrip("@")))
    return out


def _protocol_defaults(
    task_cls: type[Task], options: dict[str, Any], reasoning: bool
) -> dict[str, Any]:
    """A task's default token protocol (e.g. AI Energy Score's), overridable by the plan."""
    defaults = getattr(task_cls, "generation_defaults", None)
    if defaults is None:
        return {}
    return dict(defaults(task_cls.Options.model_validate(options), reasoning))


def make_run_id(spec: RunSpec) -> str:
    """Readable and stable: ``<model>__<task>[__<label>]__<hash of the resolved config>``."""
    digest = hashlib.sha256(json.dumps(spec.identity(), sort_keys=True).encode()).hexdigest()[:10]
    parts = [spec.model.name, spec.task.name, spec.settings_label]
    joined = "__".join(slug(p) for p in parts if p)
    return f"{joined}__{digest}"


def slug(text: str, empty: str = "x") -> str:
    """A run-id-safe piece of ``text`` (at most 48 characters); ``empty`` if none is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:48] or empty


def _rebase(options: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative ``file``/``*_file``/``*_path``/``*_dir`` options are relative to the plan
    file's folder."""
    out = dict(options)
    for key, value in options.items():
        is_path = (key == "file" or key.endswith(("_file", "_path", "_dir"))) and isinstance(
            value, str
        )
        # hf:// datasets and package: files are not paths on this machine.
        if (
            is_path
            and not value.startswith(("hf://", "package:"))
            and not Path(value).is_absolute()
        ):
            out[key] = str(base / value)
    return out
