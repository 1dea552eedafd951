"""Plug points: how a task or backend name in a plan becomes a class.

Tasks and backends are found the same way, in this order:

1. a built-in name (``textgen``, ``llamacpp``, ...), listed by its package as a
   ``module:Class`` string, so that a lookup imports only the module it needs (the
   vLLM backend's SDK is never imported to run llama.cpp);
2. a name an installed package registers as an entry point in the kind's group
   (``fleetbench.tasks`` or ``fleetbench.backends``), in the same ``module:Class``
   form: ``[project.entry-points."fleetbench.tasks"] mytask = "mypkg.tasks:MyTask"``;
3. ``package.module:ClassName`` written in the plan itself, for a class that is merely
   importable (on ``PYTHONPATH``), with no packaging at all.

All three end in ``load``: a built-in is registered exactly as a third party's class is,
and a plugin gets the same checks. The built-ins are listed in code, not as entry points
of fleetbench's own distribution, so a source checkout run with ``PYTHONPATH=src`` (no
install, or an install whose metadata is stale) still finds them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Generic, TypeVar, cast

from fleetbench.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class PlugPoint(Generic[T]):
    """One kind of plugin: its built-ins, its entry-point group and its interface."""

    kind: str  # "task" or "backend", for messages
    group: str  # entry-point group of installed plugins
    builtin: Mapping[str, str]  # name -> "module:Class"
    required: tuple[str, ...]  # attributes every class of this kind has
    protocol: str  # where the interface is documented, for messages

    def names(self) -> list[str]:
        """Every registered name (built-ins and installed plugins)."""
        return sorted({**_installed(self.group), **self.builtin})

    def valid(self) -> str:
        return f"{', '.join(self.names())} or an importable 'package.module:ClassName'"

    def target(self, name: str) -> str:
        """The ``module:Class`` a name stands for; ConfigError if it stands for nothing."""
        target = self.builtin.get(name) or _installed(self.group).get(name)
        if target is None and ":" in name:
            target = name
        if target is None:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid: {self.valid()}")
        return target

    def resolve(self, name: str) -> type[T]:
        """The class ``name`` stands for, checked against the interface."""
        target = self.target(name)
        module_name, _, class_name = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except Exception as exc:  # a plugin module may fail in any way while importing
            reason = str(exc) if isinstance(exc, ImportError | AttributeError) else repr(exc)
            raise ConfigError(
                f"cannot import {self.kind} {name!r}: {reason}; valid: {self.valid()}"
            ) from None
        if not isinstance(cls, type):
            raise ConfigError(f"{self.kind} {name!r} is not a class; see {self.protocol}")
        missing = [attr for attr in self.required if not hasattr(cls, attr)]
        if missing:
            raise ConfigError(
                f"{self.kind} {name!r} lacks {', '.join(map(repr, missing))}; see {self.protocol}"
            )
        return cast(type[T], cls)


@cache
def _installed(group: str) -> dict[str, str]:
    """Entry points of installed packages in ``group``: name -> ``module:Class``."""
    return {ep.name: ep.value for ep in entry_points(group=group)}
