"""Load YAML into pydantic models with errors that name the file, line and field.

PyYAML's composed node tree keeps each node's position; after pydantic rejects the
data we walk that tree along the error's location to find the offending line.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from fleetbench.errors import PlanError
from fleetbench.safeparse import compose_yaml

M = TypeVar("M", bound=BaseModel)
Loc = Sequence[int | str]

# ``Field(json_schema_extra=DERIVED)``: a field fleetbench fills in while resolving an
# entry (support, warnings, where it was read), not one a user sets; errors that list
# the valid fields leave it out.
DERIVED: dict[str, Any] = {"derived": True}


def user_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` a user may set, in declaration order."""
    return [
        name
        for name, info in model.model_fields.items()
        if not (isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("derived"))
    ]


class YamlDocument:
    """Parsed YAML plus its node tree, for line lookups."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        try:
            self.node, self.data = compose_yaml(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            problem = exc.problem or exc.context or "syntax error"
            if exc.context and exc.context_mark and exc.problem_mark:
                problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
            raise PlanError(f"{where}: invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise PlanError(f"{path}: invalid YAML: {exc}") from None

    @classmethod
    def read(cls, path: Path) -> YamlDocument:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PlanError(f"{path}: file not found") from None
        except IsADirectoryError:
            raise PlanError(f"{path}: is a directory, expected a YAML file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"{path}: cannot read: {exc}") from None
        return cls(path, text)

    def line_of(self, loc: Loc) -> int:
        """1-based line of the deepest node along ``loc`` that exists."""
        node = self.node
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for key in loc:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.value == str(key):
                        child = value_node
                        line = key_node.start_mark.line + 1
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(key, int)
                and 0 <= key < len(node.value)
            ):
                child = node.value[key]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def error(self, loc: Loc, message: str) -> PlanError:
        return PlanError(f"{self.path}:{self.line_of(loc)}: {format_loc(loc)}: {message}")

    def validate(self, model: type[M], data: Any = None, loc: Loc = ()) -> M:
        """Validate ``data`` (default: the whole document) found at ``loc`` into ``model``."""
        data = self.data if data is None and not loc else data
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            full = [*loc, *err["loc"]]
            raise self.error(full, describe_error(model, err)) from None


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe_error(model: type[BaseModel], err: Any) -> str:
    kind, loc = err["type"], err["loc"]
    if kind == "extra_forbidden":
        owner = model_at(model, loc[:-1])
        valid = ", ".join(user_fields(owner)) if owner else "see the documentation"
        return f"unknown field {loc[-1]!r}; valid fields: {valid}"
    if kind == "missing":
        return "required field is missing"
    if kind == "model_type" or kind == "dict_type":
        return f"expected a mapping, got {type(err['input']).__name__}"
    return f"{err['msg']} (got {err['input']!r})"


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that validates the value at ``loc``, if one does."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # list index: the element type was already unwrapped below
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Find the BaseModel inside ``X | None``, ``list[X]``, ``dict[str, X]``."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    for arg in typing.get_args(annotation):
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation if origin is not types.UnionType else None
