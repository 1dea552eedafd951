"""Catalogue filters, combined with AND (each list with OR inside it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.catalog.spec import ModelSpec


class ModelFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: list[str] = Field(default_factory=list, description="name/id substrings (any)")
    model_class: list[str] = Field(default_factory=list, description="classes (any), e.g. A")
    task: list[str] = Field(default_factory=list, description="tasks (any), e.g. text_gen")
    reasoning: str | None = Field(None, description="reasoning-state substring, e.g. High")
    max_priority: int | None = Field(None, ge=1, description="priority <= N (1 = highest)")
    category: list[str] = Field(default_factory=list, description="categories/tags (any)")

    def matches(self, entry: ModelSpec) -> bool:
        return self.why_not(entry) is None

    def why_not(self, entry: ModelSpec) -> str | None:
        """None if the entry passes, else which filter rejects it."""
        haystack = f"{entry.name}\n{entry.id}".lower()
        if self.name and not any(n.lower() in haystack for n in self.name):
            return f"not matched by --model {' / '.join(self.name)}"
        if self.model_class and entry.model_class.upper() not in {
            c.upper() for c in self.model_class
        }:
            return (
                f"class {entry.model_class or '(none)'} not in --class {','.join(self.model_class)}"
            )
        if self.task and entry.task.lower() not in {t.lower() for t in self.task}:
            return f"catalogue task {entry.task} not in --catalog-task {','.join(self.task)}"
        if self.reasoning and self.reasoning.lower() not in entry.reasoning_state.lower():
            return f"reasoning state {entry.reasoning_state!r} lacks {self.reasoning!r}"
        if self.max_priority is not None and (
            entry.priority is None or entry.priority > self.max_priority
        ):
            return f"priority {entry.priority} > {self.max_priority}"
        if self.category and not {t.lower() for t in entry.tags} & {
            c.lower() for c in self.category
        }:
            tags = ",".join(entry.tags) or "(none)"
            return f"categories {tags} not in --category {','.join(self.category)}"
        return None

    def is_empty(self) -> bool:
        return self == ModelFilter()


def name_list(values: list[str] | None) -> list[str]:
    """``-m a -m b`` and ``--models "a,b"`` alike; ``all`` anywhere means no name filter."""
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return [] if any(n.lower() == "all" for n in names) else names
