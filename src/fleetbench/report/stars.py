"""AI Energy Score style star ratings: 1 to 5 stars from energy per 1,000 queries.

Runs are compared within a **group**: the same task, and for text generation
(``textgen``) also the same model class (A, B, C), as the AI Energy Score does. The
energy figure is ``wh_per_1000_queries`` (net energy per query x 1,000), so runs with
different numbers of prompts compare fairly.

The group's energy range [lowest, highest] is split into five equal bands: the lowest
band gets 5 stars, the highest 1 star. A value on a boundary between two bands gets
the band with more energy (fewer stars), except the lowest value, which always gets 5.

Where the range comes from:

* **batch** (default): the rated runs of the group in the output folder.
* **reference**: a CSV the user supplies (``energy.stars_reference`` in the plan) with
  columns ``task``, ``model_class`` (or ``class``; empty = any class) and
  ``wh_per_1000_queries``, e.g. a published leaderboard. Runs are rated against the
  range of the rows for their group; a run below the reference's lowest energy gets 5
  stars, above its highest 1 star. A group without reference rows falls back to the
  batch.

Edge cases: a range of zero width (one run, or all at the same energy) gives 5 stars
to every run at or below it (and 1 star to a run above a one-value reference). Runs
that are not ``completed`` and runs without an energy figure get no stars (empty)
and do not widen the range. Ensembles (backend ``ensemble``) are not rated either: their
energy is their members' sum, a system of several models, not one model's figure.
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
    """Set ``energy_stars`` (1-5 or None) and ``energy_stars_basis`` on every summary."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for summary in summaries:
        summary[STARS], summary[BASIS] = None, ""
        rated = summary.get("status") == "completed" and summary.get("backend") != "ensemble"
        if rated and summary.get(ENERGY_FIELD) is not None:
            groups[group_key(summary["task"], summary.get("model_class"))].append(summary)
    for key, members in groups.items():
        values = _reference_values(reference or [], key)
        basis = REFERENCE if values else BATCH
        if not values:
            values = [float(s[ENERGY_FIELD]) for s in members]
        low, high = min(values), max(values)
        for s in members:
            s[STARS], s[BASIS] = stars_for(float(s[ENERGY_FIELD]), low, high), basis


def _reference_values(reference: list[ReferenceRow], key: tuple[str, str]) -> list[float]:
    task, model_class = key
    return [
        r.wh_per_1000_queries
        for r in reference
        if r.task == task and (not model_class or not r.model_class or r.model_class == model_class)
    ]


def rate_runs(summaries: list[dict[str, Any]], runs: Iterable[Any]) -> None:
    """Stars for the runs of a results folder (``runs``: their store rows, with
    ``config_json`` and ``updated_at``). The reference is the one named by the most
    recently updated run's plan; one that can no longer be read (moved since) is
    replaced by the batch's own range, and ``energy_stars_basis`` says so."""
    named = [
        (row["updated_at"], path)
        for row in runs
        if (path := (json.loads(row["config_json"]).get("energy") or {}).get("stars_reference"))
    ]
    reference = None
    if named:
        try:
            reference = load_reference(Path(max(named)[1]))
        except ConfigError:
            reference = None
    assign_stars(summaries, reference)
