"""``fleetbench models``: inspect catalogues and discover checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from fleetbench.catalog import ModelFilter, ModelSpec, load_catalog, normalise_id
from fleetbench.catalog.filters import name_list
from fleetbench.errors import ConfigError
from fleetbench.runner.plan import load_plan

models_app = typer.Typer(
    help="Inspect a model catalogue (CSV or YAML), or discover training checkpoints.",
    no_args_is_help=True,
)

# The keys every JSON object carries, in this order; the rest of the entry follows.
JSON_KEYS = [
    "id", "name", "family", "task", "model_class", "priority", "reasoning_state", "reasoning",
    "reasoning_effort", "chat_template_kwargs", "system_prompt", "prompt_prefix",
    "prompt_suffix", "supported", "skip_reason", "warnings",
]  # fmt: skip

CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", "-c", help="Catalogue file (.csv in the AI Energy Score format, "
                 ".yaml) or a folder of checkpoints.", show_default=False),
]  # fmt: skip
PlanOpt = Annotated[
    Path | None,
    typer.Option("--plan", "-p", help="Use the models of this plan (default: the built-in "
                 "demo plan when no --catalog is given).", show_default=False),
]  # fmt: skip


def _entries(catalog: Path | None, plan: Path | None) -> list[ModelSpec]:
    if catalog is not None and plan is not None:
        raise ConfigError("--catalog and --plan exclude each other")
    if catalog is not None:
        return load_catalog(catalog)
    loaded = load_plan(plan)
    return list({r.model.name: r.model for r in loaded.runs}.values())


def entry_json(entry: ModelSpec) -> dict[str, Any]:
    data = entry.model_dump(mode="json")
    return {**{k: data[k] for k in JSON_KEYS}, **data}


@models_app.command("list")
def list_models(
    catalog: CatalogOpt = None,
    plan: PlanOpt = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "--models",
            "-m",
            help="Name or id contains this; repeat or give a comma list; 'all': no filter.",
        ),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="Has this category/tag; repeat for several."),
    ] = None,
    model_class: Annotated[
        list[str] | None, typer.Option("--class", help="Class: A, B, C.")
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--catalog-task", "--task", help="Task column, e.g. text_gen."),
    ] = None,
    reasoning: Annotated[
        str | None, typer.Option("--reasoning", help="Reasoning state contains this, e.g. High.")
    ] = None,
    max_priority: Annotated[
        int | None, typer.Option("--priority", min=1, help="Priority <= N.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array, one object per entry.")
    ] = False,
) -> None:
    """List the resolved catalogue: family, reasoning mechanism, support and warnings."""
    model_filter = ModelFilter(
        name=name_list(model), model_class=model_class or [], task=task or [],
        reasoning=reasoning, max_priority=max_priority, category=category or [],
    )  # fmt: skip
    entries = [e for e in _entries(catalog, plan) if model_filter.matches(e)]
    if as_json:
        sys.stdout.write(json.dumps([entry_json(e) for e in entries], indent=2) + "\n")
        return
    from fleetbench.cli.run import make_console

    console = make_console()
    console.print(_table(entries))
    supported = sum(e.supported for e in entries)
    console.print(f"{len(entries)} entries, {supported} runnable, "
                  f"{sum(bool(e.warnings) for e in entries)} with warnings")  # fmt: skip


def _table(entries: list[ModelSpec]) -> Table:
    table = Table(title="Models", title_justify="left")
    for col in ("name", "family", "class", "prio", "categories", "reasoning", "mechanism",
                "notes"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for e in entries:
        mechanism = _mechanism(e)
        notes = e.skip_reason if not e.supported else "; ".join(e.warnings)
        colour = "dim" if not e.supported else ("yellow" if e.warnings else "")
        table.add_row(
            e.name, e.family, e.model_class, str(e.priority or ""), ",".join(e.tags),
            f"{'on' if e.reasoning else 'off'} ({e.reasoning_state or '-'})", mechanism,
            f"[{colour}]{notes}[/{colour}]" if colour and notes else (notes or ""),
        )  # fmt: skip
    return table


def _mechanism(e: ModelSpec) -> str:
    parts = [f"{k}={v}" for k, v in e.chat_template_kwargs.items()]
    if e.prompt_prefix:
        parts.append(f"prefix {e.prompt_prefix!r}")
    if e.system_prompt:
        parts.append(f"system {e.system_prompt!r}")
    return ", ".join(parts) or "-"


@models_app.command("show")
def show_model(
    model_id: Annotated[str, typer.Argument(metavar="ID", help="Entry name or model id.")],
    catalog: CatalogOpt = None,
    plan: PlanOpt = None,
) -> None:
    """Print every field of the entries whose name or id is ID (YAML)."""
    entries = _entries(catalog, plan)
    wanted = normalise_id(model_id)
    found = [e for e in entries if e.name == model_id] or [e for e in entries if e.id == wanted]
    if not found:
        close = [e.name for e in entries if wanted.lower() in e.name.lower()][:5]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise ConfigError(f"no entry named {model_id!r}{hint}")
    docs = [entry_json(e) for e in found]
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True))


@models_app.command("discover")
def discover(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="FOLDER|URL",
            help="Training output folder to search; with --ollama, the Ollama server's "
            "URL (default: OLLAMA_HOST, else http://127.0.0.1:11434).",
            show_default=False,
        ),
    ] = None,
    ollama: Annotated[
        bool,
        typer.Option("--ollama", help="List the models installed in Ollama instead."),
    ] = False,
    native: Annotated[
        bool,
        typer.Option(
            "--native",
            help="With --ollama: run them on Ollama's own /api/chat (options.api: native), "
            "which records the server's load, prompt-eval and eval durations.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the YAML catalogue here (default: print).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Find checkpoints (HF folders with config.json, .gguf files; checkpoint-N, step_N, …),
    ordered by step, or the models pulled into Ollama (--ollama [URL]), and emit a YAML
    catalogue a plan can use (catalog: {path: FILE}).

    A plan may also point its catalog path at the folder itself, or say
    catalog: {ollama: true} (or a URL) to run Ollama's models.
    """
    from fleetbench.catalog.discover import discover_checkpoints
    from fleetbench.catalog.ollama import discover_ollama
    from fleetbench.catalog.spec import dump_yaml
    from fleetbench.fsutil import atomic_write_text

    if native and not ollama:
        raise ConfigError("--native is for Ollama's models: give --ollama [URL] with it")
    if ollama:
        entries = discover_ollama(target, native=native)
        what = "Ollama model(s)"
    elif target is None:
        raise ConfigError("give a training output FOLDER, or --ollama [URL]")
    else:
        entries = discover_checkpoints(Path(target))
        what = "checkpoint(s)"
    text = dump_yaml(entries)
    if output is None:
        sys.stdout.write(text)
        return
    atomic_write_text(output, text)
    sys.stderr.write(f"wrote {len(entries)} {what} to {output}\n")
