"""AI Energy Score style star ratings: 1 to 5 stars from energy per 1,000 queries.

Runs are compared within a **group**: the same task, and for text generation
(``textgen``) also the same model class (A, B, C), as the AI Energy Score does. The
energy figure is ``wh_per_1000_queries`` (net energy per query x 1,000), so runs with
different numbers of prompts compare fairly.

The group's energy range [lowest, highest] is split into five equal bands: the lowest
band gets 5 stars, the highest 1 star. A value on a boundary between two bands gets
the band with more energy (fewer stars), except the lowest value, which always gets 5.

Where the range comes from:

* **reference**: a CSV the user supplies (``energy.stars_reference`` in the plan) with
  columns ``task``, ``model_class`` (or ``class``; empty = any class) and
  ``wh_per_1000_queries``, e.g. a published leaderboard. Runs are rated against the
  range of the rows for their group, whatever their number and energy method; a run
  below the reference's lowest energy gets 5 stars, above its highest 1 star.
* **batch** (no reference, or no reference rows for the group): the rated runs of the
  group in the output folder, and only runs **measured by the same energy method**
  (an estimate and a GPU counter are not one scale), and only when at least
  ``MIN_BATCH_GROUP`` (5) such runs exist: five bands over two runs 1 % apart would
  turn a rounding difference into 5 stars versus 1. A smaller group gets no stars.

Every run without stars says why in ``energy_stars_reason``: not completed (failed,
completed_with_errors, ...: their energy per query is not that of a working model),
no energy figure, an ensemble (its energy is its members' sum, a system of several
models), or a batch group too small. Such runs do not widen any range. A range of zero
width (all at the same energy) gives 5 stars to every run at or below it (and 1 star to
a run above a one-value reference).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetbench.errors import ConfigError

ENERGY_FIELD = "wh_per_1000_queries"
STARS = "energy_stars"
BASIS = "energy_stars_basis"
REASON = "energy_stars_reason"
MIN_BATCH_GROUP = 5
BATCH = "batch"
REFERENCE = "reference"
TEXT_GENERATION_TASKS = frozenset({"textgen"})
_EPS = 1e-9  # values a rounding error below a band boundary belong to the boundary


@dataclass(frozen=True)
class ReferenceRow:
    task: str
    model_class: str
    wh_per_1000_queries: float


def group_key(task: str, model_class: str | None) -> tuple[str, str]:
    """The comparison group: task, and model class for text generation only."""
    task = task.strip().lower()
    klass = (model_class or "").strip().upper() if task in TEXT_GENERATION_TASKS else ""
    return task, klass


def stars_for(value: float, low: float, high: float) -> int:
    """1-5 stars for ``value`` in the range [low, high] split into five equal bands."""
    if high <= low:
        return 5 if value <= low else 1
    band = math.floor((value - low) / (high - low) * 5 + _EPS)
    return 5 - min(max(band, 0), 4)


def load_reference(path: Path) -> list[ReferenceRow]:
    """Read a reference CSV; a bad file or row is a one-line ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read stars reference: {exc.strerror}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    klass = fields.get("model_class") or fields.get("class")
    missing = [f for f in ("task", ENERGY_FIELD) if f not in fields]
    if missing:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise ConfigError(
            f"{path}: stars reference needs columns task, {ENERGY_FIELD} and optionally "
            f"model_class; missing {', '.join(missing)} (found: {found})"
        )
    rows: list[ReferenceRow] = []
    for line, raw in enumerate(reader, start=2):
        task = (raw.get(fields["task"]) or "").strip()
        value = (raw.get(fields[ENERGY_FIELD]) or "").strip()
        if not task and not value:
            continue
        try:
            energy = float(value)
        except ValueError:
            energy = math.nan
        if not task or not math.isfinite(energy) or energy < 0:
            raise ConfigError(
                f"{path}:{line}: expected a task and a number >= 0 in {ENERGY_FIELD}, "
                f"got task={task!r}, {ENERGY_FIELD}={value!r}"
            )
        model_class = (raw.get(klass) or "").strip().upper() if klass else ""
        rows.append(ReferenceRow(task.lower(), model_class, energy))
    if not rows:
        raise ConfigError(f"{path}: stars reference has no rows")
    return rows


def assign_stars(
    summaries: Iterable[dict[str, Any]], reference: list[ReferenceRow] | None = None
) -> None:
    """Set ``energy_stars`` (1-5 or None), ``energy_stars_basis`` and, for runs without
    stars, ``energy_stars_reason`` on every summary."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for summary in summaries:
        summary[STARS], summary[BASIS], summary[REASON] = None, "", ""
        why = _not_rated(summary)
        if why:
            summary[REASON] = why
        else:
            groups[group_key(summary["task"], summary.get("model_class"))].append(summary)
    for key, members in groups.items():
        values = _reference_values(reference or [], key)
        if values:
            _rate(members, min(values), max(values), REFERENCE)
            continue
        by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in members:
            by_method[s.get("energy_method") or ""].append(s)
        for method, same in by_method.items():
            if len(same) < MIN_BATCH_GROUP:
                why = (
                    f"{len(same)} completed run(s) of {_label(key)} measured by "
                    f"{method or '?'}; stars within the batch need at least {MIN_BATCH_GROUP} "
                    "(or a reference: energy.stars_reference)"
                )
                for s in same:
                    s[REASON] = why
                continue
            energies = [float(s[ENERGY_FIELD]) for s in same]
            _rate(same, min(energies), max(energies), BATCH)


def _not_rated(summary: dict[str, Any]) -> str:
    """Why a run takes no part in the ratings ("" if it does)."""
    if summary.get("status") != "completed":
        return f"status {summary.get('status')}: only completed runs are rated"
    if summary.get("backend") == "ensemble":
        return "an ensemble: its energy is its members' sum"
    if summary.get(ENERGY_FIELD) is None:
        return "no energy figure"
    return ""


def _rate(members: list[dict[str, Any]], low: float, high: float, basis: str) -> None:
    for s in members:
        s[STARS], s[BASIS] = stars_for(float(s[ENERGY_FIELD]), low, high), basis


def _label(key: tuple[str, str]) -> str:
    task, model_class = key
    return f"{task} class {model_class}" if model_class else task


def _reference_values(reference: list[ReferenceRow], key: tuple[str, str]) -> list[float]:
    task, model_class = key
    return [
        r.wh_per_1000_queries
        for r in reference
        if r.task == task and (not model_class or not r.model_class or r.model_class == model_class)
    ]


def rate_runs(summaries: list[dict[str, Any]], runs: Iterable[Any]) -> None:
    """Stars for the runs of a results folder (``runs``: their store rows, with
    ``config_json``, ``updated_at`` and ``settings_at``). The reference is the one named
    by the latest settings: those of the run whose config a plan refreshed last (every
    batch refreshes the runs it selects; so does ``fleetbench report --plan``). One that
    can no longer be read (moved since) is replaced by the batch's own range, and
    ``energy_stars_basis`` says so."""
    rows = list(runs)
    reference = None
    if rows:
        latest = max(rows, key=_settings_time)
        path = (json.loads(latest["config_json"]).get("energy") or {}).get("stars_reference")
        if path:
            try:
                reference = load_reference(Path(path))
            except ConfigError:
                reference = None
    assign_stars(summaries, reference)


def _settings_time(row: Any) -> float:
    at = row["settings_at"] if "settings_at" in row.keys() else None  # noqa: SIM118
    return float(at if at is not None else row["updated_at"])
