"""The dashboard's filters: parsed from query parameters, checked against the values the
stores hold, and turned into SQL fragments whose values are always bound parameters.

No SQL is ever built from user text: a fragment names a fixed column and carries ``?``
placeholders; the user's values travel only in the parameter list. A value the stores
do not hold (a misspelt model, a round that is not a number) is a ``FilterError``: one
line that the app answers with 400, so a typo never reads as "no data".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The category a task's prompt or question file gave a sample, as the store keeps it
# beside the sample's input (migration 013, indexed).
CATEGORY_SQL = "s.category"
PAGE_SIZE = 50
MAX_QUERY = 200  # characters of a sample search

# Parameters every view accepts; ``token`` is the access token (``app``), read there.
PARAMS = frozenset(
    {"model", "task", "category", "backend", "round_from", "round_to", "since", "until",
     "q", "page", "token"}
)  # fmt: skip


class FilterError(ValueError):
    """A query parameter the dashboard cannot use; the message is one line."""


@dataclass(frozen=True)
class Known:
    """The values the stores hold, for validation and the filter menus."""

    models: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()
    backends: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Filters:
    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    round_from: int | None = None
    round_to: int | None = None
    since: float | None = None
    until: float | None = None
    q: str = ""
    page: int = 1

    def runs_sql(self, alias: str = "r") -> tuple[str, list[Any]]:
        """``AND ...`` conditions on the runs table (model, task, backend)."""
        parts: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("model_name", self.models),
            ("task", self.tasks),
            ("backend", self.backends),
        ):
            if values:
                parts.append(f"{alias}.{column} IN ({', '.join('?' * len(values))})")
                params += values
        return "".join(f" AND {p}" for p in parts), params

    def samples_sql(self) -> tuple[str, list[Any]]:
        """``AND ...`` conditions on the samples table (alias ``s``): category, round
        and time range (the time a sample was stored)."""
        parts: list[str] = []
        params: list[Any] = []
        if self.categories:
            # ``+``: not a search of the category index, whose every match is a row read
            # (a category most samples share: all of them); a filter on the scanned index.
            parts.append(f"+{CATEGORY_SQL} IN ({', '.join('?' * len(self.categories))})")
            params += self.categories
        for sql, value in (
            ("s.round >= ?", self.round_from),
            ("s.round <= ?", self.round_to),
            ("s.created_at >= ?", self.since),
            ("s.created_at < ?", self.until),
        ):
            if value is not None:
                parts.append(sql)
                params.append(value)
        return "".join(f" AND {p}" for p in parts), params

    def all_sql(self) -> tuple[str, list[Any]]:
        runs, run_params = self.runs_sql()
        samples, sample_params = self.samples_sql()
        return runs + samples, run_params + sample_params

    def samples_only_sql(self) -> tuple[str, list[Any]]:
        """``all_sql`` for a query on the samples alone (alias ``s``, no join): the
        run filters as ``s.run_id IN (the matching runs)``, a range of the index."""
        runs, run_params = self.runs_sql()
        samples, sample_params = self.samples_sql()
        if runs:
            runs = f" AND s.run_id IN (SELECT r.run_id FROM runs r WHERE 1 = 1 {runs})"
        return runs + samples, run_params + sample_params

    def on_samples(self) -> bool:
        """Whether a sample-level filter is set (the comparison ignores them)."""
        return bool(self.categories) or any(
            v is not None for v in (self.round_from, self.round_to, self.since, self.until)
        )

    def search_sql(self) -> tuple[str, list[Any]]:
        """The sample browser's search: a LIKE over id, prompt, answer and reasoning,
        the text escaped so that ``%`` and ``_`` match themselves."""
        if not self.q:
            return "", []
        pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = ("s.sample_id", "s.input_json", "s.output_text", "s.reasoning_text")
        sql = " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns)
        return f" AND ({sql})", [pattern] * len(columns)


def parse(query: Mapping[str, Sequence[str]], known: Known) -> Filters:
    """Filters from a request's query parameters (each name may repeat)."""
    unknown = sorted(set(query) - PARAMS)
    if unknown:
        raise FilterError(
            f"unknown parameter {unknown[0]!r}; valid: {', '.join(sorted(PARAMS - {'token'}))}"
        )

    def one(name: str) -> str | None:
        values = [v for v in query.get(name, ()) if v != ""]
        if len(values) > 1:
            raise FilterError(f"{name}: given {len(values)} times; give it once")
        return values[0] if values else None

    return Filters(
        models=_choices("model", query.get("model", ()), known.models),
        tasks=_choices("task", query.get("task", ()), known.tasks),
        backends=_choices("backend", query.get("backend", ()), known.backends),
        categories=_choices("category", query.get("category", ()), known.categories),
        round_from=_integer("round_from", one("round_from"), 1),
        round_to=_integer("round_to", one("round_to"), 1),
        since=_time("since", one("since")),
        until=_time("until", one("until")),
        q=_search(one("q") or ""),
        page=_integer("page", one("page"), 1) or 1,
    )


def _choices(name: str, values: Iterable[str], valid: frozenset[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(v for v in values if v != ""))
    for value in chosen:
        if value not in valid:
            shown = ", ".join(sorted(valid)[:20]) + (", ..." if len(valid) > 20 else "")
            raise FilterError(f"{name}: unknown value {value[:80]!r}; valid: {shown or 'none'}")
    return chosen


def _integer(name: str, text: str | None, least: int) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise FilterError(f"{name}: {text[:40]!r} is not a whole number") from None
    if value < least or value > 2**62:
        raise FilterError(f"{name}: {value} is out of range; valid: {least} or more")
    return value


def _time(name: str, text: str | None) -> float | None:
    """Epoch seconds or ISO 8601 (naive means UTC)."""
    if text is None:
        return None
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else _iso(text)
    except ValueError:
        raise FilterError(
            f"{name}: {text[:40]!r} is not a time; valid: ISO 8601 (2026-01-31T12:00) "
            "or epoch seconds"
        ) from None


def _iso(text: str) -> float:
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _search(text: str) -> str:
    if len(text) > MAX_QUERY:
        raise FilterError(f"q: {len(text)} characters; valid: at most {MAX_QUERY}")
    return text
